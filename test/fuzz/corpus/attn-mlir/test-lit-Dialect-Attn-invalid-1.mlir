func.func @value_rank(%q: tensor<1x8x8x128xf32>, %k: tensor<1x8x8x128xf32>, %v: tensor<8x8x128xf32>) {
  // expected-error @+1 {{'attn.attention' op value must have rank 4}}
  %o = attn.attention %q, %k, %v : tensor<1x8x8x128xf32>, tensor<1x8x8x128xf32>, tensor<8x8x128xf32>
  return
}
