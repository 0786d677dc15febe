func.func @minmax(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{policy 'adaptive': max-budget (4) must be >= min-budget (8)}}
  %i = attn.select %q, %k policy(#attn.adaptive<p = 0.9, min_budget = 8, max_budget = 4, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x2x?x4xi32>
  return
}
