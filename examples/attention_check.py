#!/usr/bin/env python3
"""Inputs and a float64 reference for examples/attention.mlir.

  attention_check.py gen DIR --nq 2048 --nk 2048 [--seed 0] [--kv-dtype float16]
                          [--hq 32 --hkv 8 --d 128]
      writes DIR/q.npy, DIR/k.npy, DIR/v.npy (float32, Llama-3-8B heads; with
      --kv-dtype float16, k and v are stored as float16, for
      examples/attention_f16kv.mlir)
  attention_check.py check DIR [--causal] [--out FILE]
      compares DIR/out.npy (or FILE) with float64 attention over the same inputs
  attention_check.py check DIR --causal --report [--out FILE]
      for a sparse build: report relative L2 and cosine against dense
  attention_check.py check DIR --causal --delta-stride S [--rows-after N] [--out FILE]
      for a build with --delta="stride=S": rows 0, S, 2S, ... and the tail
      (of a call that N prompt rows follow: deltaflow-run --rows-after N)
      must equal dense attention (the correction makes them exact); the other
      rows are sparse, and their error against dense is reported
  attention_check.py check DIR --causal --window W [--sinks S] [--out FILE]
      for a policy=window build: float64 window + sinks attention (row at
      position p sees j iff j <= p and (j < S or p - j <= W))
  check ... --lse FILE
      also compares FILE (the log-sum-exp output [1, Hq, Nq], e.g. of
      examples/attention_lse.mlir) with the float64 log-sum-exp
  gen ... --poison-k J=VALUE[,J=VALUE...]
      sets element 0 of key J (every KV head) to VALUE (inf, -inf, nan, or a
      number): with q's random signs, that key's scores are +inf in some rows
      and -inf in others (or NaN)
  gen ... --poison-v J[:E]=VALUE[,...]
      sets element E (default 0) of value row J (every KV head) to VALUE
  check ... (non-finite reference)
      where the float64 reference is NaN or inf, the output must be the same,
      and finite everywhere else. The reference is IEEE softmax over the keys
      a row sees: a +inf or NaN score makes the row NaN, -inf weighs 0 (and
      its value row never matters, as for a key the row does not see), all
      -inf is NaN; a non-finite value element reaches exactly the rows that
      see its key with a score above -inf, as +-inf (NaN where they meet, or
      with a NaN), whatever the key's weight
  check DIR --causal --exact-sparse [--indices FILE --chunk C] [--window W --sinks S]
                [--delta-stride S2 [--rows-after N]] [--out FILE]
      the exact float64 output of a sparse build, every element: attention
      over the keys the kernels attend to (sinks, the chunk's selected
      indices from FILE, written by deltaflow-run --temporaries, and the
      chunk's local window [max(S, s0 - W), p], s0 the chunk's first
      position; without FILE, policy=window's sliding window), then with
      S2 the Delta correction as the kernels compute it,
      (O_s[i] + O_dense[m S2]) - O_s[m S2] for i in [m S2, (m + 1) S2), the
      tail rows dense. NaN and inf must sit where the reference has them.
  check ... --kv-dtype float16
      rounds K/V to float16 before the float64 reference (a no-op for files
      already stored as float16), so an f16-K/V build is checked against the
      attention it computes
"""
import argparse
import os
import re
import sys

import numpy as np

# The Δ geometry's constant, read from its one definition (C++), so this
# check cannot drift from the kernels: geometry::deltaTailRows in
# common/include/deltaflow/Common/SparseGeometry.h.
_GEOMETRY_H = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common",
                           "include", "deltaflow", "Common", "SparseGeometry.h")


def delta_tail_span(stride):
    """max(kDeltaTailMinRows, stride): the rows of the Δ tail beyond nq % s."""
    with open(_GEOMETRY_H) as f:
        m = re.search(r"kDeltaTailMinRows = (\d+);", f.read())
    if not m:
        sys.exit(f"attention_check: error: no kDeltaTailMinRows in {_GEOMETRY_H}")
    return max(int(m.group(1)), stride)


HQ, HKV, D = 32, 8, 128


def gen(args):
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.dir, exist_ok=True)
    for name, n in (("q", args.nq), ("k", args.nk), ("v", args.nk)):
        heads = args.hq if name == "q" else args.hkv
        a = rng.standard_normal((1, heads, n, args.d), dtype=np.float32)
        if name == "k" and args.poison_k:
            for item in args.poison_k.split(","):
                j, value = item.split("=")
                a[0, :, int(j), 0] = float(value)
        if name == "v" and args.poison_v:
            for item in args.poison_v.split(","):
                at, value = item.split("=")
                j, _, col = at.partition(":")
                a[0, :, int(j), int(col or 0)] = float(value)
        if name != "q" and args.kv_dtype == "float16":
            a = a.astype(np.float16)
        np.save(os.path.join(args.dir, name + ".npy"), a)
    print(f"wrote q[1,{args.hq},{args.nq},{args.d}], k/v[1,{args.hkv},{args.nk},{args.d}] "
          f"({args.kv_dtype}) to {args.dir}")


def reference(q, k, v, causal, window=None, sinks=0, hidden=None):
    """float64 attention; with `window`, window + sinks attention in
    FlashAttention's convention (window_size=(window, 0)): the query at
    position p sees key j iff j <= p and (j < sinks or p - j <= window).
    `hidden(kv_head)`, when given, is the [nq, nk] mask of keys hidden from
    each row (instead of the causal/window mask)."""
    _, hq, nq, d = q.shape
    nk = k.shape[2]
    group = hq // k.shape[1]
    offset = nk - nq
    scale = 1.0 / np.sqrt(d)
    out = np.empty(q.shape[:3] + (v.shape[3],), dtype=np.float64)
    lse = np.empty(q.shape[:3], dtype=np.float64)
    mask = None
    if causal:
        pos = np.arange(nq)[:, None] + offset
        j = np.arange(nk)[None, :]
        mask = j > pos
        if window is not None:
            mask = mask | ((j >= sinks) & (pos - j > window))
    for h in range(hq):
        if hidden is not None:
            mask = hidden(h // group)
        kh = k[0, h // group].astype(np.float64)
        vh = v[0, h // group].astype(np.float64)
        s = (q[0, h].astype(np.float64) @ kh.T) * scale
        if mask is not None:
            s[mask] = -np.inf
        m = s.max(axis=1, keepdims=True)
        p = np.exp(s - m)
        out[0, h] = (p @ np.where(np.isfinite(vh), vh, 0)) / p.sum(axis=1, keepdims=True)
        if not np.isfinite(vh).all():
            out[0, h] = with_nonfinite_values(out[0, h], s > -np.inf, vh)
        # torch.logsumexp's value: -inf for a row whose scores are all -inf.
        lse[0, h] = np.where(np.isneginf(m[:, 0]), -np.inf, m[:, 0] + np.log(p.sum(axis=1)))
    return out, lse


def with_nonfinite_values(out, seen, v):
    """IEEE sum of positive weights times v over the keys each row sees
    (`seen` [nq, nk], a score above -inf), where v has inf or NaN: +inf
    (-inf) where a row sees a +inf (-inf) element and no other kind, NaN
    where it sees a NaN or both infinities; `out` (the finite part)
    elsewhere, and NaN rows stay NaN."""
    seen = seen.astype(np.float64)
    pos, neg = seen @ (v == np.inf), seen @ (v == -np.inf)
    nan = ((seen @ np.isnan(v)) > 0) | np.isnan(out)
    out = np.where((pos > 0) & (neg == 0), np.inf, out)
    out = np.where((neg > 0) & (pos == 0), -np.inf, out)
    return np.where(nan | ((pos > 0) & (neg > 0)), np.nan, out)


def sparse_hidden(nq, nk, idx, sinks, window, chunk):
    """The keys hidden from each row of a selection build, per KV head:
    row p (chunk c = i // chunk, s0 = Nk - Nq + c chunk) sees the sinks,
    the chunk's indices (idx [1, 1 or Hkv, C, slots], -1 unused) and its
    local window [max(sinks, s0 - window), p]; every key is causal."""
    offset = nk - nq
    pos = np.arange(nq) + offset
    j = np.arange(nk)[None, :]

    def hidden(kv_head):
        hs = 0 if idx.shape[1] == 1 else kv_head
        seen = (j < sinks) | ((j >= np.maximum(sinks, offset + (np.arange(nq) // chunk) * chunk
                                               - window)[:, None]))
        for c in range(idx.shape[2]):
            rows = slice(c * chunk, min(nq, (c + 1) * chunk))
            sel = idx[0, hs, c]
            sel = sel[(sel >= 0) & (sel < nk)]
            seen[rows, sel] = True
        return ~seen | (j > pos[:, None])
    return hidden


def delta_combine(sparse, dense, s, tail):
    """The Delta correction as delta_correct computes it: rows i < Nq - tail
    get (O_s[i] + O_dense[m s]) - O_s[m s], m = i // s; the tail is dense."""
    nq = sparse.shape[2]
    out = np.empty_like(sparse)
    for i in range(nq - tail):
        m = i // s * s
        out[:, :, i] = (sparse[:, :, i] + dense[:, :, m]) - sparse[:, :, m]
    out[:, :, nq - tail:] = dense[:, :, nq - tail:]
    return out


def split_nan(name, out, ref):
    """For a reference with NaN (or infinite) elements: checks that `out` is
    NaN exactly where it is NaN and the same infinity where it is infinite,
    prints the count, and returns (out, ref) with those elements zeroed, or
    None on a mismatch."""
    nan_ref, nan_out = ~np.isfinite(ref), ~np.isfinite(out)
    if not nan_ref.any() and not nan_out.any():
        return out, ref
    wrong = (nan_ref != nan_out) | (np.isnan(ref) != np.isnan(out)) | (
        np.isinf(ref) & (ref != out))
    print(f"{name}: {int(nan_ref.sum())} of {ref.size} reference elements NaN or inf; "
          f"output differs in {int(wrong.sum())}")
    if wrong.any():
        idx = np.argwhere(wrong)[0]
        print(f"FAIL ({name} at {tuple(int(x) for x in idx)}: output "
              f"{out[tuple(idx)]}, reference {ref[tuple(idx)]})")
        return None
    return np.where(nan_out, 0, out), np.where(nan_ref, 0, ref)


def matched(name, out, ref):
    """split_nan after checking the shapes: None (printed) on a mismatch."""
    if out.shape != ref.shape:
        print(f"shape mismatch: {name} {out.shape}, reference {ref.shape}")
        return None
    return split_nan(name, out, ref)


def check(args):
    load = lambda n: np.load(os.path.join(args.dir, n + ".npy"))
    q, k, v = load("q"), load("k"), load("v")
    if args.kv_dtype == "float16":
        k, v = k.astype(np.float16), v.astype(np.float16)
    out = np.load(args.out) if args.out else load("out")
    with np.errstate(invalid="ignore"):
        if args.exact_sparse:
            return check_exact_sparse(args, q, k, v, out)
        ref, ref_lse = reference(q, k, v, args.causal, args.window, args.sinks)
    if out.shape == ref.shape:
        both = split_nan("out", out, ref)
        if both is None:
            return 1
        out, ref = both
    if args.lse:
        both = matched("lse", np.load(args.lse), ref_lse)
        if both is None:
            return 1
        lse, ref_lse = both
        lerr = np.abs(lse - ref_lse).max()
        print(f"lse: max abs error vs float64 = {lerr:.3e}")
        if not (np.isfinite(lse).all() and lerr <= 1e-4):
            print("FAIL (lse tolerance 1e-4)")
            return 1
    if out.shape != ref.shape:
        print(f"shape mismatch: out {out.shape}, reference {ref.shape}")
        return 1
    finite = np.isfinite(out).all()
    if args.report:
        err = np.linalg.norm(out - ref) / np.linalg.norm(ref)
        cos = np.mean(np.sum(out * ref, -1) /
                      (np.linalg.norm(out, axis=-1) * np.linalg.norm(ref, axis=-1)))
        print(f"sparse output vs dense float64: relative L2 = {err:.3e}, mean "
              f"cosine = {cos:.6f}; all finite: {finite}")
        return 0 if finite else 1
    if args.delta_stride:
        s = args.delta_stride
        nq = out.shape[2]
        # The tail is the prompt's last nq % s + max(128, s) rows; a call
        # that N more prompt rows follow (deltaflow-run --rows-after N) holds
        # only the part not among them (docs/design.md, Δ-correction).
        span = delta_tail_span(s)
        tail = min(nq, max(0, nq % s + span - args.rows_after))
        rows = sorted(set(range(0, nq - tail, s)) | set(range(nq - tail, nq)))
        if tail == 0:
            # The would-be tail rows that are not strided stay sparse: a tail
            # computed anyway would make them exact.
            last = [r for r in range(max(0, nq - span), nq) if r % s]
            terr = (np.linalg.norm(out[:, :, last] - ref[:, :, last]) /
                    np.linalg.norm(ref[:, :, last])) if last else 1.0
            print(f"last rows off the stride ({len(last)}): relative L2 vs "
                  f"dense = {terr:.3e} (no tail: expected > 1e-4)")
            if terr <= 1e-4:
                print("FAIL (the rows off the stride are exact: the call "
                      "computed a dense tail, or took the dense fallback "
                      "because the context fits sinks + budget + window)")
                return 1
        exact = out[:, :, rows]
        rerr = np.linalg.norm(exact - ref[:, :, rows]) / np.linalg.norm(ref[:, :, rows])
        err = np.linalg.norm(out - ref) / np.linalg.norm(ref)
        cos = np.mean(np.sum(out * ref, -1) /
                      (np.linalg.norm(out, axis=-1) * np.linalg.norm(ref, axis=-1)))
        print(f"strided + tail rows ({len(rows)} of {nq}): relative L2 vs dense "
              f"= {rerr:.3e}; all rows: relative L2 = {err:.3e}, mean cosine = "
              f"{cos:.6f}; all finite: {finite}")
        ok = finite and rerr <= 1e-4
        print("PASS" if ok else "FAIL (tolerance 1e-4 on the corrected rows)")
        return 0 if ok else 1
    err = np.linalg.norm(out - ref) / np.linalg.norm(ref)
    print(f"checksum sum(out) = {out.astype(np.float64).sum():.6e}")
    print(f"relative L2 error vs float64 reference = {err:.3e} "
          f"(max abs {np.abs(out - ref).max():.3e}); all finite: {finite}")
    ok = finite and err <= 1e-4
    print("PASS" if ok else "FAIL (tolerance 1e-4)")
    return 0 if ok else 1


def check_exact_sparse(args, q, k, v, out):
    nq, nk = q.shape[2], k.shape[2]
    if args.indices:
        idx = np.load(args.indices)
        hidden = sparse_hidden(nq, nk, idx, args.sinks, args.window or 0, args.chunk)
        ref, _ = reference(q, k, v, True, hidden=hidden)
    else:
        ref, _ = reference(q, k, v, True, args.window, args.sinks)
    what = "sparse"
    if args.delta_stride:
        s = args.delta_stride
        tail = min(nq, max(0, nq % s + delta_tail_span(s) - args.rows_after))
        dense, _ = reference(q, k, v, True)
        ref = delta_combine(ref, dense, s, tail)
        what = f"sparse + Delta (stride {s}, tail {tail})"
    both = matched("out", out, ref)
    if both is None:
        return 1
    o, r = both
    err = np.linalg.norm(o - r) / max(np.linalg.norm(r), 1e-300)
    print(f"{what}: relative L2 vs the exact float64 {what} = {err:.3e} (finite elements)")
    ok = err <= 1e-4
    print("PASS" if ok else "FAIL (tolerance 1e-4)")
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("dir")
    g.add_argument("--nq", type=int, default=2048)
    g.add_argument("--nk", type=int, default=2048)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--hq", type=int, default=HQ, help="query heads")
    g.add_argument("--hkv", type=int, default=HKV, help="key/value heads")
    g.add_argument("--d", type=int, default=D, help="head dim")
    g.add_argument("--poison-v", default="",
                   help="J[:E]=VALUE,...: set element E (default 0) of value row J")
    g.add_argument("--poison-k", default="",
                   help="J=VALUE,...: non-finite (or any) values in keys' element 0")
    g.add_argument("--kv-dtype", choices=["float32", "float16"], default="float32",
                   help="dtype of the k/v files")
    c = sub.add_parser("check")
    c.add_argument("dir")
    c.add_argument("--causal", action="store_true")
    c.add_argument("--out", help="output .npy (default DIR/out.npy)")
    c.add_argument("--lse", help="also check this log-sum-exp output .npy")
    c.add_argument("--report", action="store_true",
                   help="only report the error against dense (a sparse build)")
    c.add_argument("--delta-stride", type=int, default=0,
                   help="check a Delta-corrected sparse build with this stride")
    c.add_argument("--window", type=int, default=None,
                   help="with --causal: the reference is window + sinks "
                        "attention (policy=window), a per-query sliding window")
    c.add_argument("--sinks", type=int, default=0,
                   help="attention sinks of --window (default 0)")
    c.add_argument("--rows-after", type=int, default=0,
                   help="with --delta-stride: the output of a call that this "
                        "many prompt rows follow (deltaflow-run --rows-after)")
    c.add_argument("--kv-dtype", choices=["float32", "float16"], default="float32",
                   help="round K/V to this dtype before the float64 reference")
    c.add_argument("--exact-sparse", action="store_true",
                   help="with --causal: check every element against the exact "
                        "float64 output of a sparse build (see above)")
    c.add_argument("--indices", help="with --exact-sparse: the selection's indices .npy")
    c.add_argument("--chunk", type=int, default=1,
                   help="with --indices: the selection's chunk (query rows per selection)")
    args = p.parse_args()
    return gen(args) if args.cmd == "gen" else check(args)


if __name__ == "__main__":
    sys.exit(main() or 0)
