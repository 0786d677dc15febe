// RUN: deltaflow-opt %s --attn-sparsify="policy=token-select budget=64 sinks=4 window=16 chunk=32" -split-input-file -verify-diagnostics | FileCheck %s

// A static context that fits sinks + budget + window stays dense.
// CHECK-LABEL: func.func @short
// CHECK: attn.attention
func.func @short(%q: tensor<1x8x16x64xf32>, %k: tensor<1x2x84x64xf32>, %v: tensor<1x2x84x64xf32>) -> tensor<1x8x16x64xf32> {
  // expected-remark @+1 {{attn-sparsify: left dense (context of 84 keys fits sinks + budget + window = 84)}}
  %o = attn.attention %q, %k, %v causal : tensor<1x8x16x64xf32>, tensor<1x2x84x64xf32>, tensor<1x2x84x64xf32>
  return %o : tensor<1x8x16x64xf32>
}

// -----

// One key more and it is sparsified.
// CHECK-LABEL: func.func @long
// CHECK: attn.select
// CHECK: attn.sparse_attention
func.func @long(%q: tensor<1x8x16x64xf32>, %k: tensor<1x2x85x64xf32>, %v: tensor<1x2x85x64xf32>) -> tensor<1x8x16x64xf32> {
  %o = attn.attention %q, %k, %v causal : tensor<1x8x16x64xf32>, tensor<1x2x85x64xf32>, tensor<1x2x85x64xf32>
  return %o : tensor<1x8x16x64xf32>
}

// -----

// Without the causal rule there is no window to keep.
// CHECK-LABEL: func.func @bidirectional
// CHECK: attn.attention
func.func @bidirectional(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>) -> tensor<1x8x?x64xf32> {
  // expected-remark @+1 {{attn-sparsify: left dense (not causal)}}
  %o = attn.attention %q, %k, %v : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %o : tensor<1x8x?x64xf32>
}
