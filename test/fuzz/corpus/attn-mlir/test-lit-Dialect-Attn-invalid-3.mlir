func.func @kv_heads(%q: tensor<1x8x8x64xf32>, %k: tensor<1x4x8x64xf32>, %v: tensor<1x2x8x64xf32>) {
  // expected-error @+1 {{'attn.attention' op key and value must have the same number of heads (4 vs 2)}}
  %o = attn.attention %q, %k, %v : tensor<1x8x8x64xf32>, tensor<1x4x8x64xf32>, tensor<1x2x8x64xf32>
  return
}
