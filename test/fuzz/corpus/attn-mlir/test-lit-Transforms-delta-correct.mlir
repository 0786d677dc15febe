// RUN: deltaflow-opt %s --attn-delta-correct="stride=16" -verify-diagnostics | FileCheck %s
// Running it twice corrects once.
// RUN: deltaflow-opt %s --attn-delta-correct="stride=16" --attn-delta-correct="stride=16" | FileCheck %s

// CHECK-LABEL: func.func @corrects_any_sparse_attention
// CHECK: %[[S:.+]] = attn.sparse_attention %arg0, %arg1, %arg2 sinks(4) window(16) chunk(32) scale(2.000000e-01) offset(9)
// CHECK-NEXT: %[[R:.+]] = attn.dense_rows %arg0, %arg1, %arg2 stride(16) scale(2.000000e-01) offset(9) : tensor<1x8x70x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
// CHECK-NEXT: %[[D:.+]] = attn.delta_correct %[[S]], %[[R]] stride(16) : tensor<1x8x70x64xf32>, tensor<1x8x148x64xf32>
// CHECK-NOT: attn.dense_rows
// CHECK: return %[[D]]
func.func @corrects_any_sparse_attention(%q: tensor<1x8x70x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>) -> tensor<1x8x70x64xf32> {
  %o = attn.sparse_attention %q, %k, %v sinks(4) window(16) chunk(32) scale(0.2) offset(9) : tensor<1x8x70x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %o : tensor<1x8x70x64xf32>
}

// CHECK-LABEL: func.func @lse_in_use
// CHECK-NOT: attn.dense_rows
func.func @lse_in_use(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>) -> tensor<1x8x?xf32> {
  // expected-remark @+1 {{attn-delta-correct: skipped (its log-sum-exp is used, and the correction does not define one)}}
  %o, %l = attn.sparse_attention %q, %k, %v sinks(4) window(16) chunk(32) lse : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %l : tensor<1x8x?xf32>
}

// Single-query decode keeps its sparse row: Δ would make it dense.
// CHECK-LABEL: func.func @decode_stays_sparse
// CHECK-NOT: attn.dense_rows
// CHECK: attn.sparse_attention
// CHECK-NOT: attn.delta_correct
func.func @decode_stays_sparse(%q: tensor<1x8x1x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>) -> tensor<1x8x1x64xf32> {
  // expected-remark @+1 {{attn-delta-correct: skipped (single-query decode: its row is a tail row, which the correction would make dense)}}
  %o = attn.sparse_attention %q, %k, %v sinks(4) window(16) chunk(32) : tensor<1x8x1x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %o : tensor<1x8x1x64xf32>
}
