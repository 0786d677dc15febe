func.func @page(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{policy 'block-topk': budget (8) must hold at least one page of 16}}
  %i = attn.select %q, %k policy(#attn.block_topk<budget = 8, page = 16, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x2x?x8xi32>
  return
}
