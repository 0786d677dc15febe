// Query/key head dim 192, value head dim 128 (the GPU prefill takes 32-key blocks).
func.func @attention(%q: tensor<1x32x?x192xf32> {deltaflow.name = "q"},
                     %k: tensor<1x8x?x192xf32> {deltaflow.name = "k"},
                     %v: tensor<1x8x?x128xf32> {deltaflow.name = "v"})
    -> (tensor<1x32x?x128xf32> {deltaflow.name = "out"}) {
  %out = attn.attention %q, %k, %v causal
      : tensor<1x32x?x192xf32>, tensor<1x8x?x192xf32>, tensor<1x8x?x128xf32>
  return %out : tensor<1x32x?x128xf32>
}
