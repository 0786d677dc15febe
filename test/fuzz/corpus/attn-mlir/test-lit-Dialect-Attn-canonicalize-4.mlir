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
