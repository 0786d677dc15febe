// A used log-sum-exp stays.
// CHECK-LABEL: func.func @keep_used_lse
// CHECK: attn.attention %{{.+}}, %{{.+}}, %{{.+}} lse : tensor
func.func @keep_used_lse(%q: tensor<1x4x?x8xf32>, %k: tensor<1x2x?x8xf32>, %v: tensor<1x2x?x8xf32>) -> tensor<1x4x?xf32> {
  %o, %lse = attn.attention %q, %k, %v lse : tensor<1x4x?x8xf32>, tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>
  return %lse : tensor<1x4x?xf32>
}
