func.func @result_type(%q: tensor<1x8x?x64xf32>, %k: tensor<1x8x?x64xf32>, %v: tensor<1x8x?x32xf32>) {
  // expected-error @+2 {{'attn.attention' op inferred type(s) 'tensor<1x8x?x32xf32>' are incompatible with return type(s) of operation 'tensor<1x8x?x64xf32>'}}
  // expected-error @+1 {{'attn.attention' op failed to infer returned types}}
  %o = "attn.attention"(%q, %k, %v) : (tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x32xf32>) -> tensor<1x8x?x64xf32>
  return
}
