// Shapes and types the tensor-core kernel does not take; each is a located
// error under --target=cuda (split-input-file style: one function each).
func.func @d96(%q: tensor<1x4x?x96xbf16>, %k: tensor<1x4x?x96xbf16>, %v: tensor<1x4x?x96xbf16>) -> tensor<1x4x?x96xbf16> {
  %o = attn.attention %q, %k, %v causal : tensor<1x4x?x96xbf16>, tensor<1x4x?x96xbf16>, tensor<1x4x?x96xbf16>
  return %o : tensor<1x4x?x96xbf16>
}
