// RUN: deltaflow-opt %s -split-input-file -canonicalize | FileCheck %s

// An unused log-sum-exp is not computed.
// CHECK-LABEL: func.func @drop_unused_lse
// CHECK: %[[O:.+]] = attn.attention %{{.+}}, %{{.+}}, %{{.+}} causal : tensor
// CHECK-NOT: lse
// CHECK: return %[[O]]
func.func @drop_unused_lse(%q: tensor<1x4x?x8xf32>, %k: tensor<1x2x?x8xf32>, %v: tensor<1x2x?x8xf32>) -> tensor<1x4x?x8xf32> {
  %o, %lse = attn.attention %q, %k, %v causal lse : tensor<1x4x?x8xf32>, tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>
  return %o : tensor<1x4x?x8xf32>
}

// -----

// A used log-sum-exp stays.
// CHECK-LABEL: func.func @keep_used_lse
// CHECK: attn.attention %{{.+}}, %{{.+}}, %{{.+}} lse : tensor
func.func @keep_used_lse(%q: tensor<1x4x?x8xf32>, %k: tensor<1x2x?x8xf32>, %v: tensor<1x2x?x8xf32>) -> tensor<1x4x?xf32> {
  %o, %lse = attn.attention %q, %k, %v lse : tensor<1x4x?x8xf32>, tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>
  return %lse : tensor<1x4x?xf32>
}

// -----

// offset == Nk - Nq is the default.
// CHECK-LABEL: func.func @default_offset
// CHECK: attn.attention %{{.+}}, %{{.+}}, %{{.+}} causal : tensor<1x4x3x8xf32>
// CHECK-LABEL: func.func @explicit_offset
// CHECK: attn.attention %{{.+}}, %{{.+}}, %{{.+}} causal offset(2) : tensor<1x4x3x8xf32>
func.func @default_offset(%q: tensor<1x4x3x8xf32>, %k: tensor<1x2x10x8xf32>) -> tensor<1x4x3x8xf32> {
  %o = attn.attention %q, %k, %k causal offset(7) : tensor<1x4x3x8xf32>, tensor<1x2x10x8xf32>, tensor<1x2x10x8xf32>
  return %o : tensor<1x4x3x8xf32>
}
func.func @explicit_offset(%q: tensor<1x4x3x8xf32>, %k: tensor<1x2x10x8xf32>) -> tensor<1x4x3x8xf32> {
  %o = attn.attention %q, %k, %k causal offset(2) : tensor<1x4x3x8xf32>, tensor<1x2x10x8xf32>, tensor<1x2x10x8xf32>
  return %o : tensor<1x4x3x8xf32>
}

// -----

// A single trailing query (decode) sees every key: causal is a no-op.
// CHECK-LABEL: func.func @decode_causal
// CHECK: attn.attention %{{.+}}, %{{.+}}, %{{.+}} : tensor<1x32x1x128xf32>
func.func @decode_causal(%q: tensor<1x32x1x128xf32>, %k: tensor<1x8x?x128xf32>) -> tensor<1x32x1x128xf32> {
  %o = attn.attention %q, %k, %k causal : tensor<1x32x1x128xf32>, tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>
  return %o : tensor<1x32x1x128xf32>
}

// -----

// Queries at or after the last key see every key.
// CHECK-LABEL: func.func @late_offset
// CHECK: attn.attention %{{.+}}, %{{.+}}, %{{.+}} offset(9) : tensor<1x4x?x8xf32>
// CHECK-LABEL: func.func @prefill_causal
// CHECK: attn.attention %{{.+}}, %{{.+}}, %{{.+}} causal : tensor<1x4x?x8xf32>
func.func @late_offset(%q: tensor<1x4x?x8xf32>, %k: tensor<1x2x10x8xf32>) -> tensor<1x4x?x8xf32> {
  %o = attn.attention %q, %k, %k causal offset(9) : tensor<1x4x?x8xf32>, tensor<1x2x10x8xf32>, tensor<1x2x10x8xf32>
  return %o : tensor<1x4x?x8xf32>
}
func.func @prefill_causal(%q: tensor<1x4x?x8xf32>, %k: tensor<1x2x?x8xf32>) -> tensor<1x4x?x8xf32> {
  %o = attn.attention %q, %k, %k causal : tensor<1x4x?x8xf32>, tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>
  return %o : tensor<1x4x?x8xf32>
}
