// RUN: deltaflow-opt %s | FileCheck %s
// RUN: deltaflow-opt %s | deltaflow-opt | FileCheck %s
// RUN: deltaflow-opt %s --mlir-print-op-generic | deltaflow-opt | FileCheck %s

// CHECK-LABEL: func.func @policies
// CHECK: attn.select %{{.+}}, %{{.+}} policy(#attn.token_select<budget = 2048, sinks = 128, window = 512, chunk = 512>) : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32> -> tensor<1x1x?x2048xi32>
// CHECK: attn.select %{{.+}}, %{{.+}} policy(#attn.adaptive<p = 0.95, min_budget = 256, max_budget = 4096, sinks = 128, window = 512, chunk = 512>) offset(7) : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32> -> tensor<1x8x?x4096xi32>
// CHECK: attn.select %{{.+}}, %{{.+}} policy(#attn.block_topk<budget = 2048, page = 16, sinks = 128, window = 512, chunk = 512>) : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32> -> tensor<1x8x?x2048xi32>
// CHECK: attn.select %{{.+}}, %{{.+}} policy(#attn.policy<"dilated", {chunk = 512 : i64, dilation = 4 : i64, sinks = 128 : i64, window = 512 : i64}>) : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32> -> tensor<1x1x?x1024xi32>
func.func @policies(%q: tensor<1x32x?x128xf32>, %k: tensor<1x8x?x128xf32>) {
  %a = attn.select %q, %k policy(#attn.token_select<budget = 2048, sinks = 128, window = 512, chunk = 512>) : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32> -> tensor<1x1x?x2048xi32>
  %b = attn.select %q, %k policy(#attn.adaptive<p = 0.95, min_budget = 256, max_budget = 4096, sinks = 128, window = 512, chunk = 512>) offset(7) : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32> -> tensor<1x8x?x4096xi32>
  %c = attn.select %q, %k policy(#attn.block_topk<budget = 2048, page = 16, sinks = 128, window = 512, chunk = 512>) : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32> -> tensor<1x8x?x2048xi32>
  %d = attn.select %q, %k policy(#attn.policy<"dilated", {chunk = 512 : i64, dilation = 4 : i64, sinks = 128 : i64, window = 512 : i64}>) : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32> -> tensor<1x1x?x1024xi32>
  return
}

// CHECK-LABEL: func.func @sparse_delta
// CHECK: %[[I:.+]] = attn.select
// CHECK: %[[O:.+]], %{{.+}} = attn.sparse_attention %{{.+}}, %{{.+}}, %{{.+}} indices(%[[I]] : tensor<1x1x3x64xi32>) sinks(4) window(16) chunk(32) scale(2.500000e-01) offset(3) lse : tensor<1x8x70x64xf32>, tensor<1x2x300x64xf32>, tensor<1x2x300x64xf32>
// CHECK: %[[R:.+]] = attn.dense_rows %{{.+}}, %{{.+}}, %{{.+}} stride(16) : tensor<1x8x70x64xf32>, tensor<1x2x300x64xf32>, tensor<1x2x300x64xf32>
// CHECK: attn.delta_correct %[[O]], %[[R]] stride(16) : tensor<1x8x70x64xf32>, tensor<1x8x148x64xf32>
// CHECK: attn.sparse_attention %{{.+}}, %{{.+}}, %{{.+}} sinks(4) window(16) chunk(32) :
func.func @sparse_delta(%q: tensor<1x8x70x64xf32>, %k: tensor<1x2x300x64xf32>, %v: tensor<1x2x300x64xf32>) -> tensor<1x8x70x64xf32> {
  %i = attn.select %q, %k policy(#attn.token_select<budget = 64, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x70x64xf32>, tensor<1x2x300x64xf32> -> tensor<1x1x3x64xi32>
  %o, %l = attn.sparse_attention %q, %k, %v indices(%i : tensor<1x1x3x64xi32>) sinks(4) window(16) chunk(32) scale(0.25) offset(3) lse : tensor<1x8x70x64xf32>, tensor<1x2x300x64xf32>, tensor<1x2x300x64xf32>
  // ceil(70 / 16) + 15 + 128 = 148 rows.
  %r = attn.dense_rows %q, %k, %v stride(16) : tensor<1x8x70x64xf32>, tensor<1x2x300x64xf32>, tensor<1x2x300x64xf32>
  %d = attn.delta_correct %o, %r stride(16) : tensor<1x8x70x64xf32>, tensor<1x8x148x64xf32>
  %w = attn.sparse_attention %q, %k, %v sinks(4) window(16) chunk(32) : tensor<1x8x70x64xf32>, tensor<1x2x300x64xf32>, tensor<1x2x300x64xf32>
  return %d : tensor<1x8x70x64xf32>
}

// f32 rows narrowed into an f16 cache (f16 KV storage).
// CHECK-LABEL: func.func @cache_write_f16
// CHECK: attn.cache_write %{{.+}}, %{{.+}} : tensor<1x2x?x64xf16>, tensor<1x2x3x64xf32>
func.func @cache_write_f16(%c: tensor<1x2x?x64xf16>, %n: tensor<1x2x3x64xf32>) -> tensor<1x2x?x64xf16> {
  %r = attn.cache_write %c, %n : tensor<1x2x?x64xf16>, tensor<1x2x3x64xf32>
  return %r : tensor<1x2x?x64xf16>
}
