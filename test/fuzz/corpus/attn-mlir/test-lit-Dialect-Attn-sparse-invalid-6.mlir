func.func @select_type(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{'attn.select' op result must be a rank-4 tensor of i32 [batch, heads, chunks, slots], got 'tensor<1x1x?x8xf32>'}}
  %i = attn.select %q, %k policy(#attn.token_select<budget = 8, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x?x8xf32>
  return
}
