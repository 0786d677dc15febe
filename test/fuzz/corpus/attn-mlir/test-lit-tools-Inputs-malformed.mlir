func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
  // missing comma below
  %o = attn.attention %a %a, %a : tensor<4xf32>
  return %o : tensor<4xf32>
}
