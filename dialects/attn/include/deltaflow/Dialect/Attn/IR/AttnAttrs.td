//===- AttnAttrs.td - selection policy attributes ----------*- tablegen -*-===//
//
// One attribute kind per sparsity policy. Each carries exactly the knobs of
// its method (docs/design.md, "The methods it implements") and verifies them.
// `#attn.policy` holds policies registered by plug-ins: a name and a
// dictionary of integer or float parameters.
//
//===----------------------------------------------------------------------===//

#ifndef DELTAFLOW_DIALECT_ATTN_IR_ATTNATTRS_TD
#define DELTAFLOW_DIALECT_ATTN_IR_ATTNATTRS_TD

include "deltaflow/Dialect/Attn/IR/AttnBase.td"
include "deltaflow/Dialect/Attn/IR/AttnInterfaces.td"

/// A plain double, written as a float literal (`p = 0.95`).
def Attn_F64Param : AttrOrTypeParameter<"::llvm::APFloat", "a float"> {
  let parser = [{ [&]() -> ::mlir::FailureOr<::llvm::APFloat> {
    double v = 0;
    if ($_parser.parseFloat(v))
      return ::mlir::failure();
    return ::llvm::APFloat(v);
  }() }];
  // The shortest decimal that reads back to the same double, always with a
  // '.' in its mantissa (the parser's float literal needs one: "1.0",
  // "1.0e-20").
  let printer = [{ {
    double v = $_self.convertToDouble();
    char str[40];
    for (int digits = 15; digits <= 17; ++digits) {
      std::snprintf(str, sizeof str, "%.*g", digits, v);
      if (std::strtod(str, nullptr) == v)
        break;
    }
    std::string text = str;
    if (std::isfinite(v) && text.find('.') == std::string::npos)
      text.insert(std::min(text.find('e'), text.size()), ".0");
    $_printer << text;
  } }];
  let comparator = "$_lhs.bitwiseIsEqual($_rhs)";
}

def Attn_TokenSelectAttr : Attn_Attr<"TokenSelect", "token_select",
    [DeclareAttrInterfaceMethods<Attn_SelectionPolicyAttrInterface>]> {
  let summary = "TokenSelect: per-head Q.K scores, soft vote, shared top-k";
  let description = [{
    Candidates are keys `[sinks, s0 - window)` where `s0` is the position of
    the first query of a chunk of `chunk` query rows. Per query head `h`,
    `s_h(j) = qbar_h . k_{h / (Hq/Hkv)}(j)` with `qbar_h` the mean query of
    the chunk; `S(j) = sum_h softmax_j(s_h(j) / sqrt(D))` (the softmax of
    attention logits); the `budget` candidates with
    the largest `S` (ties: lower index first) are kept, sorted ascending.
    ```mlir
    #attn.token_select<budget = 2048, sinks = 128, window = 512, chunk = 512>
    ```
  }];
  let parameters = (ins "int64_t":$budget, "int64_t":$sinks,
                        "int64_t":$window, "int64_t":$chunk);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Attn_AdaptiveAttr : Attn_Attr<"Adaptive", "adaptive",
    [DeclareAttrInterfaceMethods<Attn_SelectionPolicyAttrInterface>]> {
  let summary = "adaptive top-p selection per KV-head group";
  let description = [{
    Same scores as TokenSelect. Per (KV head, chunk), the estimated mass of a
    candidate is the mean over the group's query heads of
    `softmax_j(s_h(j))`; the smallest set reaching mass `p` is kept, its size
    clamped to `[min_budget, max_budget]`.
    ```mlir
    #attn.adaptive<p = 0.95, min_budget = 256, max_budget = 4096, sinks = 128, window = 512, chunk = 512>
    ```
  }];
  let parameters = (ins Attn_F64Param:$p, "int64_t":$min_budget,
                        "int64_t":$max_budget, "int64_t":$sinks,
                        "int64_t":$window, "int64_t":$chunk);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Attn_BlockTopKAttr : Attn_Attr<"BlockTopK", "block_topk",
    [DeclareAttrInterfaceMethods<Attn_SelectionPolicyAttrInterface>]> {
  let summary = "Quest-style page selection with min/max key summaries";
  let description = [{
    Candidates `[sinks, s0 - window)` are cut into pages of `page` keys. A
    page's score for KV head `g` is `sum_{h in g} sum_d max(qbar_hd * min_d,
    qbar_hd * max_d)`; the `budget / page` best pages per KV head are kept.
    ```mlir
    #attn.block_topk<budget = 2048, page = 16, sinks = 128, window = 512, chunk = 512>
    ```
  }];
  let parameters = (ins "int64_t":$budget, "int64_t":$page, "int64_t":$sinks,
                        "int64_t":$window, "int64_t":$chunk);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Attn_PluginPolicyAttr : Attn_Attr<"PluginPolicy", "policy",
    [DeclareAttrInterfaceMethods<Attn_SelectionPolicyAttrInterface>]> {
  let summary = "a selection policy registered by a plug-in";
  let description = [{
    ```mlir
    #attn.policy<"dilated", {budget = 1024 : i64, dilation = 4 : i64, sinks = 128 : i64, window = 512 : i64, chunk = 512 : i64}>
    ```
    The parameters must include integer `sinks`, `window` and `chunk`.
  }];
  let parameters = (ins "::mlir::StringAttr":$name,
                        "::mlir::DictionaryAttr":$params);
  let assemblyFormat = "`<` $name `,` $params `>`";
  let genVerifyDecl = 1;
}

#endif // DELTAFLOW_DIALECT_ATTN_IR_ATTNATTRS_TD
