//===- AttnOps.td - attn dialect ops -----------------------*- tablegen -*-===//

#ifndef DELTAFLOW_DIALECT_ATTN_IR_ATTNOPS_TD
#define DELTAFLOW_DIALECT_ATTN_IR_ATTNOPS_TD

include "deltaflow/Dialect/Attn/IR/AttnBase.td"
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

#endif // DELTAFLOW_DIALECT_ATTN_IR_ATTNOPS_TD
