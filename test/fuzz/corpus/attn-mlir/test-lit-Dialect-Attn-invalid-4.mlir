func.func @head_dim(%q: tensor<1x8x?x128xf32>, %k: tensor<1x8x?x64xf32>, %v: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{'attn.attention' op query and key head dims must match (128 vs 64)}}
  %o = attn.attention %q, %k, %v : tensor<1x8x?x128xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
  return
}
