// Without the causal rule there is no window to keep.
// CHECK-LABEL: func.func @bidirectional
// CHECK: attn.attention
func.func @bidirectional(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>) -> tensor<1x8x?x64xf32> {
  // expected-remark @+1 {{attn-sparsify: left dense (not causal)}}
  %o = attn.attention %q, %k, %v : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %o : tensor<1x8x?x64xf32>
}
