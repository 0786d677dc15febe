// Multi-head attention (G = 1), head dim 64.
func.func @attention(%q: tensor<1x8x?x64xf32> {deltaflow.name = "q"},
                     %k: tensor<1x8x?x64xf32> {deltaflow.name = "k"},
                     %v: tensor<1x8x?x64xf32> {deltaflow.name = "v"})
    -> (tensor<1x8x?x64xf32> {deltaflow.name = "out"}) {
  %out = attn.attention %q, %k, %v causal
      : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
  return %out : tensor<1x8x?x64xf32>
}
