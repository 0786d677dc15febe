func.func @delta_rows(%s: tensor<1x8x70x64xf32>, %r: tensor<1x8x100x64xf32>) {
  // expected-error @+1 {{'attn.delta_correct' op dense rows has 100 rows; stride 16 over 70 query rows needs 148}}
  %o = attn.delta_correct %s, %r stride(16) : tensor<1x8x70x64xf32>, tensor<1x8x100x64xf32>
  return
}
