//===- GemmSplit.cpp - graph kernels around a tensor-core GEMM -------------===//
//
// --target=cuda: a graph kernel whose anchor is a matmul by a 16-bit weight
// in nn.Linear's layout (input [N, K] bf16/f16 -> widening cast -> reshape
// [1, N, K] -> transpose [0, 2, 1]; the form gen_llama.py and
// tools/hf_import.py write for a Hugging Face checkpoint) is split into
//   1. `<name>_a`: A (the matmul's left operand) into a temporary, when it
//      is computed rather than read from a buffer (a layout op);
//   2. `<name>_gemm`: the matmul alone from buffers (A and the weight), the
//      kernel that gets the tensor-core GEMM (compiler/TensorCore/Gemm.cpp);
//   3. `<name>`: the epilogue (residual add, SiLU * up, ...) reading the
//      matmul's result from a temporary, when there is one.
// Each part is still a graph kernel with a Halide algorithm. On CUDA the
// matmul kernel runs the GEMV (compiler/TensorCore/Gemv.cpp) below the
// GEMM's 16 rows, and a kernel whose rows are static and that few (decode)
// is split for the GEMV alone; elsewhere Halide's kernels run the parts. The cost is a write and a read of the f32
// matmul result in device memory per split epilogue.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Common/KernelGraph.h"
#include "deltaflow/Compiler/KernelSpec.h"

#include <algorithm>
#include <functional>
#include <map>

namespace deltaflow::compiler {

namespace {

bool isWeight16(const GraphNode &n) {
  return n.op == "input" &&
         (n.dtype == DType::BFloat16 || n.dtype == DType::Float16);
}

/// The weight input node under matmul operand `bNode` when it is
/// nn.Linear's [N, K] through cast/reshape and one [0, 2, 1] transpose
/// (-1 otherwise).
int linearWeight(const GraphSpec &g, int bNode, int64_t k, int64_t n) {
  const GraphNode *t = &g.nodes.at(size_t(bNode));
  if (t->op != "transpose" || t->ints != std::vector<int64_t>{0, 2, 1} ||
      t->operands.size() != 1)
    return -1;
  int at = t->operands[0];
  bool cast = false;
  while (true) {
    const GraphNode &x = g.nodes.at(size_t(at));
    if (isWeight16(x)) {
      int64_t elems = 1;
      for (int64_t d : x.shape)
        elems *= d;
      return cast && elems == k * n ? at : -1;
    }
    if (x.operands.size() != 1)
      return -1;
    if (x.op == "cast" && x.dtype == DType::Float32)
      cast = true;
    else if (x.op != "reshape")
      return -1;
    // The reshape before the transpose must be [1, N, K].
    if (x.op == "reshape" && x.shape.size() == 3 &&
        x.shape != std::vector<int64_t>{1, n, k})
      return -1;
    at = x.operands[0];
  }
}

/// The subgraph of `k` that computes node `root`, with the nodes in `cut`
/// read from those buffers instead; its inputs are collected in order.
KernelDesc extract(const KernelDesc &k, int root, const std::map<int, std::string> &cut,
                   const std::map<int, DType> &cutType) {
  KernelDesc out;
  out.kind = KernelKind::Graph;
  out.loc = k.loc;
  std::map<int, int> nodeOf;
  std::map<std::string, int> inputOf;
  std::function<int(int)> visit = [&](int i) -> int {
    if (auto it = nodeOf.find(i); it != nodeOf.end())
      return it->second;
    GraphNode node = k.graph.nodes.at(size_t(i));
    std::string buffer;
    if (auto c = cut.find(i); c != cut.end()) {
      buffer = c->second;
      node.op = "input";
      node.operands.clear();
      node.dtype = cutType.at(i);
    } else if (node.op == "input") {
      buffer = k.inputs.at(size_t(node.ints.at(0)));
    } else {
      for (int &o : node.operands)
        o = visit(o);
    }
    if (!buffer.empty()) {
      auto [it, fresh] = inputOf.emplace(buffer, int(out.inputs.size()));
      if (fresh)
        out.inputs.push_back(buffer);
      node.ints = {int64_t(it->second)};
    }
    out.graph.nodes.push_back(std::move(node));
    return nodeOf[i] = int(out.graph.nodes.size()) - 1;
  };
  visit(root);
  return out;
}

const TensorSpec *findTensor(const EntryDesc &e, const std::string &name) {
  for (const auto *list : {&e.temporaries, &e.outputs, &e.inputs})
    for (const TensorSpec &t : *list)
      if (t.name == name)
        return &t;
  return nullptr;
}

} // namespace

std::vector<GemmKernel> splitTensorCoreGemms(EntryDesc &e, bool withGemv) {
  std::vector<KernelDesc> kernels;
  std::vector<GemmKernel> gemms;
  for (KernelDesc &k : e.kernels) {
    const GraphSpec &g = k.graph;
    auto mm = std::find_if(g.nodes.begin(), g.nodes.end(),
                           [](const GraphNode &n) { return n.op == "matmul"; });
    if (k.kind != KernelKind::Graph || mm == g.nodes.end() || k.outputs.size() != 1 ||
        mm->operands.size() != 2 || mm->shape.size() != 3) {
      kernels.push_back(std::move(k));
      continue;
    }
    int mmAt = int(mm - g.nodes.begin());
    const GraphNode &a = g.nodes.at(size_t(mm->operands[0]));
    int64_t depth = a.shape.size() == 3 ? a.shape[2] : -1, cols = mm->shape[2];
    int w = depth > 0 && cols > 0 ? linearWeight(g, mm->operands[1], depth, cols) : -1;
    const TensorSpec *out = findTensor(e, k.outputs[0]);
    bool epilogue = mmAt != int(g.nodes.size()) - 1;
    // Rows known at compile time below the GEMM's (decode): the GEMV runs
    // them; without it Halide's kernel does, so nothing is split.
    bool fewRows = mm->shape[1] >= 0 && mm->shape[1] < kGemmMinRows;
    if (w < 0 || !out || (fewRows && !withGemv) || a.dtype != DType::Float32 ||
        !gemmUnsupported(g.nodes[size_t(w)].dtype, depth, cols).empty() ||
        out->shape.size() != 3 || (epilogue && g.nodes.back().shape != mm->shape)) {
      kernels.push_back(std::move(k));
      continue;
    }
    // (Copied: the temporaries below may move the TensorSpec `out` points to.)
    const std::vector<Dim> outShape = out->shape;
    std::map<int, std::string> cut;
    std::map<int, DType> cutType;
    // 1. A into a temporary unless it is read from a buffer as it is.
    if (a.op != "input") {
      std::string name = k.name + "_gemm_a";
      KernelDesc pro = extract(k, mm->operands[0], {}, {});
      pro.name = k.name + "_a";
      pro.outputs = {name};
      std::vector<Dim> dims = outShape;
      dims.back() = Dim::fixed(depth);
      e.temporaries.push_back(TensorSpec{name, DType::Float32, dims, std::nullopt});
      kernels.push_back(std::move(pro));
      cut[mm->operands[0]] = name;
      cutType[mm->operands[0]] = DType::Float32;
    }
    // 2. The matmul alone.
    KernelDesc gemm = extract(k, mmAt, cut, cutType);
    gemm.name = epilogue ? k.name + "_gemm" : k.name;
    std::string product = epilogue ? k.name + "_gemm_c" : k.outputs[0];
    gemm.outputs = {product};
    if (epilogue)
      e.temporaries.push_back(TensorSpec{product, DType::Float32, outShape, std::nullopt});
    gemms.push_back({gemm.name, g.nodes[size_t(w)].dtype, depth, cols, fewRows, mm->shape[1]});
    kernels.push_back(std::move(gemm));
    // 3. The epilogue.
    if (epilogue) {
      KernelDesc epi = extract(k, int(g.nodes.size()) - 1, {{mmAt, product}},
                               {{mmAt, DType::Float32}});
      epi.name = k.name;
      epi.outputs = k.outputs;
      kernels.push_back(std::move(epi));
    }
  }
  e.kernels = std::move(kernels);
  std::vector<std::vector<size_t>> deps = readAfterWriteDeps(e.kernels);
  for (size_t i = 0; i < e.kernels.size(); ++i)
    e.kernels[i].deps = deps[i];
  return gemms;
}

} // namespace deltaflow::compiler
