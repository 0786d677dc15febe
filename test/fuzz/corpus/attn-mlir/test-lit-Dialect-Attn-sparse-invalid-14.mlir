func.func @delta_heads(%s: tensor<1x8x?x64xf32>, %r: tensor<1x4x?x64xf32>) {
  // expected-error @+1 {{'attn.delta_correct' op dimension 1 differs: 8 (sparse) vs 4 (rows)}}
  %o = attn.delta_correct %s, %r stride(16) : tensor<1x8x?x64xf32>, tensor<1x4x?x64xf32>
  return
}
