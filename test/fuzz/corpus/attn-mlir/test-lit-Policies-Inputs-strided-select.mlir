func.func @f(%q: tensor<1x8x?x64xf32> {deltaflow.name = "q"}, %k: tensor<1x2x?x64xf32> {deltaflow.name = "k"})
    -> (tensor<1x1x?x8xi32> {deltaflow.name = "idx"}) {
  %i = attn.select %q, %k policy(#attn.policy<"strided", {budget = 8 : i64, chunk = 32 : i64, stride = 3 : i64, sinks = 4 : i64, window = 16 : i64}>)
      : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x?x8xi32>
  return %i : tensor<1x1x?x8xi32>
}
