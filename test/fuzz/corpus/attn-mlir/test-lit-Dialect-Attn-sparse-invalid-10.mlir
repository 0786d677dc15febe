func.func @sparse_chunk(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{'attn.sparse_attention' op needs sinks >= 0, window >= 0 and chunk > 0, got 4, 16, 0}}
  %o = attn.sparse_attention %q, %k, %v sinks(4) window(16) chunk(0) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return
}
