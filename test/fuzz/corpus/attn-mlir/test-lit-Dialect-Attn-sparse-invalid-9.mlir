func.func @sparse_geometry(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>) {
  %i = attn.select %q, %k policy(#attn.token_select<budget = 8, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x?x8xi32>
  // expected-error @+1 {{'attn.sparse_attention' op sinks/window/chunk (4, 32, 32) differ from its selection's (4, 16, 32)}}
  %o = attn.sparse_attention %q, %k, %v indices(%i : tensor<1x1x?x8xi32>) sinks(4) window(32) chunk(32) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return
}
