func.func @plugin_params(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{policy 'dilated' needs an integer 'chunk' parameter}}
  %i = attn.select %q, %k policy(#attn.policy<"dilated", {sinks = 4 : i64, window = 16 : i64}>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x?x8xi32>
  return
}
