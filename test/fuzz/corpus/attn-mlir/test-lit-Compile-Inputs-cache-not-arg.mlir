func.func @f(%k: tensor<1x2x?x16xf32> {deltaflow.name = "k"}, %n: tensor<1x2x?x16xf32> {deltaflow.name = "n"}) -> (tensor<1x2x?x16xf32> {deltaflow.name = "y"}) {
  %e = tosa.exp %k : (tensor<1x2x?x16xf32>) -> tensor<1x2x?x16xf32>
  %y = attn.cache_write %e, %n : tensor<1x2x?x16xf32>, tensor<1x2x?x16xf32>
  return %y : tensor<1x2x?x16xf32>
}
