// Graphs that only look like attention stay exactly as written.
// RUN: deltaflow-opt %s > %t.before
// RUN: deltaflow-opt %s --attn-raise > %t.after
// RUN: diff %t.before %t.after
// RUN: deltaflow-opt %s --attn-raise | FileCheck %s --implicit-check-not=attn.attention

// The mask is a function argument: not known to be causal.
// CHECK-LABEL: func.func @mask_argument
// CHECK: tosa.add
func.func @mask_argument(%q: tensor<8x4x16xf32>, %k: tensor<8x4x16xf32>, %v: tensor<8x4x16xf32>, %mask: tensor<1x4x4xf32>) -> tensor<8x4x16xf32> {
  %perms = "tosa.const"() {value = dense<[0, 2, 1]> : tensor<3xi32>} : () -> tensor<3xi32>
  %kt = tosa.transpose %k, %perms : (tensor<8x4x16xf32>, tensor<3xi32>) -> tensor<8x16x4xf32>
  %s = tosa.matmul %q, %kt : (tensor<8x4x16xf32>, tensor<8x16x4xf32>) -> tensor<8x4x4xf32>
  %c = "tosa.const"() {value = dense<0.25> : tensor<1x1x1xf32>} : () -> tensor<1x1x1xf32>
  %ss = tosa.mul %s, %c {shift = 0 : i8} : (tensor<8x4x4xf32>, tensor<1x1x1xf32>) -> tensor<8x4x4xf32>
  %sm = tosa.add %ss, %mask : (tensor<8x4x4xf32>, tensor<1x4x4xf32>) -> tensor<8x4x4xf32>
  %mx = tosa.reduce_max %sm {axis = 2 : i32} : (tensor<8x4x4xf32>) -> tensor<8x4x1xf32>
  %d = tosa.sub %sm, %mx : (tensor<8x4x4xf32>, tensor<8x4x1xf32>) -> tensor<8x4x4xf32>
  %e = tosa.exp %d : (tensor<8x4x4xf32>) -> tensor<8x4x4xf32>
  %l = tosa.reduce_sum %e {axis = 2 : i32} : (tensor<8x4x4xf32>) -> tensor<8x4x1xf32>
  %r = tosa.reciprocal %l : (tensor<8x4x1xf32>) -> tensor<8x4x1xf32>
  %p = tosa.mul %e, %r {shift = 0 : i8} : (tensor<8x4x4xf32>, tensor<8x4x1xf32>) -> tensor<8x4x4xf32>
  %o = tosa.matmul %p, %v : (tensor<8x4x4xf32>, tensor<8x4x16xf32>) -> tensor<8x4x16xf32>
  return %o : tensor<8x4x16xf32>
}

// A constant mask that is not the causal one (it shows one key too many).
// CHECK-LABEL: func.func @mask_not_causal
// CHECK: tosa.add
func.func @mask_not_causal(%q: tensor<8x4x16xf32>, %k: tensor<8x4x16xf32>, %v: tensor<8x4x16xf32>) -> tensor<8x4x16xf32> {
  %perms = "tosa.const"() {value = dense<[0, 2, 1]> : tensor<3xi32>} : () -> tensor<3xi32>
  %kt = tosa.transpose %k, %perms : (tensor<8x4x16xf32>, tensor<3xi32>) -> tensor<8x16x4xf32>
  %s = tosa.matmul %q, %kt : (tensor<8x4x16xf32>, tensor<8x16x4xf32>) -> tensor<8x4x4xf32>
  %mask = "tosa.const"() {value = dense<[[[0.0, 0.0, -1.0e9, -1.0e9], [0.0, 0.0, 0.0, -1.0e9], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]> : tensor<1x4x4xf32>} : () -> tensor<1x4x4xf32>
  %sm = tosa.add %s, %mask : (tensor<8x4x4xf32>, tensor<1x4x4xf32>) -> tensor<8x4x4xf32>
  %mx = tosa.reduce_max %sm {axis = 2 : i32} : (tensor<8x4x4xf32>) -> tensor<8x4x1xf32>
  %d = tosa.sub %sm, %mx : (tensor<8x4x4xf32>, tensor<8x4x1xf32>) -> tensor<8x4x4xf32>
  %e = tosa.exp %d : (tensor<8x4x4xf32>) -> tensor<8x4x4xf32>
  %l = tosa.reduce_sum %e {axis = 2 : i32} : (tensor<8x4x4xf32>) -> tensor<8x4x1xf32>
  %r = tosa.reciprocal %l : (tensor<8x4x1xf32>) -> tensor<8x4x1xf32>
  %p = tosa.mul %e, %r {shift = 0 : i8} : (tensor<8x4x4xf32>, tensor<8x4x1xf32>) -> tensor<8x4x4xf32>
  %o = tosa.matmul %p, %v : (tensor<8x4x4xf32>, tensor<8x4x16xf32>) -> tensor<8x4x16xf32>
  return %o : tensor<8x4x16xf32>
}

// A small negative value (-1.0 instead of <= -1e4) does not mask.
// CHECK-LABEL: func.func @mask_too_weak
// CHECK: tosa.add
func.func @mask_too_weak(%q: tensor<1x2x8xf32>, %k: tensor<1x2x8xf32>, %v: tensor<1x2x8xf32>) -> tensor<1x2x8xf32> {
  %perms = "tosa.const"() {value = dense<[0, 2, 1]> : tensor<3xi32>} : () -> tensor<3xi32>
  %kt = tosa.transpose %k, %perms : (tensor<1x2x8xf32>, tensor<3xi32>) -> tensor<1x8x2xf32>
  %s = tosa.matmul %q, %kt : (tensor<1x2x8xf32>, tensor<1x8x2xf32>) -> tensor<1x2x2xf32>
  %mask = "tosa.const"() {value = dense<[[[0.0, -1.0], [0.0, 0.0]]]> : tensor<1x2x2xf32>} : () -> tensor<1x2x2xf32>
  %sm = tosa.add %s, %mask : (tensor<1x2x2xf32>, tensor<1x2x2xf32>) -> tensor<1x2x2xf32>
  %e = tosa.exp %sm : (tensor<1x2x2xf32>) -> tensor<1x2x2xf32>
  %l = tosa.reduce_sum %e {axis = 2 : i32} : (tensor<1x2x2xf32>) -> tensor<1x2x1xf32>
  %r = tosa.reciprocal %l : (tensor<1x2x1xf32>) -> tensor<1x2x1xf32>
  %p = tosa.mul %e, %r {shift = 0 : i8} : (tensor<1x2x2xf32>, tensor<1x2x1xf32>) -> tensor<1x2x2xf32>
  %o = tosa.matmul %p, %v : (tensor<1x2x2xf32>, tensor<1x2x8xf32>) -> tensor<1x2x8xf32>
  return %o : tensor<1x2x8xf32>
}

// Softmax over the query axis (1), not the key axis (2).
// CHECK-LABEL: func.func @wrong_axis
// CHECK: tosa.reduce_sum %{{.+}} {axis = 1 : i32}
func.func @wrong_axis(%q: tensor<8x4x16xf32>, %k: tensor<8x4x16xf32>, %v: tensor<8x4x16xf32>) -> tensor<8x4x16xf32> {
  %perms = "tosa.const"() {value = dense<[0, 2, 1]> : tensor<3xi32>} : () -> tensor<3xi32>
  %kt = tosa.transpose %k, %perms : (tensor<8x4x16xf32>, tensor<3xi32>) -> tensor<8x16x4xf32>
  %s = tosa.matmul %q, %kt : (tensor<8x4x16xf32>, tensor<8x16x4xf32>) -> tensor<8x4x4xf32>
  %mx = tosa.reduce_max %s {axis = 1 : i32} : (tensor<8x4x4xf32>) -> tensor<8x1x4xf32>
  %d = tosa.sub %s, %mx : (tensor<8x4x4xf32>, tensor<8x1x4xf32>) -> tensor<8x4x4xf32>
  %e = tosa.exp %d : (tensor<8x4x4xf32>) -> tensor<8x4x4xf32>
  %l = tosa.reduce_sum %e {axis = 1 : i32} : (tensor<8x4x4xf32>) -> tensor<8x1x4xf32>
  %r = tosa.reciprocal %l : (tensor<8x1x4xf32>) -> tensor<8x1x4xf32>
  %p = tosa.mul %e, %r {shift = 0 : i8} : (tensor<8x4x4xf32>, tensor<8x1x4xf32>) -> tensor<8x4x4xf32>
  %o = tosa.matmul %p, %v : (tensor<8x4x4xf32>, tensor<8x4x16xf32>) -> tensor<8x4x16xf32>
  return %o : tensor<8x4x16xf32>
}

// The scaled scores have a second use (they are returned too).
// CHECK-LABEL: func.func @two_uses
// CHECK: tosa.exp
func.func @two_uses(%q: tensor<8x4x16xf32>, %k: tensor<8x4x16xf32>, %v: tensor<8x4x16xf32>) -> (tensor<8x4x16xf32>, tensor<8x4x4xf32>) {
  %perms = "tosa.const"() {value = dense<[0, 2, 1]> : tensor<3xi32>} : () -> tensor<3xi32>
  %kt = tosa.transpose %k, %perms : (tensor<8x4x16xf32>, tensor<3xi32>) -> tensor<8x16x4xf32>
  %s = tosa.matmul %q, %kt : (tensor<8x4x16xf32>, tensor<8x16x4xf32>) -> tensor<8x4x4xf32>
  %c = "tosa.const"() {value = dense<0.25> : tensor<1x1x1xf32>} : () -> tensor<1x1x1xf32>
  %ss = tosa.mul %s, %c {shift = 0 : i8} : (tensor<8x4x4xf32>, tensor<1x1x1xf32>) -> tensor<8x4x4xf32>
  %mx = tosa.reduce_max %ss {axis = 2 : i32} : (tensor<8x4x4xf32>) -> tensor<8x4x1xf32>
  %d = tosa.sub %ss, %mx : (tensor<8x4x4xf32>, tensor<8x4x1xf32>) -> tensor<8x4x4xf32>
  %e = tosa.exp %d : (tensor<8x4x4xf32>) -> tensor<8x4x4xf32>
  %l = tosa.reduce_sum %e {axis = 2 : i32} : (tensor<8x4x4xf32>) -> tensor<8x4x1xf32>
  %r = tosa.reciprocal %l : (tensor<8x4x1xf32>) -> tensor<8x4x1xf32>
  %p = tosa.mul %e, %r {shift = 0 : i8} : (tensor<8x4x4xf32>, tensor<8x4x1xf32>) -> tensor<8x4x4xf32>
  %o = tosa.matmul %p, %v : (tensor<8x4x4xf32>, tensor<8x4x16xf32>) -> tensor<8x4x16xf32>
  return %o, %ss : tensor<8x4x16xf32>, tensor<8x4x4xf32>
}

// Two chains sharing one exp: the probabilities feed two matmuls.
// CHECK-LABEL: func.func @shared_probabilities
// CHECK-COUNT-2: tosa.matmul %{{.+}}, %arg
func.func @shared_probabilities(%q: tensor<2x4x8xf32>, %k: tensor<2x4x8xf32>, %v: tensor<2x4x8xf32>, %w: tensor<2x4x8xf32>) -> (tensor<2x4x8xf32>, tensor<2x4x8xf32>) {
  %perms = "tosa.const"() {value = dense<[0, 2, 1]> : tensor<3xi32>} : () -> tensor<3xi32>
  %kt = tosa.transpose %k, %perms : (tensor<2x4x8xf32>, tensor<3xi32>) -> tensor<2x8x4xf32>
  %s = tosa.matmul %q, %kt : (tensor<2x4x8xf32>, tensor<2x8x4xf32>) -> tensor<2x4x4xf32>
  %e = tosa.exp %s : (tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
  %l = tosa.reduce_sum %e {axis = 2 : i32} : (tensor<2x4x4xf32>) -> tensor<2x4x1xf32>
  %r = tosa.reciprocal %l : (tensor<2x4x1xf32>) -> tensor<2x4x1xf32>
  %p = tosa.mul %e, %r {shift = 0 : i8} : (tensor<2x4x4xf32>, tensor<2x4x1xf32>) -> tensor<2x4x4xf32>
  %o = tosa.matmul %p, %v : (tensor<2x4x4xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  %o2 = tosa.matmul %p, %w : (tensor<2x4x4xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  return %o, %o2 : tensor<2x4x8xf32>, tensor<2x4x8xf32>
}
