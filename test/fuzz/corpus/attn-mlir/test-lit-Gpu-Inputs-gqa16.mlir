// G = 16: beyond what the GPU schedules support (a located error).
func.func @attention(%q: tensor<1x128x?x128xf32> {deltaflow.name = "q"},
                     %k: tensor<1x8x?x128xf32> {deltaflow.name = "k"},
                     %v: tensor<1x8x?x128xf32> {deltaflow.name = "v"})
    -> (tensor<1x128x?x128xf32> {deltaflow.name = "out"}) {
  %out = attn.attention %q, %k, %v causal
      : tensor<1x128x?x128xf32>, tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>
  return %out : tensor<1x128x?x128xf32>
}
