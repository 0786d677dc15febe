func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
  // an op of a dialect nobody registered
  %o = foo.bar %a : tensor<4xf32>
  return %o : tensor<4xf32>
}
