// 64 query heads over 8 KV heads (G = 8, as Llama-3-70B), head dim 128.
func.func @attention(%q: tensor<1x64x?x128xf32> {deltaflow.name = "q"},
                     %k: tensor<1x8x?x128xf32> {deltaflow.name = "k"},
                     %v: tensor<1x8x?x128xf32> {deltaflow.name = "v"})
    -> (tensor<1x64x?x128xf32> {deltaflow.name = "out"}) {
  %out = attn.attention %q, %k, %v causal
      : tensor<1x64x?x128xf32>, tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>
  return %out : tensor<1x64x?x128xf32>
}
