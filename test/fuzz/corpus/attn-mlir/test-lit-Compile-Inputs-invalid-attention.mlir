func.func @f(%q: tensor<1x6x8x64xf32>, %k: tensor<1x4x8x64xf32>, %v: tensor<1x4x8x64xf32>) -> tensor<1x6x8x64xf32> {
  // 6 query heads cannot share 4 KV heads.
  %o = attn.attention %q, %k, %v : tensor<1x6x8x64xf32>, tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>
  return %o : tensor<1x6x8x64xf32>
}
