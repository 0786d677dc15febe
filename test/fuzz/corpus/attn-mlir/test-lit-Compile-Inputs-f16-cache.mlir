// cache_write of f32 rows into an f16 KV cache (the session allocates it as
// f16; the runtime rounds each row to nearest even).
func.func @f(%c: tensor<1x2x?x16xf16> {deltaflow.name = "kc"}, %n: tensor<1x2x1x16xf32> {deltaflow.name = "n"},
             %q: tensor<1x4x1x16xf32> {deltaflow.name = "q"}) -> tensor<1x4x1x16xf32> {
  %k = attn.cache_write %c, %n : tensor<1x2x?x16xf16>, tensor<1x2x1x16xf32>
  %o = attn.attention %q, %k, %k : tensor<1x4x1x16xf32>, tensor<1x2x?x16xf16>, tensor<1x2x?x16xf16>
  return %o : tensor<1x4x1x16xf32>
}
