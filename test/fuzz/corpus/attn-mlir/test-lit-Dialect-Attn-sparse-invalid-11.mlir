func.func @sparse_indices(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>, %i: tensor<1x1x?x8xf32>) {
  // expected-error @+1 {{'attn.sparse_attention' op indices must be a rank-4 i32 tensor, got 'tensor<1x1x?x8xf32>'}}
  %o = attn.sparse_attention %q, %k, %v indices(%i : tensor<1x1x?x8xf32>) sinks(4) window(16) chunk(32) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return
}
