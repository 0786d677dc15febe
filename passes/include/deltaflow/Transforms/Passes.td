//===- Passes.td - deltaflow passes ------------------------*- tablegen -*-===//

#ifndef DELTAFLOW_TRANSFORMS_PASSES_TD
#define DELTAFLOW_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def AttnRaise : Pass<"attn-raise", "::mlir::ModuleOp"> {
  let summary = "Raise attention written out in TOSA to attn.attention";
  let description = [{
    Recognises `tosa.matmul(softmax(scale * q k^T + mask), v)` over rank-3
    `[BH, N, D]` tensors: k transposed by `tosa.transpose` with perms
    `[0, 2, 1]` (or given as `[BH, D, Nk]`), an optional `tosa.mul` by a splat
    constant, an optional `tosa.add` of a constant causal mask, and a softmax
    over axis 2 (`reduce_max`/`sub` optional, `exp`, `reduce_sum`, then
    `reciprocal` + `mul` or `arith.divf`). It becomes `attn.attention` on the
    tensors reshaped to `[1, BH, N, D]`, with the scale found (1.0 when there
    is no multiply) and `causal` for the causal mask. Graphs with any other
    mask, a softmax over another axis, or an intermediate value used outside
    the chain are left unchanged.

    The raise keeps the graph's values: a causal mask is recognised only when
    its hidden entries are `-inf` or the element type's lowest finite value,
    and a scale of 0, +-inf or NaN (which `attn.attention` cannot express) is
    left as TOSA. A finite mask such as `-1e4` is exact only while every
    score stays far above it; `finite-mask-threshold=-1e4` raises such masks
    too, assuming exactly that.
  }];
  let options = [
    Option<"finiteMaskThreshold", "finite-mask-threshold", "double",
           /*default=*/"0.0",
           "Also treat finite causal-mask entries <= this (a negative number) "
           "as -inf. 0 (the default): off. Assumes every score exceeds this value "
           "by far more than the softmax can resolve (e.g. -1e4 with |scores| "
           "below ~1e3).">
  ];
  let dependentDialects = ["::mlir::deltaflow::attn::AttnDialect",
                           "::mlir::tosa::TosaDialect"];
}

def AttnSparsify : Pass<"attn-sparsify", "::mlir::ModuleOp"> {
  let summary = "Rewrite causal attention into selection + sparse attention";
  let description = [{
    Every causal `attn.attention` becomes `attn.select` under the chosen
    policy (none for `window`) followed by `attn.sparse_attention` over
    sinks, the selected keys and the local window. Policies are looked up by
    name in the policy registry: `window`, `token-select`, `adaptive`,
    `block-topk`, and any loaded from a plug-in (`--load-pass-plugin`).

    Attention stays dense, with a remark, when it is not causal or when its
    static context fits in sinks + budget + window. With a dynamic context
    the runtime runs dense attention (compiled beside the sparse kernel) and
    skips the selection whenever the keys fit sinks + budget + window.
    `window` slides per query for the `window` policy; the selecting
    policies anchor it at their chunk start. `entries` restricts the
    rewrite to the attention of the named functions (a name that is not a
    function of the module is an error).
  }];
  let dependentDialects = ["::mlir::deltaflow::attn::AttnDialect"];
  let options = [
    Option<"policy", "policy", "std::string", "\"token-select\"",
           "selection policy: window, token-select, adaptive, block-topk or a plug-in's name">,
    Option<"budget", "budget", "int64_t", "2048", "selected keys per chunk (token-select, block-topk)">,
    Option<"sinks", "sinks", "int64_t", "128", "leading keys every query sees">,
    Option<"window", "window", "int64_t", "512", "local window: per query (window policy), or before each query chunk (selecting policies)">,
    Option<"chunk", "chunk", "int64_t", "512", "query rows sharing one selection">,
    Option<"p", "p", "double", "0.95", "softmax mass to reach (adaptive)">,
    Option<"minBudget", "min-budget", "int64_t", "256", "smallest selection (adaptive)">,
    Option<"maxBudget", "max-budget", "int64_t", "4096", "largest selection (adaptive)">,
    Option<"page", "page", "int64_t", "16", "keys per page (block-topk)">,
    ListOption<"extra", "param", "std::string",
               "further plug-in parameters as name:value">,
    ListOption<"entries", "entries", "std::string",
               "sparsify only the attention in these functions, e.g. "
               "entries=prefill for sparse prefill with dense decode "
               "(default: every function)">
  ];
}

def AttnDeltaCorrect : Pass<"attn-delta-correct", "::mlir::ModuleOp"> {
  let summary = "Add the Delta-Attention correction to sparse attention";
  let description = [{
    For every `attn.sparse_attention` whose log-sum-exp is unused, computes
    exact attention for every `stride`-th query row and the tail
    (`attn.dense_rows`) and shifts the sparse rows by the difference
    (`attn.delta_correct`). The tail is the prompt's last rows: only the
    runtime call that ends the prompt computes it (docs/design.md). Composes with
    any selection policy. Single-query attention (static Nq = 1, decode) is
    skipped with a remark: each decode step ends the context, so its one row
    is a tail row, which the correction would compute densely.
  }];
  let dependentDialects = ["::mlir::deltaflow::attn::AttnDialect"];
  let options = [
    Option<"stride", "stride", "int64_t", "64", "row stride gamma of the dense rows (1..8192)">
  ];
}

def ExactCanonicalize : Pass<"exact-canonicalize"> {
  let summary = "canonicalize, without the folds that change IEEE results";
  let description = [{
    Runs every loaded dialect's and op's canonicalization patterns and
    folds, as `canonicalize` does, except on the ops whose upstream folds are
    not exact in IEEE arithmetic: float `tosa.add` (`x + 0.0` folds to `x`,
    but -0 + 0 is +0) and float `tosa.mul` (`x * 0.0` folds to 0, but
    inf * 0 is NaN and -1 * 0 is -0). Those ops stay as written, and are
    erased only when dead. deltaflow-compile runs this after its passes so
    that the compiled graph computes what the TOSA graph specifies.
  }];
}

#endif // DELTAFLOW_TRANSFORMS_PASSES_TD
