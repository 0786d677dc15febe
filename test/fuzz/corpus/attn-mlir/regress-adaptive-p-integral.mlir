func.func @f(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  %i = attn.select %q, %k policy(#attn.adaptive<p = 1.0, min_budget = 8, max_budget = 16, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x2x?x16xi32>
  return
}
