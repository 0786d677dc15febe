// examples/attention.mlir with K and V stored as f16 (half the KV bytes):
// queries and the output stay f32, the kernels widen K/V to f32 where they
// read them and accumulate in f32. Inputs: q float32, k/v float16 .npy
// (attention_check.py gen --kv-dtype float16).
func.func @attention(%q: tensor<1x32x?x128xf32> {deltaflow.name = "q"},
                     %k: tensor<1x8x?x128xf16> {deltaflow.name = "k"},
                     %v: tensor<1x8x?x128xf16> {deltaflow.name = "v"})
    -> (tensor<1x32x?x128xf32> {deltaflow.name = "out"}) {
  %out = attn.attention %q, %k, %v causal
      : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf16>, tensor<1x8x?x128xf16>
  return %out : tensor<1x32x?x128xf32>
}
