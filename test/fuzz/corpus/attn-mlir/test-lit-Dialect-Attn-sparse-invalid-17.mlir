// In-tree policies without an attribute of their own are checked by the
// same registry bounds as the typed ones.
func.func @strided_params(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{policy 'strided': stride must be an integer in [1, 1048576], got 0}}
  %i = attn.select %q, %k policy(#attn.policy<"strided", {budget = 8 : i64, chunk = 32 : i64, stride = 0 : i64, sinks = 4 : i64, window = 16 : i64}>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x?x8xi32>
  return
}
