func.func @f(%q: tensor<1x4x8x64xf32>, %k: tensor<1x4x8x64xf32>, %v: tensor<1x4x8x64xf32>)
    -> tensor<1x4x8x64xf32> {
  %o = attn.attention %q, %k, %v : tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>
  // Not lowered yet: graph ops arrive with the model-graph work.
  %r = tosa.add %o, %q : (tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>) -> tensor<1x4x8x64xf32>
  return %r : tensor<1x4x8x64xf32>
}
