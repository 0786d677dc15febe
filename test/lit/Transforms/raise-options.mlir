// attn-raise's finite-mask-threshold must be a finite negative number, or
// 0 (the default, off: printed pipelines spell it out and must parse back).
// RUN: deltaflow-opt %s --attn-raise="finite-mask-threshold=0" | FileCheck %s --check-prefix=OFF
// RUN: not deltaflow-opt %s --attn-raise="finite-mask-threshold=2" 2>&1 | FileCheck %s
// RUN: not deltaflow-opt %s --attn-raise="finite-mask-threshold=inf" 2>&1 | FileCheck %s --check-prefix=INF
// RUN: not deltaflow-opt %s --attn-raise="finite-mask-threshold=abc" 2>&1 | FileCheck %s --check-prefix=TEXT
// OFF: func.func @f
// CHECK: error: attn-raise: finite-mask-threshold must be a finite negative number (0: off), got 2
// INF: error: attn-raise: finite-mask-threshold must be a finite negative number (0: off), got INF
// TEXT: finite-mask-threshold
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  return %x : tensor<2xf32>
}
