// RUN: deltaflow-opt %s -split-input-file -verify-diagnostics

func.func @budget(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{policy 'token-select': budget must be an integer in [1, 16777216], got 0}}
  %i = attn.select %q, %k policy(#attn.token_select<budget = 0, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x?x1xi32>
  return
}
