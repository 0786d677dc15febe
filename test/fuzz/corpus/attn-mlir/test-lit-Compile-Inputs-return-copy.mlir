// Entry results that no kernel computes: an argument returned as it is, a
// value returned twice, and x + 0.0 (which canonicalization folds to x).
func.func @passthrough(%x: tensor<?x8xf32> {deltaflow.name = "x"}) -> (tensor<?x8xf32> {deltaflow.name = "same"}) {
  return %x : tensor<?x8xf32>
}

func.func @twice(%x: tensor<?x8xf32> {deltaflow.name = "x"}) -> (tensor<?x8xf32> {deltaflow.name = "a"}, tensor<?x8xf32> {deltaflow.name = "b"}) {
  %y = tosa.negate %x : (tensor<?x8xf32>) -> tensor<?x8xf32>
  return %y, %y : tensor<?x8xf32>, tensor<?x8xf32>
}

func.func @folded(%x: tensor<?x8xf32> {deltaflow.name = "x"}) -> (tensor<?x8xf32> {deltaflow.name = "out"}) {
  %z = "tosa.const"() {value = dense<0.0> : tensor<1x1xf32>} : () -> tensor<1x1xf32>
  %y = tosa.add %x, %z : (tensor<?x8xf32>, tensor<1x1xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
