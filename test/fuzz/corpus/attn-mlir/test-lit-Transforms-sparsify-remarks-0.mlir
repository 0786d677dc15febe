// RUN: deltaflow-opt %s --attn-sparsify="policy=token-select budget=64 sinks=4 window=16 chunk=32" -split-input-file -verify-diagnostics | FileCheck %s

// A static context that fits sinks + budget + window stays dense.
// CHECK-LABEL: func.func @short
// CHECK: attn.attention
func.func @short(%q: tensor<1x8x16x64xf32>, %k: tensor<1x2x84x64xf32>, %v: tensor<1x2x84x64xf32>) -> tensor<1x8x16x64xf32> {
  // expected-remark @+1 {{attn-sparsify: left dense (context of 84 keys fits sinks + budget + window = 84)}}
  %o = attn.attention %q, %k, %v causal : tensor<1x8x16x64xf32>, tensor<1x2x84x64xf32>, tensor<1x2x84x64xf32>
  return %o : tensor<1x8x16x64xf32>
}
