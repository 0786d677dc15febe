func.func @scale(%q: tensor<1x8x?x64xf32>, %k: tensor<1x8x?x64xf32>, %v: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{'attn.attention' op scale must be finite and non-zero, got 0}}
  %o = attn.attention %q, %k, %v scale(0.0) : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
  return
}
