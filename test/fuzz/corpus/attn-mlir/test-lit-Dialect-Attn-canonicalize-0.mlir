// RUN: deltaflow-opt %s -split-input-file -canonicalize | FileCheck %s

// An unused log-sum-exp is not computed.
// CHECK-LABEL: func.func @drop_unused_lse
// CHECK: %[[O:.+]] = attn.attention %{{.+}}, %{{.+}}, %{{.+}} causal : tensor
// CHECK-NOT: lse
// CHECK: return %[[O]]
func.func @drop_unused_lse(%q: tensor<1x4x?x8xf32>, %k: tensor<1x2x?x8xf32>, %v: tensor<1x2x?x8xf32>) -> tensor<1x4x?x8xf32> {
  %o, %lse = attn.attention %q, %k, %v causal lse : tensor<1x4x?x8xf32>, tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>
  return %o : tensor<1x4x?x8xf32>
}
