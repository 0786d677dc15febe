// An f16 argument read by a TOSA op: f16 is only K/V storage of attention.
func.func @f(%x: tensor<1x4x8xf16> {deltaflow.name = "x"}, %y: tensor<1x4x8xf16> {deltaflow.name = "y"}) -> tensor<1x4x8xf16> {
  %z = tosa.add %x, %y : (tensor<1x4x8xf16>, tensor<1x4x8xf16>) -> tensor<1x4x8xf16>
  return %z : tensor<1x4x8xf16>
}
