func.func @g(%x: tensor<4x8xbf16>) -> tensor<4x8xbf16> {
  %y = tosa.add %x, %x : (tensor<4x8xbf16>, tensor<4x8xbf16>) -> tensor<4x8xbf16>
  return %y : tensor<4x8xbf16>
}
