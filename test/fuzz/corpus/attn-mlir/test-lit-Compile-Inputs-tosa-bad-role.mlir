func.func @f(%x: tensor<4x8xf32> {deltaflow.name = "x", deltaflow.role = "weights"}) -> (tensor<4x8xf32> {deltaflow.name = "y"}) {
  %y = tosa.exp %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}
