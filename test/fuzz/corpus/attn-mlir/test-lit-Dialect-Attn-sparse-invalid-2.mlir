func.func @p(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{policy 'adaptive': p must be in (0, 1], got 1.5}}
  %i = attn.select %q, %k policy(#attn.adaptive<p = 1.5, min_budget = 8, max_budget = 64, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x2x?x64xi32>
  return
}
