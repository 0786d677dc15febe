func.func @mixed(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> tensor<1x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v causal : tensor<1x4x?x64xbf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>
  return %o : tensor<1x4x?x64xbf16>
}
