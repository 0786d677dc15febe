// Two projections by bf16 nn.Linear weights ([out, in], widened by a
// tosa.cast as they are read, y = x W^T): the first with a SiLU epilogue,
// the second reading a computed A (a reshape of the first's heads).
func.func @main(%x: tensor<1x?x256xf32> {deltaflow.name = "x"},
                %w1: tensor<384x256xbf16> {deltaflow.name = "w1", deltaflow.role = "weight"},
                %w2: tensor<128x384xbf16> {deltaflow.name = "w2", deltaflow.role = "weight"})
    -> (tensor<1x?x128xf32> {deltaflow.name = "y"}) {
  %p = "tosa.const"() {value = dense<[0, 2, 1]> : tensor<3xi32>} : () -> tensor<3xi32>
  %w1f = tosa.cast %w1 : (tensor<384x256xbf16>) -> tensor<384x256xf32>
  %w1r = tosa.reshape %w1f {new_shape = array<i64: 1, 384, 256>} : (tensor<384x256xf32>) -> tensor<1x384x256xf32>
  %w1t = tosa.transpose %w1r, %p : (tensor<1x384x256xf32>, tensor<3xi32>) -> tensor<1x256x384xf32>
  %h = tosa.matmul %x, %w1t : (tensor<1x?x256xf32>, tensor<1x256x384xf32>) -> tensor<1x?x384xf32>
  %s = tosa.sigmoid %h : (tensor<1x?x384xf32>) -> tensor<1x?x384xf32>
  %a = tosa.mul %h, %s {shift = 0 : i8} : (tensor<1x?x384xf32>, tensor<1x?x384xf32>) -> tensor<1x?x384xf32>
  %w2f = tosa.cast %w2 : (tensor<128x384xbf16>) -> tensor<128x384xf32>
  %w2r = tosa.reshape %w2f {new_shape = array<i64: 1, 128, 384>} : (tensor<128x384xf32>) -> tensor<1x128x384xf32>
  %w2t = tosa.transpose %w2r, %p : (tensor<1x128x384xf32>, tensor<3xi32>) -> tensor<1x384x128xf32>
  %y = tosa.matmul %a, %w2t : (tensor<1x?x384xf32>, tensor<1x384x128xf32>) -> tensor<1x?x128xf32>
  return %y : tensor<1x?x128xf32>
}
