// Kernels the numeric tests compile and check against a float64 reference:
// group ratios 1/4/8, head dims 64/128, causal and not, explicit scale and
// offset, the LSE result, batch 2.
func.func @mha_d64_causal(%q: tensor<1x4x?x64xf32> {deltaflow.name = "q"},
                          %k: tensor<1x4x?x64xf32> {deltaflow.name = "k"},
                          %v: tensor<1x4x?x64xf32> {deltaflow.name = "v"})
    -> (tensor<1x4x?x64xf32> {deltaflow.name = "out"}) {
  %o = attn.attention %q, %k, %v causal : tensor<1x4x?x64xf32>, tensor<1x4x?x64xf32>, tensor<1x4x?x64xf32>
  return %o : tensor<1x4x?x64xf32>
}

func.func @gqa4_d128_scaled(%q: tensor<1x8x?x128xf32> {deltaflow.name = "q"},
                            %k: tensor<1x2x?x128xf32> {deltaflow.name = "k"},
                            %v: tensor<1x2x?x128xf32> {deltaflow.name = "v"})
    -> (tensor<1x8x?x128xf32> {deltaflow.name = "out"}) {
  %o = attn.attention %q, %k, %v scale(0.05) : tensor<1x8x?x128xf32>, tensor<1x2x?x128xf32>, tensor<1x2x?x128xf32>
  return %o : tensor<1x8x?x128xf32>
}

func.func @gqa4_d128_causal(%q: tensor<1x8x?x128xf32> {deltaflow.name = "q"},
                            %k: tensor<1x2x?x128xf32> {deltaflow.name = "k"},
                            %v: tensor<1x2x?x128xf32> {deltaflow.name = "v"})
    -> (tensor<1x8x?x128xf32> {deltaflow.name = "out"}) {
  %o = attn.attention %q, %k, %v causal : tensor<1x8x?x128xf32>, tensor<1x2x?x128xf32>, tensor<1x2x?x128xf32>
  return %o : tensor<1x8x?x128xf32>
}

func.func @gqa8_d64_offset_lse(%q: tensor<2x8x?x64xf32> {deltaflow.name = "q"},
                               %k: tensor<2x1x?x64xf32> {deltaflow.name = "k"},
                               %v: tensor<2x1x?x64xf32> {deltaflow.name = "v"})
    -> (tensor<2x8x?x64xf32> {deltaflow.name = "out"}, tensor<2x8x?xf32> {deltaflow.name = "lse"}) {
  %o, %lse = attn.attention %q, %k, %v scale(0.2) causal offset(3) lse : tensor<2x8x?x64xf32>, tensor<2x1x?x64xf32>, tensor<2x1x?x64xf32>
  return %o, %lse : tensor<2x8x?x64xf32>, tensor<2x8x?xf32>
}

// f16 K/V storage (f32 queries and outputs): the kernels widen K/V on read.
func.func @gqa4_d64_f16kv_lse(%q: tensor<2x8x?x64xf32> {deltaflow.name = "q"},
                              %k: tensor<2x2x?x64xf16> {deltaflow.name = "k"},
                              %v: tensor<2x2x?x64xf16> {deltaflow.name = "v"})
    -> (tensor<2x8x?x64xf32> {deltaflow.name = "out"}, tensor<2x8x?xf32> {deltaflow.name = "lse"}) {
  %o, %lse = attn.attention %q, %k, %v causal lse : tensor<2x8x?x64xf32>, tensor<2x2x?x64xf16>, tensor<2x2x?x64xf16>
  return %o, %lse : tensor<2x8x?x64xf32>, tensor<2x8x?xf32>
}
