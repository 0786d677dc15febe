// f16 queries compile only for --target=cuda (tensor cores); on CPU targets
// f16 is supported only as K/V storage.
func.func @f(%q: tensor<1x4x?x64xf16> {deltaflow.name = "q"}, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> tensor<1x4x?x64xf16> {
  %o = attn.attention %q, %k, %v : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>
  return %o : tensor<1x4x?x64xf16>
}
