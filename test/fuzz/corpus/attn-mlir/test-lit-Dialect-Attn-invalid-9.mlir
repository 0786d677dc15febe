func.func @batch(%q: tensor<2x8x?x64xf32>, %k: tensor<3x8x?x64xf32>, %v: tensor<3x8x?x64xf32>) {
  // expected-error @+1 {{'attn.attention' op batch sizes of query, key and value must match}}
  %o = attn.attention %q, %k, %v : tensor<2x8x?x64xf32>, tensor<3x8x?x64xf32>, tensor<3x8x?x64xf32>
  return
}
