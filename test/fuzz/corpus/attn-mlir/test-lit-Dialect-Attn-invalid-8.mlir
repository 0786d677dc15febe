func.func @not_float(%q: tensor<1x8x?x64xi8>, %k: tensor<1x8x?x64xi8>, %v: tensor<1x8x?x64xi8>) {
  // expected-error @+1 {{'attn.attention' op query must have a floating-point element type}}
  %o = attn.attention %q, %k, %v : tensor<1x8x?x64xi8>, tensor<1x8x?x64xi8>, tensor<1x8x?x64xi8>
  return
}
