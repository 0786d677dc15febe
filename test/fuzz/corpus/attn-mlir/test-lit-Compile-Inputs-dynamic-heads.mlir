func.func @f(%q: tensor<1x?x?x64xf32>, %k: tensor<1x?x?x64xf32>, %v: tensor<1x?x?x64xf32>) -> tensor<1x?x?x64xf32> {
  // Head counts must be static to compile.
  %o = attn.attention %q, %k, %v : tensor<1x?x?x64xf32>, tensor<1x?x?x64xf32>, tensor<1x?x?x64xf32>
  return %o : tensor<1x?x?x64xf32>
}
