// Grouped-query attention with Llama-3-8B head shapes: 32 query heads,
// 8 key/value heads, head dim 128, dynamic sequence lengths. Queries are the
// last Nq positions of the Nk-token context (causal prefill or decode).
func.func @attention(%q: tensor<1x32x?x128xf32> {deltaflow.name = "q"},
                     %k: tensor<1x8x?x128xf32> {deltaflow.name = "k"},
                     %v: tensor<1x8x?x128xf32> {deltaflow.name = "v"})
    -> (tensor<1x32x?x128xf32> {deltaflow.name = "out"}) {
  %out = attn.attention %q, %k, %v causal
      : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>
  return %out : tensor<1x32x?x128xf32>
}
