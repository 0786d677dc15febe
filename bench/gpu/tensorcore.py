#!/usr/bin/env python3
"""Tensor-core attention (compiler/TensorCore) on the device: correctness
against float64 PyTorch, then speed against SDPA flash and cuDNN in the same
run. Device side of bench/gpu/build.sh (which compiles the cases of
tensorcore_cases.py into bench/gpu/out/tc/).

Two ways to run a case:
  direct  - the PTX (OUT.ptx) is loaded with cuModuleLoadData and launched
            with cuLaunchKernel on PyTorch's tensors, packed as the kernel
            ABI says (compiler/include/deltaflow/Compiler/TensorCore.h);
  run     - deltaflow-run on the compiled module (.npy in and out), the
            path users take: checks the runtime's launcher and I/O.

Every check draws fresh random inputs, poisons the output with NaN first,
and compares every element against float64 attention.
"""
import argparse
import ctypes
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import cuda_time, rel_l2  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TC = os.path.join(HERE, "out", "tc")
DT = {"bf16": torch.bfloat16, "f16": torch.float16}


class Driver:
    """The few CUDA driver calls a PTX launch needs, on PyTorch's context."""

    def __init__(self):
        torch.zeros(1, device="cuda")  # primary context current on this thread
        self.cu = ctypes.CDLL("libcuda.so.1")

    def check(self, rc, what):
        if rc != 0:
            s = ctypes.c_char_p()
            self.cu.cuGetErrorString(rc, ctypes.byref(s))
            raise RuntimeError(f"{what}: CUDA error {rc} ({s.value.decode() if s.value else '?'})")

    def load(self, ptx, function, shared):
        mod, fn = ctypes.c_void_p(), ctypes.c_void_p()
        self.check(self.cu.cuModuleLoadData(ctypes.byref(mod), ptx.encode() + b"\0"), "cuModuleLoadData")
        self.check(self.cu.cuModuleGetFunction(ctypes.byref(fn), mod, function.encode()), "cuModuleGetFunction")
        self.check(self.cu.cuFuncSetAttribute(fn, 8, ctypes.c_int(shared)), "cuFuncSetAttribute")
        return fn

    def launch(self, fn, grid, threads, shared, tensors, scalars):
        vals = []
        for t in tensors:  # memref descriptor {alloc, aligned, offset, size, stride}
            vals += [t.data_ptr(), t.data_ptr(), 0, t.numel(), 1]
        vals += list(scalars)
        cvals = [ctypes.c_uint64(v) for v in vals]
        params = (ctypes.c_void_p * len(cvals))(*[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in cvals])
        stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
        self.check(self.cu.cuLaunchKernel(fn, *[ctypes.c_uint(g) for g in grid],
                                          ctypes.c_uint(threads), ctypes.c_uint(1), ctypes.c_uint(1),
                                          ctypes.c_uint(shared), stream, params, None), "cuLaunchKernel")


def load_case(name):
    with open(os.path.join(TC, "cases.json")) as f:
        case = json.load(f)[name]
    with open(os.path.join(TC, name + ".manifest.json")) as f:
        man = json.load(f)
    k = man["entries"][0]["kernels"][0]
    var = k["variants"][0]
    case["launch"] = var["ptx"]
    case["scale"] = k["params"]["scale"]
    with open(os.path.join(TC, name + ".ptx")) as f:
        case["ptx"] = f.read()
    return case


def reference(q, k, v, scale, causal, offset=None, sinks=0, window=None):
    """float64 attention and its natural-log LSE; query i sits at position
    p = offset + i (offset: Nk - Nq unless the op gives one). With `window`:
    window + sinks, p sees j iff j <= p and (j < sinks or p - j <= window)."""
    g = q.shape[1] // k.shape[1]
    qd, kd, vd = q.double(), k.double().repeat_interleave(g, 1), v.double().repeat_interleave(g, 1)
    s = torch.matmul(qd, kd.transpose(-1, -2)) * scale
    if causal:
        nq, nk = q.shape[2], k.shape[2]
        i = torch.arange(nq, device=q.device)[:, None] + (nk - nq if offset is None else offset)
        j = torch.arange(nk, device=q.device)[None, :]
        hidden = j > i
        if window is not None:
            hidden = hidden | ((j >= sinks) & (i - j > window))
        s = s.masked_fill(hidden, float("-inf"))
    lse = torch.logsumexp(s, -1)
    return torch.matmul(torch.softmax(s, -1), vd), lse


def select_indices(case, nq, nk, gen, fill=1.0):
    """A selection as attn.select writes it: per (batch, index set, chunk),
    up to `slots` keys drawn from the candidates [sinks, s0 - window),
    ascending, then -1. `fill` < 1 leaves some slots unused."""
    b, chunk, slots = case["batch"], case["chunk"], case["slots"]
    hs = case["hkv"] if case["per_kv"] else 1
    off = nk - nq if case.get("offset") is None else case["offset"]
    nc = -(-nq // chunk)
    idx = torch.full((b, hs, nc, slots), -1, dtype=torch.int32)
    for c in range(nc):
        s0 = off + c * chunk
        cand = max(min(s0 - case["window"], nk) - case["sinks"], 0)
        take = min(slots, int(cand * fill) if fill < 1 else cand)
        for bi in range(b):
            for h in range(hs):
                pick = torch.randperm(cand, generator=gen)[:take] + case["sinks"] if cand else torch.zeros(0, dtype=torch.long)
                idx[bi, h, c, :take] = pick.sort().values.int()
    return idx.cuda()


def reference_select(q, k, v, scale, case, idx):
    """float64 attn.sparse_attention with a selection: row i at p = offset
    + i in chunk c (first position s0) sees j <= p with j < sinks, j among
    the chunk's indices, or j >= max(sinks, s0 - window); a context of at
    most sinks + slots + window keys is dense causal (the op's fallback)."""
    b, hq, nq, _ = q.shape
    hkv, nk = k.shape[1], k.shape[2]
    g = hq // hkv
    off = nk - nq if case.get("offset") is None else case["offset"]
    dev = q.device
    pos = torch.arange(nq, device=dev)[:, None] + off
    j = torch.arange(nk, device=dev)[None, :]
    hidden = j > pos
    if nk > case["sinks"] + case["slots"] + case["window"]:
        s0 = off + (torch.arange(nq, device=dev)[:, None] // case["chunk"]) * case["chunk"]
        local = j >= torch.clamp(s0 - case["window"], min=case["sinks"])
        seen = (j < case["sinks"]) | local  # [nq, nk], then per index set
        chosen = torch.zeros(b, idx.shape[1], idx.shape[2], nk + 1, dtype=torch.bool, device=dev)
        ix = idx.long().clone()
        ix[ix < 0] = nk
        chosen.scatter_(3, ix, True)
        chosen = chosen[..., :nk]  # [b, hs, nc, nk]
        rows = chosen[:, :, torch.arange(nq, device=dev) // case["chunk"], :]  # [b, hs, nq, nk]
        rows = rows.repeat_interleave(hq // rows.shape[1], 1)
        hidden = hidden | ~(seen | rows)
    qd, kd, vd = q.double(), k.double().repeat_interleave(g, 1), v.double().repeat_interleave(g, 1)
    s = torch.matmul(qd, kd.transpose(-1, -2)) * scale
    s = s.masked_fill(hidden, float("-inf"))
    return torch.matmul(torch.softmax(s, -1), vd), torch.logsumexp(s, -1)


def sdpa_bf16_error(q, k, v, causal, ref):
    """The error of PyTorch's own bf16/f16 SDPA on the same inputs: the
    yardstick for what 16-bit inputs imply."""
    g = q.shape[1] // k.shape[1]
    kk, vv = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    if causal and q.shape[2] != k.shape[2]:
        from torch.nn.attention.bias import causal_lower_right
        out = F.scaled_dot_product_attention(q, kk, vv, attn_mask=causal_lower_right(q.shape[2], k.shape[2]))
    else:
        out = F.scaled_dot_product_attention(q, kk, vv, is_causal=causal)
    return rel_l2(out, ref)


def run_direct(drv, case, fn, q, k, v, idx=None):
    b, hq, nq, d = q.shape
    out = torch.full_like(q, float("nan"))
    lse = torch.full((b, hq, nq), float("nan"), device="cuda") if case["lse"] else None
    L = case["launch"]
    grid = (math.ceil(nq / L["rows_per_block"]), hq, b)
    tensors = [q, k, v] + ([idx] if idx is not None else []) + [out] + ([lse] if lse is not None else [])
    drv.launch(fn, grid, L["threads"], L["shared_bytes"], tensors, [nq, k.shape[2]])
    torch.cuda.synchronize()
    return out, lse


def run_module(name, case, q, k, v, work, idx=None):
    """deltaflow-run on .npy files: f16 inputs as float16 .npy; bf16 inputs
    (NumPy has none) as float32 .npy of the exact bf16 values (deltaflow-run
    rounds float32 to bf16, which is then exact). Outputs come back as
    float32."""
    for n, t in (("q", q), ("k", k), ("v", v)):
        arr = t.cpu().numpy() if t.dtype == torch.float16 else t.float().cpu().numpy()
        np.save(os.path.join(work, n + ".npy"), arr)
    cmd = [os.path.join(HERE, "out", "deltaflow-run"), os.path.join(TC, name + ".so")]
    for n in "qkv":
        cmd += ["--input", f"{n}={work}/{n}.npy"]
    if idx is not None:
        np.save(os.path.join(work, "indices.npy"), idx.cpu().numpy())
        cmd += ["--input", f"indices={work}/indices.npy"]
    cmd += ["--output", f"out={work}/out.npy"]
    if case["lse"]:
        cmd += ["--output", f"lse={work}/lse.npy"]
    cmd += ["--profile"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError((r.stderr or r.stdout).strip())
    out = torch.from_numpy(np.load(f"{work}/out.npy")).cuda()
    lse = torch.from_numpy(np.load(f"{work}/lse.npy")).cuda() if case["lse"] else None
    return out, lse, r.stdout


LENGTHS = [(1, 1), (1, 1000), (37, 300), (300, 300), (129, 1100), (64, 64),
           (65, 4097), (1000, 4097), (2048, 2048)]
# Past the bench selection's pattern (128 + 2048 + 512 keys).
SELECT_LENGTHS = [(700, 9001), (512, 16384)]


def check(drv, names, via, work, rows):
    ok = True
    gen = torch.Generator(device="cuda").manual_seed(1234)
    for name in names:
        case = load_case(name)
        L = case["launch"]
        fn = drv.load(case["ptx"], L["function"], L["shared_bytes"]) if via == "direct" else None
        dt = DT[case["dtype"]]
        lengths = LENGTHS + (SELECT_LENGTHS if case.get("select") else [])
        for li, (nq, nk) in enumerate(lengths):
            b, hq, hkv, d = case["batch"], case["hq"], case["hkv"], case["d"]
            q = torch.randn(b, hq, nq, d, device="cuda", generator=gen).to(dt)
            k = torch.randn(b, hkv, nk, d, device="cuda", generator=gen).to(dt)
            v = torch.randn(b, hkv, nk, d, device="cuda", generator=gen).to(dt)
            idx = None
            if case.get("select"):
                # Every other length leaves about a third of the slots unused.
                idx = select_indices(case, nq, nk, torch.Generator().manual_seed(li),
                                     fill=1.0 if li % 2 == 0 else 0.6)
                ref, ref_lse = reference_select(q, k, v, case["scale"], case, idx)
            else:
                ref, ref_lse = reference(q, k, v, case["scale"], case["causal"], case.get("offset"),
                                         case.get("sinks", 0), case.get("window"))
            if via == "direct":
                out, lse = run_direct(drv, case, fn, q, k, v, idx)
                prof = ""
            else:
                out, lse, prof = run_module(name, case, q, k, v, work, idx)
            nan = int(torch.isnan(out.float()).sum())
            err = rel_l2(out, ref)
            if case.get("offset") is None and case.get("window") is None and not case.get("select"):
                yard = sdpa_bf16_error(q, k, v, case["causal"], ref)
            else:  # SDPA has no offset or window: the float64 reference on 16-bit-rounded output
                yard = rel_l2(ref.to(dt), ref)
            lse_err = (ref_lse - lse.double()).abs().max().item() if lse is not None else 0.0
            # Bound: P is rounded to the input type before P.V, as in
            # FlashAttention; bf16 keeps 8 bits (2^-8 = 3.9e-3 per element),
            # f16 11. Pass within 2x PyTorch's own 16-bit SDPA error on the
            # same inputs, or 2^-8 (bf16) / 2^-11 (f16), whichever is larger.
            bound = max(2 * yard, 2 ** -8 if case["dtype"] == "bf16" else 2 ** -11)
            good = nan == 0 and err <= bound and lse_err <= 1e-3
            ok &= good
            tag = "ok " if good else "BAD"
            print(f"{tag} {via:6s} {name:26s} Nq={nq:5d} Nk={nk:5d}  rel L2 {err:.2e} "
                  f"(torch {case['dtype']} {yard:.2e}, bound {bound:.1e})  NaN {nan}"
                  + (f"  lse max abs {lse_err:.1e}" if lse is not None else ""), flush=True)
            if via == "run" and nq == 2048 and "tensor" not in prof:
                print("   profile does not name the tensor-core kernel:\n" + prof)
                ok = False
            rows.append({"via": via, "case": name, "nq": nq, "nk": nk, "rel_l2": err,
                         "torch_rel_l2": yard, "bound": bound, "nan": nan,
                         "lse_max_abs": lse_err, "pass": good})
    return ok


def check_nonfinite(drv, names, rows):
    """Keys holding +inf / NaN (docs/hardening.md): output and LSE against
    float64, NaN (and -inf LSE) exactly where the reference has them, and
    within the checks' bound elsewhere. Key Nk/3 holds +inf in element 0, so
    a row sees a +inf score (NaN row) or a -inf one (weight 0) by the sign
    of its q; with a window, key `sinks` holds NaN and lies outside the
    window of the later rows, which must stay finite."""
    ok = True
    gen = torch.Generator(device="cuda").manual_seed(99)
    for name in names:
        case = load_case(name)
        L = case["launch"]
        fn = drv.load(case["ptx"], L["function"], L["shared_bytes"])
        dt = DT[case["dtype"]]
        for nq, nk in ((300, 300), (129, 1100), (1, 4097)):
            b, hq, hkv, d = case["batch"], case["hq"], case["hkv"], case["d"]
            q = torch.randn(b, hq, nq, d, device="cuda", generator=gen).to(dt)
            k = torch.randn(b, hkv, nk, d, device="cuda", generator=gen).to(dt)
            v = torch.randn(b, hkv, nk, d, device="cuda", generator=gen).to(dt)
            k[:, :, nk // 3, 0] = float("inf")
            if case.get("window") is not None:
                k[:, :, case.get("sinks", 0), 0] = float("nan")
            ref, ref_lse = reference(q, k, v, case["scale"], case["causal"], case.get("offset"),
                                     case.get("sinks", 0), case.get("window"))
            out, lse = run_direct(drv, case, fn, q, k, v)
            wrong = 0
            errs = []
            # LSE: a +inf score gives NaN here (the row's LSE is NaN as its
            # output is; docs/hardening.md), where torch.logsumexp gives +inf.
            lse_want = torch.where(torch.isposinf(ref_lse), float("nan"), ref_lse)
            for o, r in ((out.float(), ref), (lse, lse_want)):
                if o is None:
                    continue
                o = o.double()
                bad = ~torch.isfinite(r)
                wrong += int(((~torch.isfinite(o)) != bad).sum() + (torch.isnan(o) != torch.isnan(r)).sum()
                             + (torch.isinf(r) & (o != r)).sum())
                errs.append(rel_l2(o[~bad], r[~bad]) if (~bad).any() else 0.0)
            bound = 2 ** -8 if case["dtype"] == "bf16" else 2 ** -11
            nan_rows = int(torch.isnan(ref).any(-1).sum())
            good = wrong == 0 and errs[0] <= 2 * bound and (len(errs) < 2 or errs[1] <= 1e-3)
            # Finite rows are present; dense cases have NaN rows too (with a
            # window, later rows may see neither poisoned key).
            good &= nan_rows < b * hq * nq and (case.get("window") is not None or nan_rows > 0)
            ok &= good
            print(f"{'ok ' if good else 'BAD'} nonfin {name:26s} Nq={nq:5d} Nk={nk:5d}  NaN rows "
                  f"{nan_rows} of {b * hq * nq} (mismatched elements {wrong})  rel L2 finite "
                  + " / ".join(f"{e:.2e}" for e in errs), flush=True)
            rows.append({"case": name, "nq": nq, "nk": nk, "nan_rows": nan_rows, "mismatched": wrong,
                         "rel_l2_finite": errs, "pass": good})
    return ok


def bench(drv, names, lengths, rows):
    """Causal prefill: each variant of `names` (same shapes, other tiles)
    beside SDPA flash and cuDNN on the same inputs, and the bf16 matmul rate
    of this run as the peak."""
    cases = [load_case(n) for n in names]
    fns = [drv.load(c["ptx"], c["launch"]["function"], c["launch"]["shared_bytes"]) for c in cases]
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    peak = 2 * 8192 ** 3 / cuda_time(lambda: a @ a, 10) / 1e9
    print(f"bf16 matmul 8192^3: {peak:.0f} TFLOP/s (this run's peak)")
    c0 = cases[0]
    b, hq, hkv, d, dt = c0["batch"], c0["hq"], c0["hkv"], c0["d"], DT[c0["dtype"]]
    for n in lengths:
        q = torch.randn(b, hq, n, d, device="cuda", dtype=dt)
        k = torch.randn(b, hkv, n, d, device="cuda", dtype=dt)
        v = torch.randn(b, hkv, n, d, device="cuda", dtype=dt)
        reps = 10 if n >= 16384 else 30
        flops = 4 * b * hq * n * n * d / (2 if c0["causal"] else 1)
        refs = {}
        for rname, be in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
            try:
                def call():
                    with sdpa_kernel([be]):
                        return F.scaled_dot_product_attention(q, k, v, is_causal=c0["causal"], enable_gqa=True)
                call()
                refs[rname] = cuda_time(call, reps)
            except Exception as e:
                print(f"  ({rname}: {type(e).__name__}: {str(e)[:100]})")
        print(f"N={n}: " + "  ".join(f"{r} {t:.3f} ms ({flops / t / 1e9:.0f} TFLOP/s)" for r, t in refs.items()))
        for name, case, fn in zip(names, cases, fns):
            L = case["launch"]
            out = torch.empty_like(q)
            lse = torch.empty(b, hq, n, device="cuda") if case["lse"] else None
            grid = (math.ceil(n / L["rows_per_block"]), hq, b)
            ts = [q, k, v, out] + ([lse] if lse is not None else [])
            ms = cuda_time(lambda: drv.launch(fn, grid, L["threads"], L["shared_bytes"], ts, [n, n]), reps)
            tf = flops / ms / 1e9
            vs = "  ".join(f"ours/{r} {ms / t:.2f}x" for r, t in refs.items())
            print(f"  {name:26s} {ms:8.3f} ms {tf:6.1f} TFLOP/s ({100 * tf / peak:4.1f}% of matmul)  {vs}", flush=True)
            rows.append({"case": name, "tiles": case.get("tiles", {}), "n": n, "ours_ms": ms,
                         "tflops": tf, "matmul_tflops": peak, "references_ms": refs})


def bench_window(drv, name, n, rows):
    """Window + sinks at length n: ours beside FlexAttention with the same
    mask (torch.compile'd, bf16) and dense SDPA flash, with the checks'
    float64 bound on a 4K slice."""
    case = load_case(name)
    L = case["launch"]
    fn = drv.load(case["ptx"], L["function"], L["shared_bytes"])
    b, hq, hkv, d, dt = case["batch"], case["hq"], case["hkv"], case["d"], DT[case["dtype"]]
    sinks, window = case["sinks"], case["window"]
    q = torch.randn(b, hq, n, d, device="cuda", dtype=dt)
    k = torch.randn(b, hkv, n, d, device="cuda", dtype=dt)
    v = torch.randn(b, hkv, n, d, device="cuda", dtype=dt)
    # Visible (query, key) pairs: 4 d flops each (QK and PV).
    p = torch.arange(n, device="cuda", dtype=torch.float64)
    pairs = float(torch.clamp(p + 1, max=window + 1).sum() +
                  torch.clamp(torch.clamp(p - window, min=0), max=sinks).sum())
    flops = 4 * b * hq * pairs * d
    out = torch.empty_like(q)
    grid = (math.ceil(n / L["rows_per_block"]), hq, b)
    ms = cuda_time(lambda: drv.launch(fn, grid, L["threads"], L["shared_bytes"], [q, k, v, out], [n, n]), 20)
    refs, flex_err = {}, float("nan")
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        refs["dense flash"] = cuda_time(
            lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True), 10)
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        def mask_mod(bi, h, qi, kj):
            return (kj <= qi) & ((kj < sinks) | (qi - kj <= window))
        bm = create_block_mask(mask_mod, None, None, n, n, device="cuda")
        flex = torch.compile(flex_attention)
        run = lambda: flex(q, k, v, block_mask=bm, enable_gqa=True)
        run()
        refs["flex"] = cuda_time(run, 20)
        flex_err = rel_l2(out.float(), run().float())
    except Exception as e:  # noqa: BLE001
        print(f"  (flex: {type(e).__name__}: {str(e)[:200]})")
    vs = "  ".join(f"ours/{r} {ms / t:.2f}x" for r, t in refs.items())
    print(f"window {name} N={n} sinks={sinks} window={window}: ours {ms:.3f} ms "
          f"({flops / ms / 1e9:.0f} TFLOP/s)  " +
          "  ".join(f"{r} {t:.3f} ms" for r, t in refs.items()) + f"  {vs}"
          f"  rel L2 vs flex {flex_err:.2e}", flush=True)
    rows.append({"case": name, "n": n, "sinks": sinks, "window": window, "ours_ms": ms,
                 "tflops": flops / ms / 1e9, "references_ms": refs, "rel_l2_vs_flex": flex_err})


def bench_select(drv, name, nq, nk, rows):
    """Sparse attention over a selection: `nq` queries (one chunk or more)
    at context `nk`, the selection drawn as attn.select would write it
    (every slot used), beside dense SDPA flash and cuDNN on the same
    queries; with the float64 check of the same call on the first 2 heads.
    The selection itself is not timed here (its device kernel is the next
    part of stage 2)."""
    case = load_case(name)
    L = case["launch"]
    fn = drv.load(case["ptx"], L["function"], L["shared_bytes"])
    b, hq, hkv, d, dt = case["batch"], case["hq"], case["hkv"], case["d"], DT[case["dtype"]]
    q = torch.randn(b, hq, nq, d, device="cuda", dtype=dt)
    k = torch.randn(b, hkv, nk, d, device="cuda", dtype=dt)
    v = torch.randn(b, hkv, nk, d, device="cuda", dtype=dt)
    idx = select_indices(case, nq, nk, torch.Generator().manual_seed(7))
    out = torch.empty_like(q)
    grid = (math.ceil(nq / L["rows_per_block"]), hq, b)
    ts = [q, k, v, idx, out] + ([torch.empty(b, hq, nq, device="cuda")] if case["lse"] else [])
    ms = cuda_time(lambda: drv.launch(fn, grid, L["threads"], L["shared_bytes"], ts, [nq, nk]), 50)
    # Keys per row: sinks + slots + the local window up to the row.
    keys = case["sinks"] + case["slots"] + case["window"] + (nq - 1) / 2
    flops = 4 * b * hq * nq * keys * d
    from torch.nn.attention.bias import causal_lower_right
    refs = {}
    # Dense over the same queries: lower-right causal where the backend
    # takes that mask, else over all Nk keys (Nq / Nk more work: marked).
    for rname, be in (("dense flash", SDPBackend.FLASH_ATTENTION), ("dense cudnn", SDPBackend.CUDNN_ATTENTION)):
        for label, kw in (("", {"attn_mask": causal_lower_right(nq, nk)}), (" (no mask)", {})):
            try:
                def call():
                    with sdpa_kernel([be]):
                        return F.scaled_dot_product_attention(q, k, v, enable_gqa=True, **kw)
                call()
                refs[rname + label] = cuda_time(call, 20)
                break
            except Exception as e:  # noqa: BLE001
                print(f"  ({rname}{label}: {type(e).__name__}: {str(e)[:120]})")
    # Fidelity of this very call: heads of the first KV head against float64.
    hsub = hq // hkv
    sub = dict(case, hq=hsub, hkv=1)
    ref, _ = reference_select(q[:, :hsub], k[:, :1], v[:, :1], case["scale"], sub, idx[:, :1])
    err = rel_l2(out[:, :hsub], ref)
    bound = 2 ** -8 if case["dtype"] == "bf16" else 2 ** -11
    vs = "  ".join(f"{r}/ours {t / ms:.2f}x" for r, t in refs.items())
    print(f"select {name} {nq} q @ {nk}: ours {ms:.3f} ms ({flops / ms / 1e9:.0f} TFLOP/s over "
          f"{keys:.0f} keys/row)  " + "  ".join(f"{r} {t:.3f} ms" for r, t in refs.items()) +
          f"  {vs}  rel L2 vs float64 {err:.2e} (bound {bound:.1e})", flush=True)
    rows.append({"case": name, "nq": nq, "nk": nk, "ours_ms": ms, "tflops": flops / ms / 1e9,
                 "references_ms": refs, "rel_l2_f64": err, "bound": bound, "pass": err <= bound})
    return err <= bound


def run_bench(name, n, work, rows):
    """The user's path: deltaflow-run --repeat on .npy files (the kernel
    time is from --profile; the run time includes the host side)."""
    case = load_case(name)
    b, hq, hkv, d, dt = case["batch"], case["hq"], case["hkv"], case["d"], DT[case["dtype"]]
    for nm, h in (("q", hq), ("k", hkv), ("v", hkv)):
        t = torch.randn(b, h, n, d, dtype=dt)
        np.save(os.path.join(work, nm + ".npy"),
                t.numpy() if dt == torch.float16 else t.float().numpy())
    cmd = [os.path.join(HERE, "out", "deltaflow-run"), os.path.join(TC, name + ".so"),
           "--input", f"q={work}/q.npy", "--input", f"k={work}/k.npy", "--input", f"v={work}/v.npy",
           "--output", f"out={work}/out.npy", "--repeat", "5", "--profile"]
    print("$ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    print(r.stdout + r.stderr)
    m = re.search(r"min ([0-9.]+) ms", r.stdout)
    k = re.search(r"kernel .*tensor cores.* ([0-9.]+) ms", r.stdout)
    flops = 4 * b * hq * n * n * d / (2 if case["causal"] else 1)
    if m and k:
        kms = float(k.group(1))
        print(f"deltaflow-run {name} N={n}: run min {float(m.group(1)):.3f} ms, kernel {kms:.3f} ms "
              f"({flops / kms / 1e9:.1f} TFLOP/s)")
        rows.append({"case": name, "n": n, "run_min_ms": float(m.group(1)), "kernel_ms": kms,
                     "tflops": flops / kms / 1e9, "command": " ".join(cmd)})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.environ.get("OUT", "/tmp"))
    p.add_argument("--via", default="direct", help="direct,run")
    p.add_argument("--cases", default="all")
    p.add_argument("--bench", default="4096,16384,32768", help="causal prefill lengths ('' for none)")
    p.add_argument("--bench-case", default="bf16-gqa4-d128-causal,sweep-a64,sweep-w4-k64,sweep-w4-k32,sweep-w8-k32")
    p.add_argument("--bench-d256", default="bf16-gqa8-d256-causal,sweep-w4-k64-d256",
                   help="a second sweep (head dim 256) at the last --bench length")
    p.add_argument("--run-bench", default="32768", help="deltaflow-run lengths ('' for none)")
    p.add_argument("--window-bench", default="32768", help="window + sinks lengths ('' for none)")
    p.add_argument("--window-case", default="bf16-gqa4-d128-window-2048")
    p.add_argument("--select-bench", default="512@131072,4096@131072",
                   help="NQ@NK of sparse attention over a selection ('' for none)")
    p.add_argument("--select-case", default="bf16-gqa4-d128-select")
    p.add_argument("--nonfinite", default="bf16-gqa4-d128-causal,f16-gqa4-d128-causal-lse,bf16-gqa4-d128-window,f16-gqa2-d64-window-lse",
                   help="cases checked with +-inf / NaN keys ('' for none)")
    a = p.parse_args()
    print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}", flush=True)
    with open(os.path.join(TC, "cases.json")) as f:
        names = list(json.load(f)) if a.cases == "all" else a.cases.split(",")
    work = "/tmp/deltaflow-tc"
    os.makedirs(work, exist_ok=True)
    drv = Driver()
    rows, ok = {"check": [], "bench": []}, True
    for via in [x for x in a.via.split(",") if x]:
        ok &= check(drv, names, via, work, rows["check"])
    rows["nonfinite"] = []
    if a.nonfinite:
        ok &= check_nonfinite(drv, a.nonfinite.split(","), rows["nonfinite"])
    if a.bench:
        lengths = [int(x) for x in a.bench.split(",")]
        bench(drv, a.bench_case.split(","), lengths, rows["bench"])
        if a.bench_d256:
            bench(drv, a.bench_d256.split(","), lengths[-1:], rows["bench"])
    rows["window"] = []
    for n in [int(x) for x in a.window_bench.split(",") if x]:
        bench_window(drv, a.window_case, n, rows["window"])
    rows["select"] = []
    for spec in [x for x in a.select_bench.split(",") if x]:
        nq, nk = (int(x) for x in spec.split("@"))
        ok &= bench_select(drv, a.select_case, nq, nk, rows["select"])
    rows["run"] = []
    for n in [int(x) for x in a.run_bench.split(",") if x]:
        run_bench(a.bench_case.split(",")[0], n, work, rows["run"])
    with open(os.path.join(a.out, "tensorcore.json"), "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, **rows}, f, indent=1)
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
