// RUN: deltaflow-opt %s --attn-sparsify="policy=window sinks=4 window=16 chunk=32" | FileCheck %s --check-prefix=WIN
// RUN: deltaflow-opt %s --attn-sparsify="policy=token-select budget=64 sinks=4 window=16 chunk=32" | FileCheck %s --check-prefix=TS
// RUN: deltaflow-opt %s --attn-sparsify="policy=adaptive p=0.9 min-budget=8 max-budget=96 sinks=4 window=16 chunk=32" | FileCheck %s --check-prefix=AD
// RUN: deltaflow-opt %s --attn-sparsify="policy=block-topk budget=70 page=16 sinks=4 window=16 chunk=32" | FileCheck %s --check-prefix=BT
// The default policy is token-select with docs/design.md's defaults.
// RUN: deltaflow-opt %s --attn-sparsify | FileCheck %s --check-prefix=DEF
// entries= restricts the rewrite to the named functions (sparse prefill,
// dense decode): @attributes keeps its attn.attention.
// RUN: deltaflow-opt %s --attn-sparsify="policy=window sinks=4 window=16 chunk=32 entries=prefill" | FileCheck %s --check-prefix=ENT
// As a pipeline, composed with the correction and canonicalisation.
// RUN: deltaflow-opt %s --pass-pipeline="builtin.module(attn-sparsify{policy=token-select budget=64 sinks=4 window=16 chunk=32},attn-delta-correct{stride=16},canonicalize)" | FileCheck %s --check-prefix=PIPE

// WIN-LABEL: func.func @prefill
// WIN-NOT: attn.select
// WIN: %[[O:.+]] = attn.sparse_attention %arg0, %arg1, %arg2 sinks(4) window(16) chunk(32) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
// WIN: return %[[O]]

// TS-LABEL: func.func @prefill
// TS: %[[I:.+]] = attn.select %arg0, %arg1 policy(#attn.token_select<budget = 64, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x?x64xi32>
// TS: attn.sparse_attention %arg0, %arg1, %arg2 indices(%[[I]] : tensor<1x1x?x64xi32>) sinks(4) window(16) chunk(32) :

// AD-LABEL: func.func @prefill
// AD: attn.select %arg0, %arg1 policy(#attn.adaptive<p = 0.9, min_budget = 8, max_budget = 96, sinks = 4, window = 16, chunk = 32>) : {{.*}} -> tensor<1x2x?x96xi32>

// BT-LABEL: func.func @prefill
// A budget of 70 holds four whole pages of 16: 64 slots per KV head.
// BT: attn.select %arg0, %arg1 policy(#attn.block_topk<budget = 70, page = 16, sinks = 4, window = 16, chunk = 32>) : {{.*}} -> tensor<1x2x?x64xi32>

// DEF-LABEL: func.func @prefill
// DEF: policy(#attn.token_select<budget = 2048, sinks = 128, window = 512, chunk = 512>)

// ENT-LABEL: func.func @prefill
// ENT: attn.sparse_attention
// ENT-LABEL: func.func @attributes
// ENT-NOT: attn.sparse_attention
// ENT: attn.attention %arg0, %arg1, %arg2 scale(1.000000e-01) causal offset(100) lse

// PIPE-LABEL: func.func @prefill
// PIPE: %[[I:.+]] = attn.select
// PIPE: %[[S:.+]] = attn.sparse_attention {{.*}}indices(%[[I]]
// PIPE: %[[R:.+]] = attn.dense_rows %arg0, %arg1, %arg2 stride(16)
// PIPE: %[[D:.+]] = attn.delta_correct %[[S]], %[[R]] stride(16)
// PIPE: return %[[D]]
func.func @prefill(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>) -> tensor<1x8x?x64xf32> {
  %o = attn.attention %q, %k, %v causal : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %o : tensor<1x8x?x64xf32>
}

// Scale, offset and the LSE carry over; static chunk counts are computed.
// TS-LABEL: func.func @attributes
// TS: attn.select %arg0, %arg1 policy({{.*}}) offset(100) : tensor<1x8x70x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x3x64xi32>
// TS: attn.sparse_attention {{.*}} sinks(4) window(16) chunk(32) scale(1.000000e-01) offset(100) lse :
func.func @attributes(%q: tensor<1x8x70x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>) -> (tensor<1x8x70x64xf32>, tensor<1x8x70xf32>) {
  %o, %l = attn.attention %q, %k, %v scale(0.1) causal offset(100) lse : tensor<1x8x70x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %o, %l : tensor<1x8x70x64xf32>, tensor<1x8x70xf32>
}
