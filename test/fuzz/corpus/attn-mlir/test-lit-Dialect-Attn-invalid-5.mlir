func.func @kv_length(%q: tensor<1x8x4x64xf32>, %k: tensor<1x8x9x64xf32>, %v: tensor<1x8x10x64xf32>) {
  // expected-error @+1 {{'attn.attention' op key and value must have the same sequence length (9 vs 10)}}
  %o = attn.attention %q, %k, %v : tensor<1x8x4x64xf32>, tensor<1x8x9x64xf32>, tensor<1x8x10x64xf32>
  return
}
