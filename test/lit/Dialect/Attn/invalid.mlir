// RUN: deltaflow-opt %s -split-input-file -verify-diagnostics

func.func @rank(%q: tensor<32x8x128xf32>, %k: tensor<1x8x8x128xf32>, %v: tensor<1x8x8x128xf32>) {
  // expected-error @+1 {{'attn.attention' op query must have rank 4 [batch, heads, seq, head_dim], got rank 3}}
  %o = attn.attention %q, %k, %v : tensor<32x8x128xf32>, tensor<1x8x8x128xf32>, tensor<1x8x8x128xf32>
  return
}

// -----

func.func @value_rank(%q: tensor<1x8x8x128xf32>, %k: tensor<1x8x8x128xf32>, %v: tensor<8x8x128xf32>) {
  // expected-error @+1 {{'attn.attention' op value must have rank 4}}
  %o = attn.attention %q, %k, %v : tensor<1x8x8x128xf32>, tensor<1x8x8x128xf32>, tensor<8x8x128xf32>
  return
}

// -----

func.func @grouping(%q: tensor<1x6x8x64xf32>, %k: tensor<1x4x8x64xf32>, %v: tensor<1x4x8x64xf32>) {
  // expected-error @+1 {{'attn.attention' op query heads (6) must be a multiple of key/value heads (4)}}
  %o = attn.attention %q, %k, %v : tensor<1x6x8x64xf32>, tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>
  return
}

// -----

func.func @kv_heads(%q: tensor<1x8x8x64xf32>, %k: tensor<1x4x8x64xf32>, %v: tensor<1x2x8x64xf32>) {
  // expected-error @+1 {{'attn.attention' op key and value must have the same number of heads (4 vs 2)}}
  %o = attn.attention %q, %k, %v : tensor<1x8x8x64xf32>, tensor<1x4x8x64xf32>, tensor<1x2x8x64xf32>
  return
}

// -----

func.func @head_dim(%q: tensor<1x8x?x128xf32>, %k: tensor<1x8x?x64xf32>, %v: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{'attn.attention' op query and key head dims must match (128 vs 64)}}
  %o = attn.attention %q, %k, %v : tensor<1x8x?x128xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
  return
}

// -----

func.func @kv_length(%q: tensor<1x8x4x64xf32>, %k: tensor<1x8x9x64xf32>, %v: tensor<1x8x10x64xf32>) {
  // expected-error @+1 {{'attn.attention' op key and value must have the same sequence length (9 vs 10)}}
  %o = attn.attention %q, %k, %v : tensor<1x8x4x64xf32>, tensor<1x8x9x64xf32>, tensor<1x8x10x64xf32>
  return
}

// -----

func.func @element_types(%q: tensor<1x8x?x64xf32>, %k: tensor<1x8x?x64xf16>, %v: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{'attn.attention' op key and value must have the same element type}}
  %o = attn.attention %q, %k, %v : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf16>, tensor<1x8x?x64xf32>
  return
}

// -----

func.func @kv_wider_than_query(%q: tensor<1x8x?x64xf16>, %k: tensor<1x8x?x64xf32>, %v: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{'attn.attention' op key and value element type must not be wider than the query's}}
  %o = attn.attention %q, %k, %v : tensor<1x8x?x64xf16>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
  return
}

// -----

func.func @not_float(%q: tensor<1x8x?x64xi8>, %k: tensor<1x8x?x64xi8>, %v: tensor<1x8x?x64xi8>) {
  // expected-error @+1 {{'attn.attention' op query must have a floating-point element type}}
  %o = attn.attention %q, %k, %v : tensor<1x8x?x64xi8>, tensor<1x8x?x64xi8>, tensor<1x8x?x64xi8>
  return
}

// -----

func.func @batch(%q: tensor<2x8x?x64xf32>, %k: tensor<3x8x?x64xf32>, %v: tensor<3x8x?x64xf32>) {
  // expected-error @+1 {{'attn.attention' op batch sizes of query, key and value must match}}
  %o = attn.attention %q, %k, %v : tensor<2x8x?x64xf32>, tensor<3x8x?x64xf32>, tensor<3x8x?x64xf32>
  return
}

// -----

func.func @scale(%q: tensor<1x8x?x64xf32>, %k: tensor<1x8x?x64xf32>, %v: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{'attn.attention' op scale must be finite and non-zero, got 0}}
  %o = attn.attention %q, %k, %v scale(0.0) : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
  return
}

// -----

func.func @offset(%q: tensor<1x8x?x64xf32>, %k: tensor<1x8x?x64xf32>, %v: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{'attn.attention' op offset must be non-negative, got -3}}
  %o = attn.attention %q, %k, %v causal offset(-3) : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
  return
}

// -----

func.func @lse_flag(%q: tensor<1x8x?x64xf32>, %k: tensor<1x8x?x64xf32>, %v: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{'attn.attention' op has 2 results but the 'lse' flag is unset}}
  %o:2 = "attn.attention"(%q, %k, %v) : (tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>) -> (tensor<1x8x?x64xf32>, tensor<1x8x?xf32>)
  return
}

// -----

func.func @result_type(%q: tensor<1x8x?x64xf32>, %k: tensor<1x8x?x64xf32>, %v: tensor<1x8x?x32xf32>) {
  // expected-error @+2 {{'attn.attention' op inferred type(s) 'tensor<1x8x?x32xf32>' are incompatible with return type(s) of operation 'tensor<1x8x?x64xf32>'}}
  // expected-error @+1 {{'attn.attention' op failed to infer returned types}}
  %o = "attn.attention"(%q, %k, %v) : (tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x32xf32>) -> tensor<1x8x?x64xf32>
  return
}
