// attn.select under token-select with a bf16 query and key (Llama-3-8B heads;
// TokenSelect's defaults): the device selection alone. select.test.
func.func @select(%q: tensor<1x32x?x128xbf16> {deltaflow.name = "q"},
                  %k: tensor<1x8x?x128xbf16> {deltaflow.name = "k"})
    -> (tensor<1x1x?x2048xi32> {deltaflow.name = "indices"}) {
  %idx = attn.select %q, %k policy(#attn.token_select<budget = 2048, sinks = 128, window = 512, chunk = 512>)
      : tensor<1x32x?x128xbf16>, tensor<1x8x?x128xbf16> -> tensor<1x1x?x2048xi32>
  return %idx : tensor<1x1x?x2048xi32>
}
