// f16, grouped heads (G = 4), head dim 64, the LSE (f32), not causal.
func.func @attention(%q: tensor<2x8x?x64xf16> {deltaflow.name = "q"},
                     %k: tensor<2x2x?x64xf16> {deltaflow.name = "k"},
                     %v: tensor<2x2x?x64xf16> {deltaflow.name = "v"})
    -> (tensor<2x8x?x64xf16> {deltaflow.name = "out"},
        tensor<2x8x?xf32> {deltaflow.name = "lse"}) {
  %out, %lse = attn.attention %q, %k, %v lse
      : tensor<2x8x?x64xf16>, tensor<2x2x?x64xf16>, tensor<2x2x?x64xf16>
  return %out, %lse : tensor<2x8x?x64xf16>, tensor<2x8x?xf32>
}
