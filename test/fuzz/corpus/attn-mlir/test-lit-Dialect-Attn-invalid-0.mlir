// RUN: deltaflow-opt %s -split-input-file -verify-diagnostics

func.func @rank(%q: tensor<32x8x128xf32>, %k: tensor<1x8x8x128xf32>, %v: tensor<1x8x8x128xf32>) {
  // expected-error @+1 {{'attn.attention' op query must have rank 4 [batch, heads, seq, head_dim], got rank 3}}
  %o = attn.attention %q, %k, %v : tensor<32x8x128xf32>, tensor<1x8x8x128xf32>, tensor<1x8x8x128xf32>
  return
}
