func.func @kv_wider_than_query(%q: tensor<1x8x?x64xf16>, %k: tensor<1x8x?x64xf32>, %v: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{'attn.attention' op key and value element type must not be wider than the query's}}
  %o = attn.attention %q, %k, %v : tensor<1x8x?x64xf16>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
  return
}
