// RUN: deltaflow-opt %s --attn-raise | FileCheck %s

// Attention written out in TOSA becomes attn.attention on [1, BH, N, D]
// views. The scale found is always written out; a constant causal mask
// makes it causal.

// Softmax as reduce_max, sub, exp, reduce_sum, reciprocal, mul; scale on
// the right; causal mask.
// CHECK-LABEL: func.func @causal_reciprocal
// CHECK-SAME: (%[[Q:.+]]: tensor<8x4x16xf32>, %[[K:.+]]: tensor<8x4x16xf32>, %[[V:.+]]: tensor<8x4x32xf32>)
// CHECK-DAG: %[[Q4:.+]] = tosa.reshape %[[Q]] {new_shape = array<i64: 1, 8, 4, 16>} : (tensor<8x4x16xf32>) -> tensor<1x8x4x16xf32>
// CHECK-DAG: %[[K4:.+]] = tosa.reshape %[[K]] {new_shape = array<i64: 1, 8, 4, 16>} : (tensor<8x4x16xf32>) -> tensor<1x8x4x16xf32>
// CHECK-DAG: %[[V4:.+]] = tosa.reshape %[[V]] {new_shape = array<i64: 1, 8, 4, 32>} : (tensor<8x4x32xf32>) -> tensor<1x8x4x32xf32>
// CHECK: %[[A:.+]] = attn.attention %[[Q4]], %[[K4]], %[[V4]] scale(2.500000e-01) causal : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x32xf32>
// CHECK: %[[O:.+]] = tosa.reshape %[[A]] {new_shape = array<i64: 8, 4, 32>} : (tensor<1x8x4x32xf32>) -> tensor<8x4x32xf32>
// CHECK-NOT: tosa.
// CHECK: return %[[O]]
func.func @causal_reciprocal(%q: tensor<8x4x16xf32>, %k: tensor<8x4x16xf32>, %v: tensor<8x4x32xf32>) -> tensor<8x4x32xf32> {
  %perms = "tosa.const"() {value = dense<[0, 2, 1]> : tensor<3xi32>} : () -> tensor<3xi32>
  %kt = tosa.transpose %k, %perms : (tensor<8x4x16xf32>, tensor<3xi32>) -> tensor<8x16x4xf32>
  %s = tosa.matmul %q, %kt : (tensor<8x4x16xf32>, tensor<8x16x4xf32>) -> tensor<8x4x4xf32>
  %c = "tosa.const"() {value = dense<0.25> : tensor<1x1x1xf32>} : () -> tensor<1x1x1xf32>
  %ss = tosa.mul %s, %c {shift = 0 : i8} : (tensor<8x4x4xf32>, tensor<1x1x1xf32>) -> tensor<8x4x4xf32>
  %mask = "tosa.const"() {value = dense<[[[0.0, -1.0e9, -1.0e9, -1.0e9], [0.0, 0.0, -1.0e9, -1.0e9], [0.0, 0.0, 0.0, -1.0e9], [0.0, 0.0, 0.0, 0.0]]]> : tensor<1x4x4xf32>} : () -> tensor<1x4x4xf32>
  %sm = tosa.add %ss, %mask : (tensor<8x4x4xf32>, tensor<1x4x4xf32>) -> tensor<8x4x4xf32>
  %mx = tosa.reduce_max %sm {axis = 2 : i32} : (tensor<8x4x4xf32>) -> tensor<8x4x1xf32>
  %d = tosa.sub %sm, %mx : (tensor<8x4x4xf32>, tensor<8x4x1xf32>) -> tensor<8x4x4xf32>
  %e = tosa.exp %d : (tensor<8x4x4xf32>) -> tensor<8x4x4xf32>
  %l = tosa.reduce_sum %e {axis = 2 : i32} : (tensor<8x4x4xf32>) -> tensor<8x4x1xf32>
  %r = tosa.reciprocal %l : (tensor<8x4x1xf32>) -> tensor<8x4x1xf32>
  %p = tosa.mul %e, %r {shift = 0 : i8} : (tensor<8x4x4xf32>, tensor<8x4x1xf32>) -> tensor<8x4x4xf32>
  %o = tosa.matmul %p, %v : (tensor<8x4x4xf32>, tensor<8x4x32xf32>) -> tensor<8x4x32xf32>
  return %o : tensor<8x4x32xf32>
}

// Softmax normalised with arith.divf by the tiled sum; scale on the left;
// the mask on the left, with -inf, and fewer queries than keys (the
// queries are the last two positions).
// CHECK-LABEL: func.func @divf_mask_left
// CHECK: attn.attention %{{.+}}, %{{.+}}, %{{.+}} scale(1.250000e-01) causal : tensor<1x2x2x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>
// CHECK-NOT: arith.divf
// CHECK-NOT: tosa.matmul
func.func @divf_mask_left(%q: tensor<2x2x8xf32>, %k: tensor<2x4x8xf32>, %v: tensor<2x4x8xf32>) -> tensor<2x2x8xf32> {
  %perms = "tosa.const"() {value = dense<[0, 2, 1]> : tensor<3xi32>} : () -> tensor<3xi32>
  %kt = tosa.transpose %k, %perms : (tensor<2x4x8xf32>, tensor<3xi32>) -> tensor<2x8x4xf32>
  %s = tosa.matmul %q, %kt : (tensor<2x2x8xf32>, tensor<2x8x4xf32>) -> tensor<2x2x4xf32>
  %c = "tosa.const"() {value = dense<0.125> : tensor<1x1x1xf32>} : () -> tensor<1x1x1xf32>
  %ss = tosa.mul %c, %s {shift = 0 : i8} : (tensor<1x1x1xf32>, tensor<2x2x4xf32>) -> tensor<2x2x4xf32>
  %mask = "tosa.const"() {value = dense<[[[0.0, 0.0, 0.0, 0xFF800000], [0.0, 0.0, 0.0, 0.0]]]> : tensor<1x2x4xf32>} : () -> tensor<1x2x4xf32>
  %sm = tosa.add %mask, %ss : (tensor<1x2x4xf32>, tensor<2x2x4xf32>) -> tensor<2x2x4xf32>
  %mx = tosa.reduce_max %sm {axis = 2 : i32} : (tensor<2x2x4xf32>) -> tensor<2x2x1xf32>
  %d = tosa.sub %sm, %mx : (tensor<2x2x4xf32>, tensor<2x2x1xf32>) -> tensor<2x2x4xf32>
  %e = tosa.exp %d : (tensor<2x2x4xf32>) -> tensor<2x2x4xf32>
  %l = tosa.reduce_sum %e {axis = 2 : i32} : (tensor<2x2x4xf32>) -> tensor<2x2x1xf32>
  %lt = tosa.tile %l {multiples = array<i64: 1, 1, 4>} : (tensor<2x2x1xf32>) -> tensor<2x2x4xf32>
  %p = arith.divf %e, %lt : tensor<2x2x4xf32>
  %o = tosa.matmul %p, %v : (tensor<2x2x4xf32>, tensor<2x4x8xf32>) -> tensor<2x2x8xf32>
  return %o : tensor<2x2x8xf32>
}

// Plain exp (no max subtraction), no scale, no mask, dynamic sequence
// lengths: scale 1.0, not causal; the reshapes take -1 for the dynamic size.
// CHECK-LABEL: func.func @plain_exp_dynamic
// CHECK: %[[Q4:.+]] = tosa.reshape %arg0 {new_shape = array<i64: 1, 4, -1, 16>} : (tensor<4x?x16xf32>) -> tensor<1x4x?x16xf32>
// CHECK: %[[K4:.+]] = tosa.reshape %arg1 {new_shape = array<i64: 1, 4, -1, 16>} : (tensor<4x?x16xf32>) -> tensor<1x4x?x16xf32>
// CHECK: %[[V4:.+]] = tosa.reshape %arg2 {new_shape = array<i64: 1, 4, -1, 16>} : (tensor<4x?x16xf32>) -> tensor<1x4x?x16xf32>
// CHECK: %[[A:.+]] = attn.attention %[[Q4]], %[[K4]], %[[V4]] scale(1.000000e+00) : tensor<1x4x?x16xf32>, tensor<1x4x?x16xf32>, tensor<1x4x?x16xf32>
// CHECK: tosa.reshape %[[A]] {new_shape = array<i64: 4, -1, 16>} : (tensor<1x4x?x16xf32>) -> tensor<4x?x16xf32>
// CHECK-NOT: tosa.exp
func.func @plain_exp_dynamic(%q: tensor<4x?x16xf32>, %k: tensor<4x?x16xf32>, %v: tensor<4x?x16xf32>) -> tensor<4x?x16xf32> {
  %perms = "tosa.const"() {value = dense<[0, 2, 1]> : tensor<3xi32>} : () -> tensor<3xi32>
  %kt = tosa.transpose %k, %perms : (tensor<4x?x16xf32>, tensor<3xi32>) -> tensor<4x16x?xf32>
  %s = tosa.matmul %q, %kt : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %e = tosa.exp %s : (tensor<4x?x?xf32>) -> tensor<4x?x?xf32>
  %l = tosa.reduce_sum %e {axis = 2 : i32} : (tensor<4x?x?xf32>) -> tensor<4x?x1xf32>
  %r = tosa.reciprocal %l : (tensor<4x?x1xf32>) -> tensor<4x?x1xf32>
  %p = tosa.mul %r, %e {shift = 0 : i8} : (tensor<4x?x1xf32>, tensor<4x?x?xf32>) -> tensor<4x?x?xf32>
  %o = tosa.matmul %p, %v : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  return %o : tensor<4x?x16xf32>
}

// Dynamic lengths, max-subtracted softmax, scale on the left.
// CHECK-LABEL: func.func @scale_left_dynamic
// CHECK: attn.attention {{.*}} scale(5.000000e-01) : tensor<1x4x?x16xf32>, tensor<1x4x?x16xf32>, tensor<1x4x?x8xf32>
// CHECK-NOT: tosa.matmul
func.func @scale_left_dynamic(%q: tensor<4x?x16xf32>, %k: tensor<4x?x16xf32>, %v: tensor<4x?x8xf32>) -> tensor<4x?x8xf32> {
  %perms = "tosa.const"() {value = dense<[0, 2, 1]> : tensor<3xi32>} : () -> tensor<3xi32>
  %kt = tosa.transpose %k, %perms : (tensor<4x?x16xf32>, tensor<3xi32>) -> tensor<4x16x?xf32>
  %s = tosa.matmul %q, %kt : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %c = "tosa.const"() {value = dense<0.5> : tensor<1x1x1xf32>} : () -> tensor<1x1x1xf32>
  %ss = tosa.mul %c, %s {shift = 0 : i8} : (tensor<1x1x1xf32>, tensor<4x?x?xf32>) -> tensor<4x?x?xf32>
  %mx = tosa.reduce_max %ss {axis = 2 : i32} : (tensor<4x?x?xf32>) -> tensor<4x?x1xf32>
  %d = tosa.sub %ss, %mx : (tensor<4x?x?xf32>, tensor<4x?x1xf32>) -> tensor<4x?x?xf32>
  %e = tosa.exp %d : (tensor<4x?x?xf32>) -> tensor<4x?x?xf32>
  %l = tosa.reduce_sum %e {axis = 2 : i32} : (tensor<4x?x?xf32>) -> tensor<4x?x1xf32>
  %r = tosa.reciprocal %l : (tensor<4x?x1xf32>) -> tensor<4x?x1xf32>
  %p = tosa.mul %e, %r {shift = 0 : i8} : (tensor<4x?x?xf32>, tensor<4x?x1xf32>) -> tensor<4x?x?xf32>
  %o = tosa.matmul %p, %v : (tensor<4x?x?xf32>, tensor<4x?x8xf32>) -> tensor<4x?x8xf32>
  return %o : tensor<4x?x8xf32>
}

// k already given as [BH, D, Nk]: it is transposed back for attn.attention.
// CHECK-LABEL: func.func @key_pretransposed
// CHECK: %[[P:.+]] = "tosa.const"() <{value = dense<[0, 2, 1]> : tensor<3xi32>}>
// CHECK: %[[KT:.+]] = tosa.transpose %arg1, %[[P]] : (tensor<2x8x6xf32>, tensor<3xi32>) -> tensor<2x6x8xf32>
// CHECK: %[[K4:.+]] = tosa.reshape %[[KT]] {new_shape = array<i64: 1, 2, 6, 8>}
// CHECK: attn.attention %{{.+}}, %[[K4]], %{{.+}} scale(1.000000e+00) : tensor<1x2x6x8xf32>, tensor<1x2x6x8xf32>, tensor<1x2x6x8xf32>
func.func @key_pretransposed(%q: tensor<2x6x8xf32>, %kt: tensor<2x8x6xf32>, %v: tensor<2x6x8xf32>) -> tensor<2x6x8xf32> {
  %s = tosa.matmul %q, %kt : (tensor<2x6x8xf32>, tensor<2x8x6xf32>) -> tensor<2x6x6xf32>
  %e = tosa.exp %s : (tensor<2x6x6xf32>) -> tensor<2x6x6xf32>
  %l = tosa.reduce_sum %e {axis = 2 : i32} : (tensor<2x6x6xf32>) -> tensor<2x6x1xf32>
  %r = tosa.reciprocal %l : (tensor<2x6x1xf32>) -> tensor<2x6x1xf32>
  %p = tosa.mul %e, %r {shift = 0 : i8} : (tensor<2x6x6xf32>, tensor<2x6x1xf32>) -> tensor<2x6x6xf32>
  %o = tosa.matmul %p, %v : (tensor<2x6x6xf32>, tensor<2x6x8xf32>) -> tensor<2x6x8xf32>
  return %o : tensor<2x6x8xf32>
}
