// The printed form parses back, with the same double. #attn.adaptive's p
// printed with "%.15g" (Attn_F64Param, AttnAttrs.td): p = 1.0 printed as
// "p = 1" and 1.0e-20 as "1e-20", which the parser refuses (a float literal
// needs a '.'); found by fuzz-attn-mlir (test/fuzz/corpus/attn-mlir/
// regress-adaptive-p-integral.mlir). Now the shortest decimal that reads
// back, always with a '.'.
// RUN: deltaflow-opt %s | deltaflow-opt | FileCheck %s

// CHECK-LABEL: func.func @integral_p
// CHECK: #attn.adaptive<p = 1.0, min_budget = 8
func.func @integral_p(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  %i = attn.select %q, %k policy(#attn.adaptive<p = 1.0, min_budget = 8, max_budget = 16, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x2x?x16xi32>
  return
}

// CHECK-LABEL: func.func @tiny_p
// CHECK: #attn.adaptive<p = 1.0e-20, min_budget = 8
func.func @tiny_p(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  %i = attn.select %q, %k policy(#attn.adaptive<p = 1.0e-20, min_budget = 8, max_budget = 16, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x2x?x16xi32>
  return
}

// CHECK-LABEL: func.func @seventeen_digits
// CHECK: #attn.adaptive<p = 0.30000000000000004, min_budget = 8
// CHECK: #attn.adaptive<p = 0.95, min_budget = 8
func.func @seventeen_digits(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  %i = attn.select %q, %k policy(#attn.adaptive<p = 0.30000000000000004, min_budget = 8, max_budget = 16, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x2x?x16xi32>
  %j = attn.select %q, %k policy(#attn.adaptive<p = 0.95, min_budget = 8, max_budget = 16, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x2x?x16xi32>
  return
}
