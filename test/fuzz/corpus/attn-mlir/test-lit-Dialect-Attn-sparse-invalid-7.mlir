func.func @select_heads(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{'attn.select' op result heads must be 1 (shared) or the 2 key/value heads, got 4}}
  %i = attn.select %q, %k policy(#attn.token_select<budget = 8, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x4x?x8xi32>
  return
}
