func.func @rows_stride(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{'attn.dense_rows' op stride must be > 0, got 0}}
  %r = attn.dense_rows %q, %k, %v stride(0) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return
}
