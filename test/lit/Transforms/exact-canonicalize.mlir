// exact-canonicalize folds what canonicalize folds, except float tosa.add
// and tosa.mul (x + 0.0 -> x and x * 0.0 -> 0 are not IEEE-exact).
// RUN: deltaflow-opt %s --exact-canonicalize | FileCheck %s
// RUN: deltaflow-opt %s --canonicalize | FileCheck %s --check-prefix=UPSTREAM

// CHECK-LABEL: func.func @add_zero
// CHECK: %[[Y:.+]] = tosa.add %arg0, %{{.+}}
// CHECK: return %[[Y]]
// UPSTREAM-LABEL: func.func @add_zero
// UPSTREAM-NEXT: return %arg0
func.func @add_zero(%x: tensor<4xf32>) -> tensor<4xf32> {
  %z = "tosa.const"() {value = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %y = tosa.add %x, %z : (tensor<4xf32>, tensor<1xf32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @mul_zero
// CHECK: %[[Y:.+]] = tosa.mul %arg0, %{{.+}}
// CHECK: return %[[Y]]
func.func @mul_zero(%x: tensor<4xf32>) -> tensor<4xf32> {
  %z = "tosa.const"() {value = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %y = tosa.mul %x, %z {shift = 0 : i8} : (tensor<4xf32>, tensor<1xf32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}

// Integer adds fold (exact), reshape chains fold, and a dead float add is
// erased with its constant.
// CHECK-LABEL: func.func @others
// CHECK-NEXT: %[[R:.+]] = tosa.reshape %arg0 {new_shape = array<i64: 4>}
// CHECK-NEXT: return %[[R]], %arg1
func.func @others(%x: tensor<2x2xf32>, %i: tensor<4xi32>) -> (tensor<4xf32>, tensor<4xi32>) {
  %r1 = tosa.reshape %x {new_shape = array<i64: 1, 4>} : (tensor<2x2xf32>) -> tensor<1x4xf32>
  %r2 = tosa.reshape %r1 {new_shape = array<i64: 4>} : (tensor<1x4xf32>) -> tensor<4xf32>
  %zi = "tosa.const"() {value = dense<0> : tensor<4xi32>} : () -> tensor<4xi32>
  %j = tosa.add %i, %zi : (tensor<4xi32>, tensor<4xi32>) -> tensor<4xi32>
  %c = "tosa.const"() {value = dense<1.0> : tensor<4xf32>} : () -> tensor<4xf32>
  %dead = tosa.add %r2, %c : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %r2, %j : tensor<4xf32>, tensor<4xi32>
}
