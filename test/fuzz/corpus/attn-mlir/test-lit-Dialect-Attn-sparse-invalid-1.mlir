func.func @sinks(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{policy 'token-select': sinks must be an integer in [0, 16777216], got -1}}
  %i = attn.select %q, %k policy(#attn.token_select<budget = 8, sinks = -1, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x?x8xi32>
  return
}
