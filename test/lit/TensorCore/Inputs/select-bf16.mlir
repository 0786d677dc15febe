// Sparse attention over a selection given as an input (bf16, Llama-3-8B
// heads; TokenSelect's bench pattern: 128 sinks, 2048 slots, window 512,
// chunk 512). test/lit/TensorCore/select.test compiles it.
func.func @attention(%q: tensor<1x32x?x128xbf16> {deltaflow.name = "q"},
                     %k: tensor<1x8x?x128xbf16> {deltaflow.name = "k"},
                     %v: tensor<1x8x?x128xbf16> {deltaflow.name = "v"},
                     %idx: tensor<1x1x?x2048xi32> {deltaflow.name = "indices"})
    -> (tensor<1x32x?x128xbf16> {deltaflow.name = "out"}) {
  %out = attn.sparse_attention %q, %k, %v indices(%idx : tensor<1x1x?x2048xi32>)
      sinks(128) window(512) chunk(512)
      : tensor<1x32x?x128xbf16>, tensor<1x8x?x128xbf16>, tensor<1x8x?x128xbf16>
  return %out : tensor<1x32x?x128xbf16>
}
