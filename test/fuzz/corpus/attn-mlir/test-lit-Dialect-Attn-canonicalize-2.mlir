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
