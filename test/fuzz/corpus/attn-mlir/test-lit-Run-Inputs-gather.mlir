// tosa.gather (an embedding lookup): rows of a 10-row table by index.
func.func @gather(%t: tensor<1x10x8xf32> {deltaflow.name = "table"}, %i: tensor<1x?xi32> {deltaflow.name = "ids"}) -> (tensor<1x?x8xf32> {deltaflow.name = "out"}) {
  %r = tosa.gather %t, %i : (tensor<1x10x8xf32>, tensor<1x?xi32>) -> tensor<1x?x8xf32>
  return %r : tensor<1x?x8xf32>
}
