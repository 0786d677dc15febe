func.func @select_chunks(%q: tensor<1x8x70x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{'attn.select' op result has 2 chunks but 70 query rows in chunks of 32 make 3}}
  %i = attn.select %q, %k policy(#attn.token_select<budget = 8, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x70x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x2x8xi32>
  return
}
