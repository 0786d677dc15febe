//===- AttnInterfaces.td - attn attribute interfaces -------*- tablegen -*-===//
//
// SelectionPolicyAttrInterface: what passes and lowerings ask a sparsity
// policy attribute.
//
//===----------------------------------------------------------------------===//

#ifndef DELTAFLOW_DIALECT_ATTN_IR_ATTNINTERFACES_TD
#define DELTAFLOW_DIALECT_ATTN_IR_ATTNINTERFACES_TD

include "mlir/IR/OpBase.td"

def Attn_SelectionPolicyAttrInterface
    : AttrInterface<"SelectionPolicyAttrInterface"> {
  let cppNamespace = "::mlir::deltaflow::attn";
  let description = [{
    A sparsity policy as an attribute of `attn.select`. Passes and lowerings
    ask it, never the concrete attribute, for the policy's registry name,
    its parameters, and (through the policy registry, SparsityPolicy.h) its
    sinks, window, chunk, index slots and per-head form. Every policy
    attribute implements it: the built-in typed ones and `#attn.policy`.
  }];
  let methods = [
    InterfaceMethod<"The policy's name in the registry (\"token-select\").",
                    "std::string", "getPolicyName">,
    InterfaceMethod<"The policy's parameters by their registry names.",
                    "std::map<std::string, double>", "getKnobs">,
  ];
  let extraClassDeclaration = [{
    int64_t getSinks();
    int64_t getWindow();
    int64_t getChunk();
    /// Index slots per chunk (the policy's largest selection); -1 when the
    /// policy is not registered (its plug-in is not loaded).
    int64_t getSlots();
    /// One index set per KV head (true) or one shared by all heads.
    bool isPerKvHead();
  }];
}

#endif // DELTAFLOW_DIALECT_ATTN_IR_ATTNINTERFACES_TD
