func.func @element_types(%q: tensor<1x8x?x64xf32>, %k: tensor<1x8x?x64xf16>, %v: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{'attn.attention' op key and value must have the same element type}}
  %o = attn.attention %q, %k, %v : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf16>, tensor<1x8x?x64xf32>
  return
}
