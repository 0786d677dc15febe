//===- GraphPipeline.cpp - Halide algorithm for fused TOSA kernels --------===//
//
// One translator per op family: elementwise math, layout (reshape,
// transpose, slice, concat, gather), and the anchors (matmul, reductions).
// Indices are handled outermost first (MLIR order) and reversed only where a
// Func is defined or called, since Halide lists dimensions innermost first.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/GraphPipeline.h"

#include <limits>

#include <functional>
#include <numeric>
#include <stdexcept>

namespace deltaflow::compiler {

using Halide::Expr;
using Halide::Func;
using Halide::Var;

namespace {

/// THE TABLE of TOSA elementwise ops: name, operand count, and the Halide
/// expression of one element (`t`: the result type; `n`: the node, for
/// attributes such as clamp's bounds). Adding an elementwise op is one row;
/// the MLIR side asks graphElementwiseArity() whether an op is here.
// TOSA's floating-point rules (TOSA 1.0, "Floating-point behaviour"): NaN
// propagates through every op, maximum/minimum/clamp included; +-inf and
// signed zeros follow IEEE 754. Halide's max/min (x86 maxps: the second
// operand wins when either is NaN), exp (wraps past 88.7), log (no inf, no
// subnormals) and float-to-int casts (wrap) do not, so these helpers add the
// special cases (test/lit/Run/tosa-special-values.test checks every op).
// NaN is tested on the bits: Halide compiles float math with LLVM's
// fast-math flags, under which `x != x` may fold to false (it did inside
// reduce_max's loop).
Expr isNan(const Expr &x) {
  Halide::Type t = x.type();
  if (t.bits() == 16) {
    Expr b = Halide::reinterpret(Halide::UInt(16), x);
    return t.is_bfloat() ? (b & 0x7fff) > 0x7f80 : (b & 0x7fff) > 0x7c00;
  }
  Expr b = Halide::reinterpret(Halide::UInt(32), x);
  return (b & 0x7fffffff) > 0x7f800000;
}
/// bf16 to f32 on the bits: bf16 is the top half of an f32 (exact, NaN and
/// subnormals included; Halide 14's CUDA back end (LLVM 14 NVPTX) aborts on
/// a bf16 conversion).
Expr widenBf16(const Expr &x) {
  return Halide::reinterpret(
      Halide::Float(32),
      Halide::cast(Halide::UInt(32), Halide::reinterpret(Halide::UInt(16), x)) << 16);
}
Expr nanOr(const Expr &x, const Expr &r) {
  return x.type().is_float() ? Halide::select(isNan(x), x, r) : r;
}
Expr nanOr2(const Expr &a, const Expr &b, const Expr &r) {
  if (!a.type().is_float())
    return r;
  return Halide::select(isNan(a), a, Halide::select(isNan(b), b, r));
}
Expr ieeeExp(const Expr &x) {
  // ln(FLT_MAX): beyond it exp overflows to +inf (Halide's exp wraps to 0).
  Expr inf = Halide::cast(x.type(), std::numeric_limits<float>::infinity());
  return nanOr(x, Halide::select(x > 88.72283905f, inf, Halide::exp(x)));
}
Expr ieeeLog(const Expr &x) {
  // Halide's log has no +inf and flushes subnormals: log(x 2^24) - 24 ln 2
  // for subnormal x, +inf for +inf.
  Expr inf = Halide::cast(x.type(), std::numeric_limits<float>::infinity());
  Expr tiny = Halide::cast(x.type(), std::numeric_limits<float>::min());
  Expr scaled = Halide::log(x * 16777216.0f) - 16.635532333438686f;
  return nanOr(x, Halide::select(x == inf, inf,
                                 Halide::select(x > 0 && x < tiny, scaled,
                                                Halide::log(x))));
}
/// `e` evaluated as IEEE 754 says, outside fast-math: Halide's simplifier
/// and LLVM's nsz/nnan flags turn x + 0.0 into x (-0 + 0 is +0) and x * 0.0
/// into 0 (inf * 0 is NaN). Elementwise kernels are memory-bound, so the lost
/// contractions cost nothing measurable.
Expr exact(const Expr &e) {
  return e.type().is_float() ? Halide::strict_float(e) : e;
}
Expr ieeeMax(const Expr &a, const Expr &b) { return nanOr2(a, b, Halide::max(a, b)); }
Expr ieeeMin(const Expr &a, const Expr &b) { return nanOr2(a, b, Halide::min(a, b)); }

struct ElementwiseOp {
  const char *name;
  int arity;
  Expr (*lower)(const GraphNode &n, Halide::Type t, const std::vector<Expr> &a);
};
const ElementwiseOp kElementwise[] = {
    {"add", 2, [](const GraphNode &, Halide::Type, const std::vector<Expr> &a) { return exact(a[0] + a[1]); }},
    {"sub", 2, [](const GraphNode &, Halide::Type, const std::vector<Expr> &a) { return exact(a[0] - a[1]); }},
    {"mul", 2, [](const GraphNode &, Halide::Type, const std::vector<Expr> &a) { return exact(a[0] * a[1]); }},
    {"maximum", 2, [](const GraphNode &, Halide::Type, const std::vector<Expr> &a) { return ieeeMax(a[0], a[1]); }},
    {"minimum", 2, [](const GraphNode &, Halide::Type, const std::vector<Expr> &a) { return ieeeMin(a[0], a[1]); }},
    // TOSA defines pow for x > 0 (and x = 0 with y > 0); NaN propagates.
    // exp(y log x) in float64 inside that domain (float32 subnormals are
    // normal there, and y log x keeps its precision), with IEEE's x^0 = 1
    // and (+inf)^y added.
    {"pow", 2, [](const GraphNode &, Halide::Type t, const std::vector<Expr> &a) {
       Expr x = a[0], y = a[1];
       Expr inf = Halide::cast(t, std::numeric_limits<float>::infinity());
       Expr xd = Halide::cast(Halide::Float(64), x), yd = Halide::cast(Halide::Float(64), y);
       Expr core = Halide::cast(t, Halide::exp(yd * Halide::log(xd)));
       Expr r = Halide::select(y == 0, Halide::cast(t, 1),
                               Halide::select(x == inf,
                                              Halide::select(y > 0, inf, Halide::cast(t, 0)),
                                              core));
       return nanOr2(x, y, r);
     }},
    {"exp", 1, [](const GraphNode &, Halide::Type, const std::vector<Expr> &a) { return ieeeExp(a[0]); }},
    {"log", 1, [](const GraphNode &, Halide::Type, const std::vector<Expr> &a) { return ieeeLog(a[0]); }},
    {"rsqrt", 1, [](const GraphNode &, Halide::Type, const std::vector<Expr> &a) { return 1.0f / Halide::sqrt(a[0]); }},
    {"reciprocal", 1, [](const GraphNode &, Halide::Type, const std::vector<Expr> &a) { return 1.0f / a[0]; }},
    {"sigmoid", 1, [](const GraphNode &, Halide::Type, const std::vector<Expr> &a) { return 1.0f / (1.0f + ieeeExp(-a[0])); }},
    {"tanh", 1, [](const GraphNode &, Halide::Type, const std::vector<Expr> &a) { return Halide::tanh(a[0]); }},
    {"negate", 1, [](const GraphNode &, Halide::Type, const std::vector<Expr> &a) { return -a[0]; }},
    {"abs", 1, [](const GraphNode &, Halide::Type, const std::vector<Expr> &a) { return Halide::abs(a[0]); }},
    {"sin", 1, [](const GraphNode &, Halide::Type, const std::vector<Expr> &a) { return Halide::sin(a[0]); }},
    {"cos", 1, [](const GraphNode &, Halide::Type, const std::vector<Expr> &a) { return Halide::cos(a[0]); }},
    {"clamp", 1, [](const GraphNode &n, Halide::Type t, const std::vector<Expr> &a) {
       return nanOr(a[0], Halide::clamp(a[0], Halide::cast(t, Expr(n.values.at(0))),
                                        Halide::cast(t, Expr(n.values.at(1)))));
     }},
    {"cast", 1, [](const GraphNode &, Halide::Type t, const std::vector<Expr> &a) {
       if (t.is_int() && a[0].type().is_float()) {
         // TOSA: round to nearest even, saturate; NaN gives 0.
         Expr x = a[0];
         Expr hi = Halide::cast(x.type(), t.max()), lo = Halide::cast(x.type(), t.min());
         return Halide::select(isNan(x), Halide::cast(t, 0),
                               Halide::select(x >= hi, t.max(),
                                              Halide::select(x <= lo, t.min(),
                                                             Halide::cast(t, Halide::round(x)))));
       }
       if (a[0].type().is_bfloat() && t == Halide::Float(32))
         return widenBf16(a[0]);
       if (t.is_bfloat()) {
         // Narrowing to bf16 (the 16-bit Q/K/V of tensor-core attention):
         // round to nearest even on the bits, as the widening above, and
         // keep NaN a (quiet) NaN of its sign; overflow rounds to +-inf
         // (IEEE 754 roundTiesToEven). From f16 or an integer, via f32.
         if (a[0].type().is_bfloat())
           return a[0];
         // (An integer source is rounded twice, to f32 then to bf16.)
         Expr x = a[0].type() == Halide::Float(32) ? a[0] : Halide::cast(Halide::Float(32), a[0]);
         Expr u = Halide::reinterpret(Halide::UInt(32), x);
         Expr rounded = (u + 0x7fff + ((u >> 16) & 1)) >> 16;
         Expr quiet = (u >> 16) | 0x40;
         return Halide::reinterpret(
             t, Halide::cast(Halide::UInt(16), Halide::select(isNan(x), quiet, rounded)));
       }
       if (t == Halide::Float(16) && a[0].type() != t) {
         // Narrowing to f16: Halide's conversion (RNE) from f32, except
         // NaN, which it turns into inf on x86; bf16 widens first, exactly.
         Expr x = a[0].type().is_bfloat() ? widenBf16(a[0]) : Halide::cast(Halide::Float(32), a[0]);
         Expr sign = (Halide::reinterpret(Halide::UInt(32), x) >> 16) & 0x8000;
         Expr nan = Halide::reinterpret(t, Halide::cast(Halide::UInt(16), sign | 0x7e00));
         return Halide::select(isNan(x), nan, Halide::cast(t, x));
       }
       return Halide::cast(t, a[0]);
     }},
};

const ElementwiseOp *findElementwise(const std::string &name) {
  for (const ElementwiseOp &row : kElementwise)
    if (name == row.name)
      return &row;
  return nullptr;
}

} // namespace

int graphElementwiseArity(const std::string &tosaName) {
  const ElementwiseOp *row = findElementwise(tosaName);
  return row ? row->arity : -1;
}

namespace {

Halide::Type typeOf(DType dtype) {
  return halideType(dtype);
}

std::vector<Expr> reversed(std::vector<Expr> v) {
  std::reverse(v.begin(), v.end());
  return v;
}

struct Builder {
  const GraphSpec &g;
  std::string where;
  GraphPipeline &p;
  std::vector<Func> funcs;

  [[noreturn]] void fail(const std::string &msg) const {
    throw std::runtime_error(where + ": " + msg);
  }

  /// Value of node `n` at `idx` (outermost first).
  Expr at(int n, const std::vector<Expr> &idx) { return funcs[n](reversed(idx)); }

  /// Operand `o` of a node of shape `shape` read at `idx`, broadcasting
  /// size-1 dimensions.
  Expr operandAt(int o, const std::vector<int64_t> &shape,
                 const std::vector<Expr> &idx) {
    const GraphNode &on = g.nodes[o];
    if (on.shape.size() != shape.size())
      fail("operand ranks differ (" + std::to_string(on.shape.size()) + " vs " +
           std::to_string(shape.size()) + "); broadcasting needs equal ranks");
    std::vector<Expr> i = idx;
    for (size_t d = 0; d < shape.size(); ++d)
      if (on.shape[d] == 1 && shape[d] != 1)
        i[d] = 0;
    return at(o, i);
  }

  Expr elementwise(const GraphNode &n, const std::vector<Expr> &idx) {
    const ElementwiseOp *row = findElementwise(n.op);
    if (!row)
      fail("no elementwise lowering for '" + n.op + "'");
    if (int(n.operands.size()) != row->arity)
      fail("'" + n.op + "' takes " + std::to_string(row->arity) +
           " operands, got " + std::to_string(n.operands.size()));
    std::vector<Expr> args;
    for (int k = 0; k < row->arity; ++k)
      args.push_back(operandAt(n.operands[size_t(k)], n.shape, idx));
    return row->lower(n, typeOf(n.dtype), args);
  }

  Expr constant(const GraphNode &n, const std::vector<Expr> &idx) {
    Halide::Type t = typeOf(n.dtype);
    if (n.values.size() == 1)
      return Halide::cast(t, Expr(n.values[0]));
    std::vector<int> extents;
    for (auto it = n.shape.rbegin(); it != n.shape.rend(); ++it)
      extents.push_back(int(*it));
    if (t.is_float()) {
      Halide::Buffer<float> b(extents);
      size_t k = 0;
      // values are row-major (outermost first): innermost Halide dim fastest.
      b.for_each_element([&](const int *pos) {
        int64_t lin = 0;
        for (int d = int(extents.size()) - 1; d >= 0; --d)
          lin = lin * extents[d] + pos[d];
        b(pos) = float(n.values.at(size_t(lin)));
        ++k;
      });
      return b(reversed(idx));
    }
    Halide::Buffer<int32_t> b(extents);
    b.for_each_element([&](const int *pos) {
      int64_t lin = 0;
      for (int d = int(extents.size()) - 1; d >= 0; --d)
        lin = lin * extents[d] + pos[d];
      b(pos) = int32_t(n.values.at(size_t(lin)));
    });
    return b(reversed(idx));
  }

  /// reshape: dimensions are matched in groups of equal element count; size-1
  /// dimensions carry index 0 and a dynamic dimension passes through.
  std::vector<Expr> reshapeIndex(const GraphNode &n, const std::vector<Expr> &idx) {
    const std::vector<int64_t> &in = g.nodes[n.operands[0]].shape, &out = n.shape;
    std::vector<int> ri, ro; // dims that are not size 1
    for (size_t i = 0; i < in.size(); ++i)
      if (in[i] != 1) ri.push_back(int(i));
    for (size_t j = 0; j < out.size(); ++j)
      if (out[j] != 1) ro.push_back(int(j));
    std::vector<Expr> res(in.size(), Expr(0));
    size_t a = 0, b = 0;
    while (a < ri.size() || b < ro.size()) {
      if (a == ri.size() || b == ro.size())
        fail("reshape between incompatible shapes");
      if (in[ri[a]] < 0 || out[ro[b]] < 0) {
        if (in[ri[a]] >= 0 || out[ro[b]] >= 0)
          fail("reshape moves a dynamic dimension; it must pass through "
               "unchanged");
        res[ri[a++]] = idx[ro[b++]];
        continue;
      }
      size_t a0 = a, b0 = b;
      int64_t pi = in[ri[a++]], po = out[ro[b++]];
      while (pi != po) {
        if (pi < po) {
          if (a == ri.size() || in[ri[a]] < 0) fail("reshape between incompatible shapes");
          pi *= in[ri[a++]];
        } else {
          if (b == ro.size() || out[ro[b]] < 0) fail("reshape between incompatible shapes");
          po *= out[ro[b++]];
        }
      }
      Expr lin = 0;
      for (size_t k = b0; k < b; ++k)
        lin = lin * Expr(int(out[ro[k]])) + idx[ro[k]];
      int64_t stride = pi;
      for (size_t k = a0; k < a; ++k) {
        stride /= in[ri[k]];
        res[ri[k]] = (lin / Expr(int(stride))) % Expr(int(in[ri[k]]));
      }
    }
    return res;
  }

  Expr layout(const GraphNode &n, const std::vector<Expr> &idx) {
    const std::string &op = n.op;
    int src = n.operands.at(0);
    if (op == "reshape")
      return at(src, reshapeIndex(n, idx));
    if (op == "transpose") {
      std::vector<Expr> i(idx.size());
      for (size_t k = 0; k < idx.size(); ++k)
        i.at(size_t(n.ints.at(k))) = idx[k];
      return at(src, i);
    }
    if (op == "slice") {
      std::vector<Expr> i = idx;
      for (size_t k = 0; k < i.size(); ++k)
        i[k] = i[k] + Expr(int(n.ints.at(k)));
      return at(src, i);
    }
    if (op == "concat") {
      size_t axis = size_t(n.ints.at(0));
      std::vector<int64_t> starts;
      int64_t s = 0;
      for (int o : n.operands) {
        starts.push_back(s);
        if (g.nodes[o].shape.at(axis) < 0)
          fail("concat along a dynamic dimension is not supported");
        s += g.nodes[o].shape[axis];
      }
      // Operand k covers [starts[k], starts[k+1]) along the axis.
      Expr e;
      for (size_t k = 0; k < n.operands.size(); ++k) {
        std::vector<Expr> i = idx;
        i[axis] = Halide::clamp(idx[axis] - Expr(int(starts[k])), 0,
                                int(g.nodes[n.operands[k]].shape[axis]) - 1);
        Expr v = at(n.operands[k], i);
        e = k == 0 ? v : Halide::select(idx[axis] >= Expr(int(starts[k])), v, e);
      }
      return e;
    }
    if (op == "gather") {
      const GraphNode &values = g.nodes[n.operands.at(0)];
      const GraphNode &indices = g.nodes[n.operands.at(1)];
      Expr K = Expr(int(values.shape.at(1)));
      if (values.shape[1] < 0) {
        if (values.op != "input")
          fail("gather from a computed table needs a static number of rows");
        K = p.inputs.at(size_t(values.ints.at(0))).dim(1).extent();
      }
      Expr nv = values.shape[0] == 1 ? Expr(0) : idx[0];
      Expr ni = indices.shape[0] == 1 ? Expr(0) : idx[0];
      // An index outside the table is an error of the run (TOSA leaves it
      // undefined; reading a clamped row would be a silent wrong answer).
      // The clamp keeps the bounds inference within the table. The checked
      // indices are a Func of their own, which a GPU schedule computes on
      // the host (a GPU kernel cannot raise the error).
      Var c0("gather_i"), c1("gather_j");
      Func checked("gather_index");
      Expr index = at(n.operands[1], {c0, c1});
      checked(c1, c0) = Halide::clamp(
          Halide::require(index >= 0 && index < K, index,
                          "tosa.gather: index", index,
                          "is outside the table's", K, "rows"),
          0, K - 1);
      p.hostChecks.push_back(checked);
      return at(n.operands[0], {nv, checked(idx[1], ni), idx[2]});
    }
    fail("no layout lowering for '" + op + "'");
  }

  /// Whether node `o` is a transpose of the last two dimensions, seen
  /// through reshapes and casts (the layout of nn.Linear weights).
  bool readsTransposed(int o) const {
    const GraphNode &n = g.nodes[size_t(o)];
    if (n.op == "reshape" || n.op == "cast")
      return readsTransposed(n.operands.at(0));
    if (n.op != "transpose")
      return false;
    size_t r = n.ints.size();
    return r >= 2 && n.ints[r - 1] == int64_t(r - 2) &&
           n.ints[r - 2] == int64_t(r - 1);
  }

  void matmul(int id, const GraphNode &n) {
    const GraphNode &a = g.nodes[n.operands.at(0)], &b = g.nodes[n.operands.at(1)];
    int64_t C = a.shape.at(2);
    if (C < 0 || b.shape.at(1) != C)
      fail("matmul needs a static, matching inner dimension");
    Var w("w"), h("h"), bn("n");
    Func A("matmul_a");
    {
      Var c("c"), hh("hh"), nn("nn");
      A(c, hh, nn) = at(n.operands[0], {a.shape[0] == 1 ? Expr(0) : Expr(nn), hh, c});
    }
    Func B("matmul_b");
    {
      Var ww("ww"), kk("kk"), nn("nn");
      B(ww, kk, nn) = at(n.operands[1], {b.shape[0] == 1 ? Expr(0) : Expr(nn), kk, ww});
    }
    Func mm("matmul");
    Halide::RDom r(0, int(C), "k");
    mm(w, h, bn) = 0.0f;
    mm(w, h, bn) += A(r, h, bn) * B(w, r, bn);
    funcs[id] = mm;
    p.anchor = GraphPipeline::Anchor::Matmul;
    p.anchorFunc = mm;
    p.anchorVars = {w, h, bn};
    p.r = r;
    p.matmulA = A;
    p.matmulAIsInput = a.op == "input";
    p.matmulB = B;
    p.matmulBTransposed = readsTransposed(n.operands[1]);
    p.matmulW = b.shape.at(2);
    p.matmulC = C;
  }

  void reduce(int id, const GraphNode &n) {
    const GraphNode &in = g.nodes[n.operands.at(0)];
    size_t axis = size_t(n.ints.at(0));
    Expr extent = Expr(int(in.shape.at(axis)));
    if (in.shape[axis] < 0) {
      if (in.op != "input")
        fail("reduction over a dynamic dimension of a computed value is not "
             "supported (only of a buffer)");
      extent = p.inputs.at(size_t(in.ints.at(0)))
                   .dim(int(in.shape.size() - 1 - axis))
                   .extent();
    }
    std::vector<Var> vars;
    for (size_t d = 0; d < n.shape.size(); ++d)
      vars.push_back(Var("r" + std::to_string(d)));
    std::vector<Expr> idx(vars.begin(), vars.end());
    std::reverse(idx.begin(), idx.end()); // outermost first
    Halide::RDom r(0, extent, "j");
    std::vector<Expr> src = idx;
    src[axis] = r;
    Func red(n.op);
    std::vector<Halide::Var> hv(vars.begin(), vars.end());
    bool isSum = n.op == "reduce_sum";
    Halide::Type t = typeOf(n.dtype);
    red(hv) = isSum ? Halide::cast(t, 0) : t.min();
    Expr x = at(n.operands[0], src);
    if (isSum)
      red(hv) += x;
    else
      red(hv) = ieeeMax(red(hv), x); // a NaN anywhere in the row propagates
    funcs[id] = red;
    p.anchor = GraphPipeline::Anchor::Reduce;
    p.anchorFunc = red;
    p.anchorVars = hv;
    p.r = r;
    p.reduceAxis = int(n.shape.size() - 1 - axis);
  }

  void build() {
    funcs.resize(g.nodes.size());
    int inputs = 0;
    for (size_t id = 0; id < g.nodes.size(); ++id) {
      const GraphNode &n = g.nodes[id];
      for (int o : n.operands)
        if (o < 0 || size_t(o) >= id)
          fail("graph nodes out of order");
      if (n.op == "input") {
        Halide::ImageParam ip(typeOf(n.dtype), int(n.shape.size()),
                              "in" + std::to_string(inputs++));
        p.inputs.push_back(ip);
        funcs[id] = ip;
        continue;
      }
      if (n.op == "matmul") {
        matmul(int(id), n);
        continue;
      }
      if (n.op == "reduce_sum" || n.op == "reduce_max") {
        reduce(int(id), n);
        continue;
      }
      std::vector<Var> vars;
      for (size_t d = 0; d < n.shape.size(); ++d)
        vars.push_back(Var("d" + std::to_string(d)));
      std::vector<Expr> idx(vars.rbegin(), vars.rend()); // outermost first
      Expr e;
      if (n.op == "const")
        e = constant(n, idx);
      else if (n.op == "reshape" || n.op == "transpose" || n.op == "slice" ||
               n.op == "concat" || n.op == "gather")
        e = layout(n, idx);
      else
        e = elementwise(n, idx);
      Func f(n.op + std::to_string(id));
      f(std::vector<Halide::Var>(vars.begin(), vars.end())) = e;
      funcs[id] = f;
    }
    const GraphNode &root = g.nodes.back();
    for (size_t d = 0; d < root.shape.size(); ++d)
      p.vars.push_back(Var("o" + std::to_string(d)));
    p.shape = root.shape;
    std::vector<Expr> idx(p.vars.rbegin(), p.vars.rend());
    p.out(p.vars) = at(int(g.nodes.size() - 1), idx);
    // Static extents are part of the contract with the runtime.
    for (size_t d = 0; d < root.shape.size(); ++d)
      if (root.shape[d] >= 0)
        p.out.output_buffer()
            .dim(int(root.shape.size() - 1 - d))
            .set_bounds(0, int(root.shape[d]));
  }
};

} // namespace

GraphPipeline buildGraph(const GraphSpec &g, const std::string &where) {
  if (g.nodes.empty())
    throw std::runtime_error(where + ": empty graph kernel");
  GraphPipeline p;
  Builder b{g, where, p, {}};
  b.build();
  return p;
}

} // namespace deltaflow::compiler
