func.func @f(%x: tensor<4x8xf32> {deltaflow.name = "x"}) -> (tensor<4xi32> {deltaflow.name = "y"}) {
  %y = tosa.argmax %x {axis = 1 : i32} : (tensor<4x8xf32>) -> tensor<4xi32>
  return %y : tensor<4xi32>
}
