//===- BlasAttention.h - GEMM-softmax-GEMM baseline on OpenBLAS -*- C++ -*-===//
#ifndef DELTAFLOW_BENCH_BLASATTENTION_H
#define DELTAFLOW_BENCH_BLASATTENTION_H

#include "deltaflow/Runtime/Tensor.h"

namespace deltaflow::bench {

/// Attention as S = scale*Q K^T (sgemm), masked row softmax, O = P V (sgemm),
/// per query head and block of query rows; causal blocks only multiply the
/// keys they can see. q [1,Hq,Nq,D], k/v [1,Hkv,Nk,D]; queries are the last
/// Nq positions. Uses OpenBLAS's own threads (set to `threads`).
rt::Tensor blasAttention(const rt::Tensor &q, const rt::Tensor &k,
                         const rt::Tensor &v, bool causal, int threads);

} // namespace deltaflow::bench

#endif
