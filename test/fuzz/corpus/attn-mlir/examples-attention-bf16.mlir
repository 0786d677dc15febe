// Grouped-query attention with Llama-3-8B head shapes in bf16: 32 query
// heads, 8 key/value heads, head dim 128, dynamic sequence lengths. With
// --target=cuda it runs on the tensor cores (FlashAttention-2 on
// mma.sync.m16n8k16, generated through MLIR's NVGPU path; f32 accumulation),
// and the output is bf16. Other targets reject it with a located error.
func.func @attention(%q: tensor<1x32x?x128xbf16> {deltaflow.name = "q"},
                     %k: tensor<1x8x?x128xbf16> {deltaflow.name = "k"},
                     %v: tensor<1x8x?x128xbf16> {deltaflow.name = "v"})
    -> (tensor<1x32x?x128xbf16> {deltaflow.name = "out"}) {
  %out = attn.attention %q, %k, %v causal
      : tensor<1x32x?x128xbf16>, tensor<1x8x?x128xbf16>, tensor<1x8x?x128xbf16>
  return %out : tensor<1x32x?x128xbf16>
}
