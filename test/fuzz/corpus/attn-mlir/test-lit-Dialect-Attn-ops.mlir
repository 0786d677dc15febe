// RUN: deltaflow-opt %s | FileCheck %s
// Round-trip through the custom form, then again through the generic form.
// RUN: deltaflow-opt %s | deltaflow-opt | FileCheck %s
// RUN: deltaflow-opt %s --mlir-print-op-generic | deltaflow-opt | FileCheck %s

// CHECK-LABEL: func.func @plain
// CHECK-SAME: (%[[Q:.+]]: tensor<1x32x?x128xf32>, %[[K:.+]]: tensor<1x8x?x128xf32>, %[[V:.+]]: tensor<1x8x?x128xf32>)
// CHECK: %[[O:.+]] = attn.attention %[[Q]], %[[K]], %[[V]] : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>
// CHECK: return %[[O]] : tensor<1x32x?x128xf32>
func.func @plain(%q: tensor<1x32x?x128xf32>, %k: tensor<1x8x?x128xf32>, %v: tensor<1x8x?x128xf32>) -> tensor<1x32x?x128xf32> {
  %o = attn.attention %q, %k, %v : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>
  return %o : tensor<1x32x?x128xf32>
}

// CHECK-LABEL: func.func @all_attributes
// CHECK: %{{.+}}, %{{.+}} = attn.attention %{{.+}}, %{{.+}}, %{{.+}} scale(1.250000e-01) causal offset(16) lse : tensor<2x8x?x64xf16>, tensor<2x2x?x64xf16>, tensor<2x2x?x32xf16>
// The LSE of a 16-bit query is f32 (as FlashAttention's).
// CHECK: return %{{.+}}, %{{.+}} : tensor<2x8x?x32xf16>, tensor<2x8x?xf32>
func.func @all_attributes(%q: tensor<2x8x?x64xf16>, %k: tensor<2x2x?x64xf16>, %v: tensor<2x2x?x32xf16>) -> (tensor<2x8x?x32xf16>, tensor<2x8x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v scale(0.125) causal offset(16) lse : tensor<2x8x?x64xf16>, tensor<2x2x?x64xf16>, tensor<2x2x?x32xf16>
  return %o, %lse : tensor<2x8x?x32xf16>, tensor<2x8x?xf32>
}

// f16 K/V storage with f32 queries: the result has the query's type.
// CHECK-LABEL: func.func @f16_kv
// CHECK: attn.attention %{{.+}}, %{{.+}}, %{{.+}} causal : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf16>, tensor<1x2x?x64xf16>
// CHECK: return %{{.+}} : tensor<1x8x?x64xf32>
func.func @f16_kv(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf16>, %v: tensor<1x2x?x64xf16>) -> tensor<1x8x?x64xf32> {
  %o = attn.attention %q, %k, %v causal : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf16>, tensor<1x2x?x64xf16>
  return %o : tensor<1x8x?x64xf32>
}

// Static shapes, Nq != Nk, group size 1, bf16 and f64.
// CHECK-LABEL: func.func @static_mha
// CHECK: attn.attention %{{.+}}, %{{.+}}, %{{.+}} causal : tensor<1x4x3x16xbf16>, tensor<1x4x17x16xbf16>, tensor<1x4x17x16xbf16>
// CHECK: attn.attention %{{.+}}, %{{.+}}, %{{.+}} scale(2.000000e+00) : tensor<?x2x5x8xf64>, tensor<?x1x5x8xf64>, tensor<?x1x5x8xf64>
func.func @static_mha(%q: tensor<1x4x3x16xbf16>, %k: tensor<1x4x17x16xbf16>, %v: tensor<1x4x17x16xbf16>,
                      %a: tensor<?x2x5x8xf64>, %b: tensor<?x1x5x8xf64>) -> (tensor<1x4x3x16xbf16>, tensor<?x2x5x8xf64>) {
  %o = attn.attention %q, %k, %v causal : tensor<1x4x3x16xbf16>, tensor<1x4x17x16xbf16>, tensor<1x4x17x16xbf16>
  %p = attn.attention %a, %b, %b scale(2.0) : tensor<?x2x5x8xf64>, tensor<?x1x5x8xf64>, tensor<?x1x5x8xf64>
  return %o, %p : tensor<1x4x3x16xbf16>, tensor<?x2x5x8xf64>
}

// The generic form parses too; result types must agree with inference.
// CHECK-LABEL: func.func @generic
// CHECK: attn.attention %{{.+}}, %{{.+}}, %{{.+}} causal lse : tensor<1x4x?x8xf32>, tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>
func.func @generic(%q: tensor<1x4x?x8xf32>, %k: tensor<1x2x?x8xf32>, %v: tensor<1x2x?x8xf32>) -> tensor<1x4x?xf32> {
  %o:2 = "attn.attention"(%q, %k, %v) <{causal, lse}> : (tensor<1x4x?x8xf32>, tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>) -> (tensor<1x4x?x8xf32>, tensor<1x4x?xf32>)
  return %o#1 : tensor<1x4x?xf32>
}
