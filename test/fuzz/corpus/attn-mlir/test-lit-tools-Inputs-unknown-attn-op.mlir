func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
  // attn has no such op
  %o = attn.flash %a : tensor<4xf32>
  return %o : tensor<4xf32>
}
