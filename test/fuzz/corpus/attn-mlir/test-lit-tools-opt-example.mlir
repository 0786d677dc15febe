// The built-in example parses, verifies and round-trips.
// RUN: deltaflow-opt %examples/attention.mlir | FileCheck %s
// RUN: deltaflow-opt %examples/attention.mlir | deltaflow-opt -canonicalize -cse | FileCheck %s
// CHECK-LABEL: func.func @attention
// CHECK-SAME: tensor<1x32x?x128xf32> {deltaflow.name = "q"}
// CHECK: attn.attention %{{.+}}, %{{.+}}, %{{.+}} causal : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>
