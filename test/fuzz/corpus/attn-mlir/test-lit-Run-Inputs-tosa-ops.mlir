// TOSA ops the Llama example does not use, with odd and dynamic shapes.
func.func @elementwise(%x: tensor<?x37xf32> {deltaflow.name = "x"}, %y: tensor<1x37xf32> {deltaflow.name = "y"}) -> (tensor<?x37xf32> {deltaflow.name = "out"}) {
  %one = "tosa.const"() {value = dense<1.0> : tensor<1x1xf32>} : () -> tensor<1x1xf32>
  %half = "tosa.const"() {value = dense<0.5> : tensor<1x1xf32>} : () -> tensor<1x1xf32>
  %zero = "tosa.const"() {value = dense<0.0> : tensor<1x1xf32>} : () -> tensor<1x1xf32>
  %ax = tosa.abs %x : (tensor<?x37xf32>) -> tensor<?x37xf32>
  %ax1 = tosa.add %ax, %one : (tensor<?x37xf32>, tensor<1x1xf32>) -> tensor<?x37xf32>
  %yh = tosa.mul %y, %half {shift = 0 : i8} : (tensor<1x37xf32>, tensor<1x1xf32>) -> tensor<1x37xf32>
  %p = tosa.pow %ax1, %yh : (tensor<?x37xf32>, tensor<1x37xf32>) -> tensor<?x37xf32>
  %t = tosa.tanh %x : (tensor<?x37xf32>) -> tensor<?x37xf32>
  %pt = tosa.mul %p, %t {shift = 0 : i8} : (tensor<?x37xf32>, tensor<?x37xf32>) -> tensor<?x37xf32>
  %mn = tosa.minimum %x, %zero : (tensor<?x37xf32>, tensor<1x1xf32>) -> tensor<?x37xf32>
  %e = tosa.exp %mn : (tensor<?x37xf32>) -> tensor<?x37xf32>
  %d = tosa.sub %pt, %e : (tensor<?x37xf32>, tensor<?x37xf32>) -> tensor<?x37xf32>
  %ay = tosa.abs %y : (tensor<1x37xf32>) -> tensor<1x37xf32>
  %mx = tosa.maximum %ay, %half : (tensor<1x37xf32>, tensor<1x1xf32>) -> tensor<1x37xf32>
  %rc = tosa.reciprocal %mx : (tensor<1x37xf32>) -> tensor<1x37xf32>
  %s = tosa.add %d, %rc : (tensor<?x37xf32>, tensor<1x37xf32>) -> tensor<?x37xf32>
  %l = tosa.log %ax1 : (tensor<?x37xf32>) -> tensor<?x37xf32>
  %s2 = tosa.add %s, %l : (tensor<?x37xf32>, tensor<?x37xf32>) -> tensor<?x37xf32>
  %c = tosa.clamp %s2 {min_fp = -3.0 : f32, max_fp = 3.0 : f32, min_int = -3 : i64, max_int = 3 : i64} : (tensor<?x37xf32>) -> tensor<?x37xf32>
  return %c : tensor<?x37xf32>
}

func.func @softmax(%x: tensor<3x?x13xf32> {deltaflow.name = "x"}) -> (tensor<3x?x13xf32> {deltaflow.name = "out"}, tensor<3x1x13xf32> {deltaflow.name = "colmax"}) {
  %m = tosa.reduce_max %x {axis = 2 : i32} : (tensor<3x?x13xf32>) -> tensor<3x?x1xf32>
  %s = tosa.sub %x, %m : (tensor<3x?x13xf32>, tensor<3x?x1xf32>) -> tensor<3x?x13xf32>
  %e = tosa.exp %s : (tensor<3x?x13xf32>) -> tensor<3x?x13xf32>
  %z = tosa.reduce_sum %e {axis = 2 : i32} : (tensor<3x?x13xf32>) -> tensor<3x?x1xf32>
  %r = tosa.reciprocal %z : (tensor<3x?x1xf32>) -> tensor<3x?x1xf32>
  %p = tosa.mul %e, %r {shift = 0 : i8} : (tensor<3x?x13xf32>, tensor<3x?x1xf32>) -> tensor<3x?x13xf32>
  %cm = tosa.reduce_max %x {axis = 1 : i32} : (tensor<3x?x13xf32>) -> tensor<3x1x13xf32>
  return %p, %cm : tensor<3x?x13xf32>, tensor<3x1x13xf32>
}

func.func @matmuls(%a: tensor<1x?x40xf32> {deltaflow.name = "a"}, %b: tensor<1x40x64xf32> {deltaflow.name = "b"},
                   %c: tensor<1x40x50xf32> {deltaflow.name = "c"}, %r: tensor<1x?x64xf32> {deltaflow.name = "r"})
    -> (tensor<1x?x64xf32> {deltaflow.name = "ab_plus_r"}, tensor<1x?x50xf32> {deltaflow.name = "ac"}) {
  %sa = tosa.sigmoid %a : (tensor<1x?x40xf32>) -> tensor<1x?x40xf32>
  %ab = tosa.matmul %sa, %b : (tensor<1x?x40xf32>, tensor<1x40x64xf32>) -> tensor<1x?x64xf32>
  %o1 = tosa.add %ab, %r : (tensor<1x?x64xf32>, tensor<1x?x64xf32>) -> tensor<1x?x64xf32>
  %ac = tosa.matmul %a, %c : (tensor<1x?x40xf32>, tensor<1x40x50xf32>) -> tensor<1x?x50xf32>
  return %o1, %ac : tensor<1x?x64xf32>, tensor<1x?x50xf32>
}

func.func @layout(%x: tensor<2x?x6xf32> {deltaflow.name = "x"}) -> (tensor<2x6x?xf32> {deltaflow.name = "out"}) {
  %lo = tosa.slice %x {size = array<i64: 2, -1, 3>, start = array<i64: 0, 0, 0>} : (tensor<2x?x6xf32>) -> tensor<2x?x3xf32>
  %hi = tosa.slice %x {size = array<i64: 2, -1, 3>, start = array<i64: 0, 0, 3>} : (tensor<2x?x6xf32>) -> tensor<2x?x3xf32>
  %nh = tosa.negate %hi : (tensor<2x?x3xf32>) -> tensor<2x?x3xf32>
  %cat = tosa.concat %nh, %lo {axis = 2 : i32} : (tensor<2x?x3xf32>, tensor<2x?x3xf32>) -> tensor<2x?x6xf32>
  %perm = "tosa.const"() {value = dense<[0, 2, 1]> : tensor<3xi32>} : () -> tensor<3xi32>
  %t = tosa.transpose %cat, %perm : (tensor<2x?x6xf32>, tensor<3xi32>) -> tensor<2x6x?xf32>
  return %t : tensor<2x6x?xf32>
}
