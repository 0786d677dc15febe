func.func @cache_write_f16_rows_into_f32(%c: tensor<1x2x?x64xf32>, %n: tensor<1x2x3x64xf16>) {
  // expected-error @+1 {{cannot write 'f16' rows into a 'f32' cache (same type, or f32 rows into an f16 cache)}}
  %r = attn.cache_write %c, %n : tensor<1x2x?x64xf32>, tensor<1x2x3x64xf16>
  return
}
