func.func @f(%q: tensor<1x4x8x64xf32>, %k: tensor<1x4x8x64xf32>, %v: tensor<1x4x8x64xf32>)
    -> tensor<1x4x8x64xf32> {
  %o = attn.attention %q, %k, %v : tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>
  // Outside the TOSA subset the graph lowering knows.
  %r = tosa.floor %o : (tensor<1x4x8x64xf32>) -> tensor<1x4x8x64xf32>
  return %r : tensor<1x4x8x64xf32>
}
