//===- AttnBase.td - attn dialect definition ---------------*- tablegen -*-===//
//
// The `attn` dialect: attention as a first-class op, so that passes can
// rewrite dense attention into sparse-selected attention plus a correction.
//
//===----------------------------------------------------------------------===//

#ifndef DELTAFLOW_DIALECT_ATTN_IR_ATTNBASE_TD
#define DELTAFLOW_DIALECT_ATTN_IR_ATTNBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def Attn_Dialect : Dialect {
  let name = "attn";
  let cppNamespace = "::mlir::deltaflow::attn";
  let summary = "Attention and sparse attention for long-context inference";
  let description = [{
    Tensors follow the [batch, heads, sequence, head_dim] layout. Query heads
    may outnumber key/value heads (grouped-query attention): query head `h`
    reads key/value head `h / (Hq / Hkv)`.
  }];
  let useDefaultAttributePrinterParser = 1;
}

class Attn_Op<string mnemonic, list<Trait> traits = []>
    : Op<Attn_Dialect, mnemonic, traits>;

class Attn_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Attn_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

#endif // DELTAFLOW_DIALECT_ATTN_IR_ATTNBASE_TD
