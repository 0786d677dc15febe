func.func @delta_stride(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>, %s: tensor<1x8x?x64xf32>) {
  %r = attn.dense_rows %q, %k, %v stride(16) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  // expected-error @+1 {{'attn.delta_correct' op stride 32 differs from its dense rows' stride 16}}
  %o = attn.delta_correct %s, %r stride(32) : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
  return
}
