func.func @grouping(%q: tensor<1x6x8x64xf32>, %k: tensor<1x4x8x64xf32>, %v: tensor<1x4x8x64xf32>) {
  // expected-error @+1 {{'attn.attention' op query heads (6) must be a multiple of key/value heads (4)}}
  %o = attn.attention %q, %k, %v : tensor<1x6x8x64xf32>, tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>
  return
}
