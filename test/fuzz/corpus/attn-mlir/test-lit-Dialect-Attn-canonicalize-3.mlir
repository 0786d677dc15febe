// A single trailing query (decode) sees every key: causal is a no-op.
// CHECK-LABEL: func.func @decode_causal
// CHECK: attn.attention %{{.+}}, %{{.+}}, %{{.+}} : tensor<1x32x1x128xf32>
func.func @decode_causal(%q: tensor<1x32x1x128xf32>, %k: tensor<1x8x?x128xf32>) -> tensor<1x32x1x128xf32> {
  %o = attn.attention %q, %k, %k causal : tensor<1x32x1x128xf32>, tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>
  return %o : tensor<1x32x1x128xf32>
}
