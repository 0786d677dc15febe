#!/usr/bin/env python3
"""Writes a Llama-style decoder as an MLIR graph (func + tosa + attn).

Two entries share one set of weights and the session's KV cache:
  prefill(tokens[n], positions[n], last_row[1x1], caches..., weights...)
      -> logits[1 x vocab] of the last prompt token
  decode(tokens[1], positions[1], last_row[1x1], caches..., weights...)
      -> logits[1 x vocab]

Each layer: RMSNorm, Q/K/V projections, RoPE (rotate-half), grouped-query
attention over the KV cache (attn.cache_write + attn.attention), output
projection + residual, RMSNorm, SwiGLU MLP + residual; then a final norm
and the logits of the last row. Weights are function arguments named as in
the .safetensors file (make_weights.py writes random ones).

    gen_llama.py [--config config.json] [--layers N ...] -o llama.mlir
"""
import argparse
import json
import math
import os
import sys
import tempfile

DEFAULTS = {
    "layers": 2,
    "d_model": 1024,
    "heads": 16,
    "kv_heads": 4,
    "head_dim": 64,
    "ffn": 2816,
    "vocab": 4096,
    "rope_theta": 10000.0,
    "norm_eps": 1e-5,
    # KV-cache element type: "f32", or "f16" (cache_write rounds the f32
    # K/V rows into an f16 cache; attention reads half the bytes).
    "kv_dtype": "f32",
    # Attention's element type: "f32", or "bf16" / "f16": Q, K and V are
    # rounded to it in the graph (after RoPE), the KV cache holds it (so
    # kv_dtype is then this type), and attention runs on the tensor-core
    # kernels (--target=cuda only; the CPU targets reject a 16-bit query
    # with a located error). Its output is widened back to f32.
    "attn_dtype": "f32",
    # Projection and LM-head weights: "f32" ([in, out], y = x W), or "bf16" /
    # "f16" in nn.Linear's [out, in] layout (y = x W^T), as a Hugging Face
    # checkpoint stores them; --target=cuda runs those matmuls on the
    # tensor-core GEMM. Embedding and norms stay f32.
    "weight_dtype": "f32",
}


class Graph:
    def __init__(self):
        self.lines = []
        self.n = 0

    def val(self):
        self.n += 1
        return f"%v{self.n}"

    def op(self, text, ty):
        v = self.val()
        self.lines.append(f"    {v} = {text} : {ty}")
        return v


def t(shape, el="f32"):
    return "tensor<" + "x".join("?" if s is None else str(s) for s in shape) + f"x{el}>"


def const_splat(g, value, shape):
    return g.op(f'"tosa.const"() {{value = dense<{float(value):.9e}> : {t(shape)}}}', "() -> " + t(shape))


def const_vec(g, values, shape):
    body = ", ".join(f"{float(v):.9e}" for v in values)
    return g.op(f'"tosa.const"() {{value = dense<[[[[{body}]]]]> : {t(shape)}}}', "() -> " + t(shape))


def perms(g, p):
    body = ", ".join(str(x) for x in p)
    return g.op(f'"tosa.const"() {{value = dense<[{body}]> : tensor<{len(p)}xi32>}}',
                f"() -> tensor<{len(p)}xi32>")


def binary(g, name, a, b, ta, tb, tr, shift=False):
    attr = " {shift = 0 : i8}" if shift else ""
    return g.op(f"tosa.{name} {a}, {b}{attr}", f"({ta}, {tb}) -> {tr}")


def unary(g, name, a, ty):
    return g.op(f"tosa.{name} {a}", f"({ty}) -> {ty}")


def reshape(g, a, ta, shape):
    ns = ", ".join("-1" if s is None else str(s) for s in shape)
    el = ta[ta.rfind("x") + 1:-1]
    return g.op(f"tosa.reshape {a} {{new_shape = array<i64: {ns}>}}", f"({ta}) -> {t(shape, el)}")


def transpose(g, a, ta, p, shape):
    pc = perms(g, p)
    return g.op(f"tosa.transpose {a}, {pc}", f"({ta}, tensor<{len(p)}xi32>) -> {t(shape)}")


def matmul(g, a, ta, b, tb, shape):
    return g.op(f"tosa.matmul {a}, {b}", f"({ta}, {tb}) -> {t(shape)}")


def deltaflow_weights(cfg):
    """gen_llama.py's own weights: {key: (name, shape, dtype, layout)}.

    Layouts: "io" is [in, out] (y = x W), "embed" [vocab, d], "row" [1, 1, d].
    """
    L, d, hq, hkv, hd = cfg["layers"], cfg["d_model"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    ffn, vocab = cfg["ffn"], cfg["vocab"]
    wdt = cfg.get("weight_dtype", "f32")

    def linear(in_f, out_f):  # (shape, dtype, layout) of a projection
        return ([in_f, out_f], "f32", "io") if wdt == "f32" else ([out_f, in_f], wdt, "oi")

    w = {"embed": ("embed", [vocab, d], "f32", "embed")}
    for l in range(L):
        p = f"layers.{l}."
        for key, spec in [("attn_norm", ([1, 1, d], "f32", "row")), ("wq", linear(d, hq * hd)),
                          ("wk", linear(d, hkv * hd)), ("wv", linear(d, hkv * hd)),
                          ("wo", linear(hq * hd, d)), ("mlp_norm", ([1, 1, d], "f32", "row")),
                          ("w1", linear(d, ffn)), ("w3", linear(d, ffn)), ("w2", linear(ffn, d))]:
            w[p + key] = (p + key,) + spec
    w["final_norm"] = ("final_norm", [1, 1, d], "f32", "row")
    w["lm_head"] = ("lm_head",) + linear(d, vocab)
    return w


def build(cfg, n, name, weights=None):
    """One entry; n is None (prefill, dynamic) or 1 (decode).

    `weights` maps the graph's weight keys ("embed", "layers.{l}.wq", ...,
    optional biases "layers.{l}.bq/bk/bv/bo") to (tensor name, shape, dtype,
    layout); default: deltaflow_weights(cfg). tools/hf_import.py passes the
    Hugging Face names, nn.Linear's "oi" layout ([out, in], y = x W^T), 1-D
    "vec" norms and biases, and bf16/f16 dtypes, which a tosa.cast widens as
    they are read. Keys sharing one tensor name (tied embeddings) share one
    argument. cfg["sliding_window"] (Mistral) makes attention an
    attn.sparse_attention with sinks(0) window(W - 1): key j is seen by
    query i iff i - W < j <= i, as in transformers' sliding-window mask.
    """
    L, d, hq, hkv, hd = cfg["layers"], cfg["d_model"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    ffn, vocab = cfg["ffn"], cfg["vocab"]
    wt = weights or deltaflow_weights(cfg)
    g = Graph()
    args = [
        ("tokens", t([n], "i32"), "tokens"),
        ("positions", t([n], "i32"), "positions"),
        ("last_row", t([1, 1], "i32"), "last_row"),
    ]
    adt = cfg.get("attn_dtype", "f32")
    kv = adt if adt != "f32" else cfg["kv_dtype"]
    for l in range(L):
        args.append((f"cache.k.{l}", t([1, hkv, None, hd], kv), "kv_cache"))
        args.append((f"cache.v.{l}", t([1, hkv, None, hd], kv), "kv_cache"))
    seen = set()
    for wname, shape, dt, _ in wt.values():
        if wname not in seen:
            seen.add(wname)
            args.append((wname, t(shape, dt), "weight"))
    arg = {}
    sig = []
    for i, (aname, ty, role) in enumerate(args):
        arg[aname] = f"%a{i}"
        sig.append(f'%a{i}: {ty} {{deltaflow.name = "{aname}", deltaflow.role = "{role}"}}')

    def load(key):  # the weight as f32: (value, type, shape, layout)
        wname, shape, dt, layout = wt[key]
        v, ty = arg[wname], t(shape, dt)
        if dt != "f32":
            v = g.op(f"tosa.cast {v}", f"({ty}) -> {t(shape)}")
        return v, t(shape), shape, layout

    def weight3(key):  # a linear weight as [1, in, out] for tosa.matmul
        v, ty, s, layout = load(key)
        if layout == "io":
            return reshape(g, v, ty, [1] + s), t([1] + s)
        out_f, in_f = s
        r = reshape(g, v, ty, [1, out_f, in_f])
        return transpose(g, r, t([1, out_f, in_f]), [0, 2, 1], [1, in_f, out_f]), t([1, in_f, out_f])

    def row(key):  # a norm weight or bias as [1, 1, size]
        v, ty, s, layout = load(key)
        if layout == "row":
            return v, ty
        return reshape(g, v, ty, [1, 1, s[0]]), t([1, 1, s[0]])

    act = [1, n, d]
    tact = t(act)

    def rmsnorm(x, wname):
        sq = binary(g, "mul", x, x, tact, tact, tact, shift=True)
        ss = g.op(f"tosa.reduce_sum {sq} {{axis = 2 : i32}}", f"({tact}) -> {t([1, n, 1])}")
        inv_d = const_splat(g, 1.0 / d, [1, 1, 1])
        ms = binary(g, "mul", ss, inv_d, t([1, n, 1]), t([1, 1, 1]), t([1, n, 1]), shift=True)
        eps = const_splat(g, cfg["norm_eps"], [1, 1, 1])
        ms = binary(g, "add", ms, eps, t([1, n, 1]), t([1, 1, 1]), t([1, n, 1]))
        r = unary(g, "rsqrt", ms, t([1, n, 1]))
        xr = binary(g, "mul", x, r, tact, t([1, n, 1]), tact, shift=True)
        w, tw = row(wname)
        return binary(g, "mul", xr, w, tact, tw, tact, shift=True)

    # Embedding lookup: gather rows of [1, vocab, d] by tokens [1, n].
    ev, ety, _, _ = load("embed")
    emb, temb = reshape(g, ev, ety, [1, vocab, d]), t([1, vocab, d])
    toks = reshape(g, arg["tokens"], t([n], "i32"), [1, n])
    x = g.op(f"tosa.gather {emb}, {toks}", f"({temb}, {t([1, n], 'i32')}) -> {tact}")

    # RoPE angles [1, n, 1, hd]: position * inv_freq (rotate-half layout).
    pos = g.op(f"tosa.cast {arg['positions']}", f"({t([n], 'i32')}) -> {t([n])}")
    pos = reshape(g, pos, t([n]), [1, n, 1, 1])
    half = hd // 2
    # cfg["rope_inv_freq"]: precomputed (rope scaling; tools/hf_import.py).
    inv = list(cfg.get("rope_inv_freq") or
               [1.0 / (cfg["rope_theta"] ** (2 * i / hd)) for i in range(half)])
    invc = const_vec(g, inv + inv, [1, 1, 1, hd])
    ang = binary(g, "mul", pos, invc, t([1, n, 1, 1]), t([1, 1, 1, hd]), t([1, n, 1, hd]), shift=True)
    cos = unary(g, "cos", ang, t([1, n, 1, hd]))
    sin = unary(g, "sin", ang, t([1, n, 1, hd]))

    def rope(v4, heads):
        s4 = [1, n, heads, hd]
        ts4 = t(s4)
        hs = [1, n, heads, half]
        x1 = g.op(f"tosa.slice {v4} {{size = array<i64: {', '.join('-1' if s is None else str(s) for s in hs)}>, start = array<i64: 0, 0, 0, 0>}}",
                  f"({ts4}) -> {t(hs)}")
        x2 = g.op(f"tosa.slice {v4} {{size = array<i64: {', '.join('-1' if s is None else str(s) for s in hs)}>, start = array<i64: 0, 0, 0, {half}>}}",
                  f"({ts4}) -> {t(hs)}")
        nx2 = unary(g, "negate", x2, t(hs))
        rot = g.op(f"tosa.concat {nx2}, {x1} {{axis = 3 : i32}}", f"({t(hs)}, {t(hs)}) -> {ts4}")
        a = binary(g, "mul", v4, cos, ts4, t([1, n, 1, hd]), ts4, shift=True)
        b = binary(g, "mul", rot, sin, ts4, t([1, n, 1, hd]), ts4, shift=True)
        return binary(g, "add", a, b, ts4, ts4, ts4)

    def linear(xv, txv, w, tw, out_f, bias_key):
        y = matmul(g, xv, txv, w, tw, [1, n, out_f])
        if bias_key not in wt:
            return y
        b, tb = row(bias_key)
        return binary(g, "add", y, b, t([1, n, out_f]), tb, t([1, n, out_f]))

    for l in range(L):
        p = f"layers.{l}."
        xn = rmsnorm(x, p + "attn_norm")
        wq, twq = weight3(p + "wq")
        wk, twk = weight3(p + "wk")
        wv, twv = weight3(p + "wv")
        q = linear(xn, tact, wq, twq, hq * hd, p + "bq")
        k = linear(xn, tact, wk, twk, hkv * hd, p + "bk")
        v = linear(xn, tact, wv, twv, hkv * hd, p + "bv")
        q4 = reshape(g, q, t([1, n, hq * hd]), [1, n, hq, hd])
        k4 = reshape(g, k, t([1, n, hkv * hd]), [1, n, hkv, hd])
        v4 = reshape(g, v, t([1, n, hkv * hd]), [1, n, hkv, hd])
        qr, kr = rope(q4, hq), rope(k4, hkv)
        qt = transpose(g, qr, t([1, n, hq, hd]), [0, 2, 1, 3], [1, hq, n, hd])
        kt = transpose(g, kr, t([1, n, hkv, hd]), [0, 2, 1, 3], [1, hkv, n, hd])
        vt = transpose(g, v4, t([1, n, hkv, hd]), [0, 2, 1, 3], [1, hkv, n, hd])
        if adt != "f32":  # round Q/K/V to the attention type (RNE)
            qt = g.op(f"tosa.cast {qt}", f"({t([1, hq, n, hd])}) -> {t([1, hq, n, hd], adt)}")
            kt = g.op(f"tosa.cast {kt}", f"({t([1, hkv, n, hd])}) -> {t([1, hkv, n, hd], adt)}")
            vt = g.op(f"tosa.cast {vt}", f"({t([1, hkv, n, hd])}) -> {t([1, hkv, n, hd], adt)}")
        tc = t([1, hkv, None, hd], kv)
        kall = g.op(f"attn.cache_write {arg[f'cache.k.{l}']}, {kt}", f"{tc}, {t([1, hkv, n, hd], adt)}")
        vall = g.op(f"attn.cache_write {arg[f'cache.v.{l}']}, {vt}", f"{tc}, {t([1, hkv, n, hd], adt)}")
        tq = t([1, hq, n, hd], adt)
        if cfg.get("sliding_window"):
            o = g.op(f"attn.sparse_attention {qt}, {kall}, {vall} sinks(0) "
                     f"window({cfg['sliding_window'] - 1}) chunk(64)",
                     f"{tq}, {tc}, {tc}")
        else:
            o = g.op(f"attn.attention {qt}, {kall}, {vall} causal", f"{tq}, {tc}, {tc}")
        if adt != "f32":
            o = g.op(f"tosa.cast {o}", f"({tq}) -> {t([1, hq, n, hd])}")
        ot = transpose(g, o, t([1, hq, n, hd]), [0, 2, 1, 3], [1, n, hq, hd])
        o3 = reshape(g, ot, t([1, n, hq, hd]), [1, n, hq * hd])
        wo, two = weight3(p + "wo")
        proj = linear(o3, t([1, n, hq * hd]), wo, two, d, p + "bo")
        x = binary(g, "add", x, proj, tact, tact, tact)
        xn2 = rmsnorm(x, p + "mlp_norm")
        w1, tw1 = weight3(p + "w1")
        w3, tw3 = weight3(p + "w3")
        w2, tw2 = weight3(p + "w2")
        tf = t([1, n, ffn])
        gate = matmul(g, xn2, tact, w1, tw1, [1, n, ffn])
        up = matmul(g, xn2, tact, w3, tw3, [1, n, ffn])
        sg = unary(g, "sigmoid", gate, tf)
        silu = binary(g, "mul", gate, sg, tf, tf, tf, shift=True)
        hid = binary(g, "mul", silu, up, tf, tf, tf, shift=True)
        down = matmul(g, hid, tf, w2, tw2, act)
        x = binary(g, "add", x, down, tact, tact, tact)

    xf = rmsnorm(x, "final_norm")
    last = g.op(f"tosa.gather {xf}, {arg['last_row']}", f"({tact}, {t([1, 1], 'i32')}) -> {t([1, 1, d])}")
    head, thead = weight3("lm_head")
    logits = matmul(g, last, t([1, 1, d]), head, thead, [1, 1, vocab])
    logits = reshape(g, logits, t([1, 1, vocab]), [1, vocab])
    out = [f"func.func @{name}(" + ",\n    ".join(sig) + f") -> ({t([1, vocab])} {{deltaflow.name = \"logits\"}}) {{"]
    out += g.lines
    out.append(f"    return {logits} : {t([1, vocab])}")
    out.append("}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="JSON file with any of: " + ", ".join(DEFAULTS))
    for k, v in DEFAULTS.items():
        ap.add_argument("--" + k.replace("_", "-"), type=type(v), help=f"default {v}")
    ap.add_argument("-o", "--output", required=True, help="output .mlir")
    a = ap.parse_args()
    cfg = dict(DEFAULTS)
    if a.config:
        try:
            with open(a.config) as f:
                user = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f"gen_llama.py: {a.config}: {e}")
        unknown = set(user) - set(DEFAULTS)
        if unknown:
            sys.exit(f"gen_llama.py: {a.config}: unknown keys {sorted(unknown)}")
        cfg.update(user)
    for k in DEFAULTS:
        v = getattr(a, k)
        if v is not None:
            cfg[k] = v
    if cfg["weight_dtype"] not in ("f32", "bf16", "f16"):
        sys.exit(f"gen_llama.py: weight_dtype must be f32, bf16 or f16, got {cfg['weight_dtype']!r}")
    if cfg["attn_dtype"] not in ("f32", "bf16", "f16"):
        sys.exit(f"gen_llama.py: attn_dtype must be f32, bf16 or f16, got {cfg['attn_dtype']!r}")
    kv_ok = ("f32", "f16") if cfg["attn_dtype"] == "f32" else ("f32", cfg["attn_dtype"])
    if cfg["kv_dtype"] not in kv_ok:
        sys.exit(f"gen_llama.py: kv_dtype must be {' or '.join(kv_ok)} with attn_dtype "
                 f"{cfg['attn_dtype']!r} (a 16-bit attention type is also the cache's), "
                 f"got {cfg['kv_dtype']!r}")
    if cfg["heads"] % cfg["kv_heads"] or cfg["head_dim"] % 2 or cfg["heads"] * cfg["head_dim"] <= 0:
        sys.exit("gen_llama.py: heads must be a multiple of kv_heads and head_dim even")
    text = ["// Llama-style decoder, generated by examples/llama/gen_llama.py",
            "// config: " + json.dumps(cfg, sort_keys=True),
            "module {", build(cfg, None, "prefill"), "", build(cfg, 1, "decode"), "}", ""]
    d = os.path.dirname(os.path.abspath(a.output))
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(text))
    os.replace(tmp, a.output)


if __name__ == "__main__":
    main()
