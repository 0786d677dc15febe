//===- AttnOps.td - attn dialect ops -----------------------*- tablegen -*-===//

#ifndef DELTAFLOW_DIALECT_ATTN_IR_ATTNOPS_TD
#define DELTAFLOW_DIALECT_ATTN_IR_ATTNOPS_TD

include "deltaflow/Dialect/Attn/IR/AttnBase.td"
include "deltaflow/Dialect/Attn/IR/AttnAttrs.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

def Attn_AttentionOp : Attn_Op<"attention", [Pure, InferTypeOpAdaptor]> {
  let summary = "exact scaled dot-product attention with grouped-query heads";
  let description = [{
    Computes `softmax(scale * Q K^T + mask) V` per batch and query head.

    * `query`: `[B, Hq, Nq, D]`, `key`: `[B, Hkv, Nk, D]`,
      `value`: `[B, Hkv, Nk, Dv]`; sequence lengths may be dynamic (`?`).
      `Hq % Hkv == 0`; query head `h` uses key/value head `h / (Hq / Hkv)`.
    * `scale` defaults to `1 / sqrt(D)`.
    * `causal`: query row `i` sees key `j` only if `j <= i + offset`.
    * `offset` is the position of the first query. When absent the queries
      are the last `Nq` positions, i.e. `offset = Nk - Nq`.
    * `lse`: also return the natural-log sum of exponentials `[B, Hq, Nq]`,
      which lets partial attentions over disjoint key sets merge exactly.

    Result types are inferred from the operands.

    ```mlir
    %o = attn.attention %q, %k, %v scale(0.088388) causal
        : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>
    %o2, %lse = attn.attention %q, %k, %v causal offset(16) lse
        : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>
    ```
  }];

  let arguments = (ins
    AnyRankedTensor:$query,
    AnyRankedTensor:$key,
    AnyRankedTensor:$value,
    OptionalAttr<F64Attr>:$scale,
    UnitAttr:$causal,
    OptionalAttr<I64Attr>:$offset,
    UnitAttr:$lse
  );
  let results = (outs AnyRankedTensor:$output, Optional<AnyRankedTensor>:$logsumexp);

  let assemblyFormat = [{
    $query `,` $key `,` $value
    (`scale` `(` $scale^ `)`)?
    (`causal` $causal^)?
    (`offset` `(` $offset^ `)`)?
    (`lse` $lse^)?
    attr-dict `:` type($query) `,` type($key) `,` type($value)
  }];

  let hasVerifier = 1;
  let hasCanonicalizer = 1;

  let extraClassDeclaration = [{
    /// The scale in effect: the attribute, or 1/sqrt(D).
    double getEffectiveScale();
    /// Number of query heads per key/value head (Hq / Hkv).
    int64_t getGroupSize();
  }];
}


//===----------------------------------------------------------------------===//
// Sparse attention: selection, attention over the selection, Delta correction
//===----------------------------------------------------------------------===//

/// Any attribute implementing SelectionPolicyAttrInterface (AttnAttrs.td).
def Attn_AnyPolicyAttr : Attr<
    CPred<"::llvm::isa<::mlir::deltaflow::attn::SelectionPolicyAttrInterface>($_self)">,
    "sparsity policy attribute"> {
  let storageType = "::mlir::Attribute";
  let returnType = "::mlir::Attribute";
  let convertFromStorage = "$_self";
}

def Attn_SelectOp : Attn_Op<"select", [Pure]> {
  let summary = "choose key indices per query chunk under a policy";
  let description = [{
    Query rows are cut into chunks of the policy's `chunk` rows; chunk `c`
    starts at position `s0 = offset + c * chunk` (offset defaults to
    `Nk - Nq`). Each chunk selects keys from the candidates
    `[sinks, s0 - window)`, which every query of the chunk may see.

    Result `[B, Hs, C, slots]` of `i32`: `C = ceil(Nq / chunk)`; `Hs` is 1
    for one set shared by all heads (token_select) or `Hkv` for one set per
    KV head; indices are ascending, and unused slots hold -1.
    ```mlir
    %idx = attn.select %q, %k policy(#attn.token_select<budget = 2048,
        sinks = 128, window = 512, chunk = 512>)
        : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32> -> tensor<1x1x?x2048xi32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$query, AnyRankedTensor:$key,
                       Attn_AnyPolicyAttr:$policy, OptionalAttr<I64Attr>:$offset);
  let results = (outs AnyRankedTensor:$indices);
  let assemblyFormat = [{
    $query `,` $key `policy` `(` $policy `)` (`offset` `(` $offset^ `)`)?
    attr-dict `:` type($query) `,` type($key) `->` type($indices)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// sinks, window and chunk of the policy attribute.
    int64_t getSinks();
    int64_t getWindow();
    int64_t getChunk();
  }];
}

def Attn_SparseAttentionOp
    : Attn_Op<"sparse_attention", [Pure, InferTypeOpAdaptor]> {
  let summary = "exact causal attention over sinks, selected keys and a local window";
  let description = [{
    For query row `i` at position `p = offset + i` in chunk `c` (starting at
    position `s0`), the keys are the union, each counted once, of
    `[0, sinks)`, the chunk's `indices`, and the local window
    `[max(sinks, s0 - window), p]` anchored at the chunk start (TokenSelect's
    chunked prefill). The causal rule holds throughout.
    Without `indices` this is window + sinks attention with a per-query
    sliding window, FlashAttention's `window_size=(window, 0)`: row `i` sees
    key `j` iff `j <= p` and (`j < sinks` or `p - j <= window`); `chunk`
    does not change it. Returns the output and, with `lse`, the log-sum-exp
    over the same keys.
    At run time, when the keys number at most `sinks + slots + window`
    (every key is in the pattern), the runtime runs dense attention instead
    and skips the selection (the dense fallback).
    ```mlir
    %o = attn.sparse_attention %q, %k, %v indices(%idx : tensor<1x1x?x2048xi32>)
        sinks(128) window(512) chunk(512)
        : tensor<1x32x?x128xf32>, tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$query, AnyRankedTensor:$key,
                       AnyRankedTensor:$value, Optional<AnyRankedTensor>:$indices,
                       I64Attr:$sinks, I64Attr:$window, I64Attr:$chunk,
                       OptionalAttr<F64Attr>:$scale, OptionalAttr<I64Attr>:$offset,
                       UnitAttr:$lse);
  let results = (outs AnyRankedTensor:$output, Optional<AnyRankedTensor>:$logsumexp);
  let assemblyFormat = [{
    $query `,` $key `,` $value
    (`indices` `(` $indices^ `:` type($indices) `)`)?
    `sinks` `(` $sinks `)` `window` `(` $window `)` `chunk` `(` $chunk `)`
    (`scale` `(` $scale^ `)`)?
    (`offset` `(` $offset^ `)`)?
    (`lse` $lse^)?
    attr-dict `:` type($query) `,` type($key) `,` type($value)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    double getEffectiveScale();
  }];
}

def Attn_DenseRowsOp : Attn_Op<"dense_rows", [Pure, InferTypeOpAdaptor]> {
  let summary = "exact causal attention for every stride-th query row and the tail";
  let description = [{
    Computes exact attention for rows `0, stride, 2*stride, ...` followed,
    in a call that ends the prompt, by the tail: the last
    `tail = min(Nq, (Nq mod stride) + max(128, stride))` rows, which the
    first generated token reads. A call that does not end the prompt (a
    session's earlier prefill chunk) has no tail, so its cost is
    `ceil(Nq / stride)` dense rows (Delta Attention; docs/design.md). The
    runtime says which call is final; a call with no such information is
    final. The result `[B, Hq, ceil(Nq / stride) + T, Dv]` reserves
    `T = stride - 1 + max(128, stride)` rows, the largest tail, so its size
    follows from `Nq` alone; reserved rows past the tail are zero and cost
    nothing.
  }];
  let arguments = (ins AnyRankedTensor:$query, AnyRankedTensor:$key,
                       AnyRankedTensor:$value, I64Attr:$stride,
                       OptionalAttr<F64Attr>:$scale, OptionalAttr<I64Attr>:$offset);
  let results = (outs AnyRankedTensor:$rows);
  let assemblyFormat = [{
    $query `,` $key `,` $value `stride` `(` $stride `)`
    (`scale` `(` $scale^ `)`)? (`offset` `(` $offset^ `)`)?
    attr-dict `:` type($query) `,` type($key) `,` type($value)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    double getEffectiveScale();
    /// Rows computed after the strided ones: stride - 1 + max(128, stride).
    static int64_t tailRows(int64_t stride);
  }];
}

def Attn_DeltaCorrectOp : Attn_Op<"delta_correct", [Pure, InferTypeOpAdaptor]> {
  let summary = "Delta Attention: shift sparse rows by the dense-minus-sparse difference";
  let description = [{
    With `m = i / stride`, row `i` of the result is
    `sparse[i] + rows[m] - sparse[m * stride]`; in a call that ends the
    prompt, the last `tail = min(Nq, (Nq mod stride) + max(128, stride))`
    rows take the dense rows as they are (row `Nq - tail + t` is
    `rows[ceil(Nq/stride) + t]`); other calls have no tail.
    `rows` is the result of `attn.dense_rows` with the same stride.
  }];
  let arguments = (ins AnyRankedTensor:$sparse, AnyRankedTensor:$rows,
                       I64Attr:$stride);
  let results = (outs AnyRankedTensor:$output);
  let assemblyFormat = [{
    $sparse `,` $rows `stride` `(` $stride `)` attr-dict `:` type($sparse) `,` type($rows)
  }];
  let hasVerifier = 1;
}

def Attn_CacheWriteOp : Attn_Op<"cache_write", [Pure, AllTypesMatch<["cache", "result"]>]> {
  let summary = "write new keys or values into the tail of a KV cache";
  let description = [{
    The result is `cache` with its last `Nnew` rows (dimension 2) replaced by
    `update`: `cache` is the KV cache view `[B, Hkv, pos + Nnew, D]` that the
    runtime session passes in (its first `pos` rows hold earlier tokens), and
    the result is what attention over all `pos + Nnew` positions reads. The
    runtime performs the write in place, in the session's cache; `cache`
    must be a function argument. `update` has the cache's element type, or
    is f32 written into an f16 cache (rounded to nearest even: f16 KV
    storage, half the bytes for every later read).
  }];
  let arguments = (ins AnyRankedTensor:$cache, AnyRankedTensor:$update);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $cache `,` $update attr-dict `:` type($cache) `,` type($update)
  }];
  let hasVerifier = 1;
}

#endif // DELTAFLOW_DIALECT_ATTN_IR_ATTNOPS_TD
