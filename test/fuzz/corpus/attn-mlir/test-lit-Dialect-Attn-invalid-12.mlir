func.func @lse_flag(%q: tensor<1x8x?x64xf32>, %k: tensor<1x8x?x64xf32>, %v: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{'attn.attention' op has 2 results but the 'lse' flag is unset}}
  %o:2 = "attn.attention"(%q, %k, %v) : (tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>) -> (tensor<1x8x?x64xf32>, tensor<1x8x?xf32>)
  return
}
