// examples/attention.mlir that also returns the log-sum-exp of each query row
// ([1, Hq, Nq]): what lets partial attentions over disjoint keys merge
// exactly. Checked by attention_check.py check DIR --causal --lse FILE.
func.func @attention(%q: tensor<1x32x?x128xf32> {deltaflow.name = "q"},
                     %k: tensor<1x8x?x128xf32> {deltaflow.name = "k"},
                     %v: tensor<1x8x?x128xf32> {deltaflow.name = "v"})
    -> (tensor<1x32x?x128xf32> {deltaflow.name = "out"},
        tensor<1x32x?xf32> {deltaflow.name = "lse"}) {
  %out, %lse = attn.attention %q, %k, %v causal lse
      : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>
  return %out, %lse : tensor<1x32x?x128xf32>, tensor<1x32x?xf32>
}
