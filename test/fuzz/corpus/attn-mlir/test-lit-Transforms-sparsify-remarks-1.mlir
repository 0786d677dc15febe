// One key more and it is sparsified.
// CHECK-LABEL: func.func @long
// CHECK: attn.select
// CHECK: attn.sparse_attention
func.func @long(%q: tensor<1x8x16x64xf32>, %k: tensor<1x2x85x64xf32>, %v: tensor<1x2x85x64xf32>) -> tensor<1x8x16x64xf32> {
  %o = attn.attention %q, %k, %v causal : tensor<1x8x16x64xf32>, tensor<1x2x85x64xf32>, tensor<1x2x85x64xf32>
  return %o : tensor<1x8x16x64xf32>
}
