// The two attentions of a ring prefill (deltaflow-run shard, docs/guide.md
// "Scaling out"): with the sequence split into chunks, a chunk of queries
// attends causally to its own chunk of keys (`causal`) and fully to every
// earlier chunk (`full`); each returns its log-sum-exp so that the partials
// merge exactly. With the causal entry sparsified (--sparsity="policy=
// token-select ... entries=causal") it is also shard's sparse decode module:
// the selection over every rank's keys, then the full entry over each rank's
// selected keys. Llama-3-8B head shapes: 32 query heads over 8 key/value
// heads, head dim 128, dynamic lengths.
func.func @causal(%q: tensor<1x32x?x128xf32> {deltaflow.name = "q"},
                  %k: tensor<1x8x?x128xf32> {deltaflow.name = "k"},
                  %v: tensor<1x8x?x128xf32> {deltaflow.name = "v"})
    -> (tensor<1x32x?x128xf32> {deltaflow.name = "out"},
        tensor<1x32x?xf32> {deltaflow.name = "lse"}) {
  %out, %lse = attn.attention %q, %k, %v causal lse
      : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>
  return %out, %lse : tensor<1x32x?x128xf32>, tensor<1x32x?xf32>
}
func.func @full(%q: tensor<1x32x?x128xf32> {deltaflow.name = "q"},
                %k: tensor<1x8x?x128xf32> {deltaflow.name = "k"},
                %v: tensor<1x8x?x128xf32> {deltaflow.name = "v"})
    -> (tensor<1x32x?x128xf32> {deltaflow.name = "out"},
        tensor<1x32x?xf32> {deltaflow.name = "lse"}) {
  %out, %lse = attn.attention %q, %k, %v lse
      : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>
  return %out, %lse : tensor<1x32x?x128xf32>, tensor<1x32x?xf32>
}
