// attn-raise's finite-mask-threshold must be a finite negative number.
// RUN: not deltaflow-opt %s --attn-raise="finite-mask-threshold=0" 2>&1 | FileCheck %s
// RUN: not deltaflow-opt %s --attn-raise="finite-mask-threshold=inf" 2>&1 | FileCheck %s --check-prefix=INF
// RUN: not deltaflow-opt %s --attn-raise="finite-mask-threshold=abc" 2>&1 | FileCheck %s --check-prefix=TEXT
// CHECK: error: attn-raise: finite-mask-threshold must be a finite negative number, got 0
// INF: error: attn-raise: finite-mask-threshold must be a finite negative number, got INF
// TEXT: finite-mask-threshold
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  return %x : tensor<2xf32>
}
