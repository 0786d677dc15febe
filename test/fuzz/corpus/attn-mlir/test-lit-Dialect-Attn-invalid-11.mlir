func.func @offset(%q: tensor<1x8x?x64xf32>, %k: tensor<1x8x?x64xf32>, %v: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{'attn.attention' op offset must be non-negative, got -3}}
  %o = attn.attention %q, %k, %v causal offset(-3) : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
  return
}
