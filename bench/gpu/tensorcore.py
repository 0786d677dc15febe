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
    kernels = man["entries"][0]["kernels"]
    k = kernels[-1]  # the attention (after a selection)
    var = k["variants"][0]
    case["launch"] = var["ptx"]
    case["scale"] = k["params"].get("scale")
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
        if case.get("token_select") and via == "direct":
            continue  # two kernels: checked through deltaflow-run
        L = case["launch"]
        fn = drv.load(case["ptx"], L["function"], L["shared_bytes"]) if via == "direct" else None
        dt = DT[case["dtype"]]
        lengths = LENGTHS + (SELECT_LENGTHS if case.get("select") or case.get("token_select") else [])
        for li, (nq, nk) in enumerate(lengths):
            b, hq, hkv, d = case["batch"], case["hq"], case["hkv"], case["d"]
            q = torch.randn(b, hq, nq, d, device="cuda", generator=gen).to(dt)
            k = torch.randn(b, hkv, nk, d, device="cuda", generator=gen).to(dt)
            v = torch.randn(b, hkv, nk, d, device="cuda", generator=gen).to(dt)
            idx = None
            if case.get("token_select"):
                # The float64 top-k of the float64 votes, as attn.select
                # would write it; the module selects on the device.
                votes = reference_votes(q, k, case)
                nc, budget = votes.shape[1], case["budget"]
                idx = torch.full((b, 1, nc, budget), -1, dtype=torch.int32, device="cuda")
                for bi in range(b):
                    for c in range(nc):
                        vt = votes[bi, c]
                        ncand = int((vt >= 0).sum())
                        want = min(budget, ncand)
                        if want:
                            top = torch.topk(vt.masked_fill(vt < 0, -1.0), want).indices.sort().values
                            idx[bi, 0, c, :want] = top.int()
                sub = dict(case, slots=budget, per_kv=False)
                ref, ref_lse = reference_select(q, k, v, case["scale"], sub, idx)
                idx = None  # the module computes its own
            elif case.get("select"):
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


def random_qkv(case, nq, nk):
    """Fresh normal q [B, Hq, Nq, D], k and v [B, Hkv, Nk, D] of the case's
    type on the device."""
    b, hq, hkv, d, dt = case["batch"], case["hq"], case["hkv"], case["d"], DT[case["dtype"]]
    return (torch.randn(b, hq, nq, d, device="cuda", dtype=dt),
            torch.randn(b, hkv, nk, d, device="cuda", dtype=dt),
            torch.randn(b, hkv, nk, d, device="cuda", dtype=dt))


def bench_select(drv, name, nq, nk, rows):
    """Sparse attention over a selection: `nq` queries (one chunk or more)
    at context `nk`, the selection drawn as attn.select would write it
    (every slot used), beside dense SDPA flash and cuDNN on the same
    queries; with the float64 check of the same call on the first 2 heads.
    The selection itself is not timed here (its device kernel is the next
    part of stage 2: bench_token_select)."""
    case = load_case(name)
    L = case["launch"]
    fn = drv.load(case["ptx"], L["function"], L["shared_bytes"])
    b, hq, hkv, d = case["batch"], case["hq"], case["hkv"], case["d"]
    q, k, v = random_qkv(case, nq, nk)
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


class DeviceSelect:
    """The five kernels of a device selection ("token-select-v1" ABI,
    compiler/include/deltaflow/Compiler/TensorCore.h), with scratch buffers
    from PyTorch."""

    def __init__(self, drv, case):
        self.drv, self.case = drv, case
        p = case["launch"]["function"]
        hq, d = case["hq"], case["d"]
        self.shared = {"qbar": 4096, "stats": hq * d * 4, "merge": 64,
                       "vote": hq * (d + 2) * 4, "topk": 1160 + 32 * 1024}
        self.fns = {n: drv.load(case["ptx"], f"{p}_{n}", sh) for n, sh in self.shared.items()}

    def __call__(self, q, k, idx=None):
        b, hq, nq, d = q.shape
        nk = k.shape[2]
        c = -(-nq // self.case["chunk"])
        nb = -(-nk // 256)
        f32 = dict(device="cuda", dtype=torch.float32)
        scratch = [torch.empty(b * c * hq * d, **f32), torch.empty(b * c * nb * 8 * hq * 2, **f32),
                   torch.empty(b * c * hq * 2, **f32), torch.empty(b * c * nk, **f32)]
        if idx is None:
            idx = torch.full((b, 1, c, self.case["budget"]), -7, dtype=torch.int32, device="cuda")
        ts = [q, k] + scratch + [idx]
        grids = {"qbar": ((c, hq, b), 1024), "stats": ((nb, c, b), 256), "merge": ((hq, c, b), 256),
                 "vote": ((nb, c, b), 256), "topk": ((c, b, 1), 1024)}
        self.last = (grids, ts, [nq, nk])
        for n, (grid, threads) in grids.items():
            self.drv.launch(self.fns[n], grid, threads, self.shared[n], ts, [nq, nk])
        return idx

    def time_each(self):
        """ms of each kernel of the last call, relaunched alone (20 launches
        in a CUDA graph, so that the Python launch path is not timed)."""
        grids, ts, sc = self.last
        return {n: graph_time(lambda: self.drv.launch(self.fns[n], g, t, self.shared[n], ts, sc))
                for n, (g, t) in grids.items()}


def graph_time(fn, per_graph=20, reps=20):
    """ms per call of `fn` (CUDA launches on the current stream), captured
    `per_graph` times into one CUDA graph and replayed: GPU time without
    the host's launch overhead."""
    fn()
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(per_graph):
            fn()
    g.replay()
    torch.cuda.synchronize()
    return cuda_time(g.replay, reps) / per_graph


def reference_votes(q, k, case):
    """float64 TokenSelect votes per (batch, chunk) over all keys (-1 outside
    the candidates): q̄_h the chunk mean, s_h(j) = q̄_h . k_{h/G}(j), S(j) =
    sum_h softmax_j(s_h(j) / sqrt(D)) over the candidates."""
    b, hq, nq, d = q.shape
    hkv, nk = k.shape[1], k.shape[2]
    chunk, sinks, window = case["chunk"], case["sinks"], case["window"]
    off = nk - nq if case.get("offset") is None else case["offset"]
    kd = k.double().repeat_interleave(hq // hkv, 1)
    out = []
    for c in range(-(-nq // chunk)):
        qbar = q[:, :, c * chunk:(c + 1) * chunk].double().mean(2)  # [b, hq, d]
        end = max(min(off + c * chunk - window, nk), sinks)
        votes = torch.full((b, nk), -1.0, dtype=torch.float64, device=q.device)
        if end > sinks:
            s = torch.einsum("bhd,bhjd->bhj", qbar, kd[:, :, sinks:end]) / math.sqrt(d)
            votes[:, sinks:end] = torch.softmax(s, -1).sum(1)
        out.append(votes)
    return torch.stack(out, 1)  # [b, C, nk]


def check_device_select(drv, names, rows):
    """The device selection against float64 votes: every chunk's indices
    ascending, unique, among the candidates, min(budget, candidates) of
    them, then -1; and the set a top-k of the float64 votes up to the vote's
    rounding (a selected key's vote >= an unselected one's - 1e-5 of the
    largest vote). Outputs are poisoned (-7) first."""
    ok = True
    gen = torch.Generator(device="cuda").manual_seed(4321)
    for name in names:
        case = load_case(name)
        sel = DeviceSelect(drv, case)
        dt = DT[case["dtype"]]
        lengths = [(1, 1), (1, 1000), (37, 300), (129, 1100), (1000, 4097), (700, 9001),
                   (512, 16384)] + ([(512, 131072)] if case["budget"] >= 2048 else [])
        for nq, nk in lengths:
            b, hq, hkv, d = case["batch"], case["hq"], case["hkv"], case["d"]
            q = torch.randn(b, hq, nq, d, device="cuda", generator=gen).to(dt)
            k = torch.randn(b, hkv, nk, d, device="cuda", generator=gen).to(dt)
            idx = sel(q, k)
            torch.cuda.synchronize()
            votes = reference_votes(q, k, case)
            bad, swaps, worst = 0, 0, 0.0
            for bi in range(b):
                for c in range(idx.shape[2]):
                    row = idx[bi, 0, c].long()
                    v = votes[bi, c]
                    cand = (v >= 0).nonzero().flatten()
                    want = min(case["budget"], cand.numel())
                    got = row[:want]
                    if (row[want:] != -1).any() or (got < 0).any() or \
                            (want > 1 and (got[1:] <= got[:-1]).any()) or \
                            (want and (v[got.clamp(min=0)] < 0).any()):
                        bad += 1
                        continue
                    if want == 0 or want == cand.numel():
                        continue
                    mask = torch.zeros_like(v, dtype=torch.bool)
                    mask[got] = True
                    unsel = v.masked_fill(mask | (v < 0), -1.0)
                    gap = (unsel.max() - v[got].min()).item() / v.max().item()
                    worst = max(worst, gap)
                    exact = torch.topk(v.masked_fill(v < 0, -1.0), want).indices
                    swaps += want - int(mask[exact].sum())
            good = bad == 0 and worst <= 1e-5
            ok &= good
            print(f"{'ok ' if good else 'BAD'} select {name:26s} Nq={nq:5d} Nk={nk:6d}  malformed chunks {bad}"
                  f"  keys differing from the float64 top-k {swaps} (worst vote gap {worst:.1e} of the max)",
                  flush=True)
            rows.append({"case": name, "nq": nq, "nk": nk, "malformed": bad, "swaps": swaps,
                         "worst_gap": worst, "pass": good})
    return ok


def bench_token_select(drv, sel_name, attn_name, nq, nk, rows):
    """Token-select end to end on the device: the selection kernels, then
    sparse attention over their indices, against dense SDPA flash on the
    same queries (lower-right causal), in the same run."""
    scase, acase = load_case(sel_name), load_case(attn_name)
    sel = DeviceSelect(drv, scase)
    L = acase["launch"]
    fn = drv.load(acase["ptx"], L["function"], L["shared_bytes"])
    b, hq = acase["batch"], acase["hq"]
    q, k, v = random_qkv(acase, nq, nk)
    idx = sel(q, k)
    out = torch.empty_like(q)
    grid = (math.ceil(nq / L["rows_per_block"]), hq, b)
    ts = [q, k, v, idx, out]
    attend = lambda: drv.launch(fn, grid, L["threads"], L["shared_bytes"], ts, [nq, nk])
    t_sel = graph_time(lambda: sel(q, k, idx))
    each = sel.time_each()
    print("  selection kernels: " + "  ".join(f"{n} {t:.3f} ms" for n, t in each.items()), flush=True)
    t_att = graph_time(attend)
    t_all = graph_time(lambda: (sel(q, k, idx), attend()))
    from torch.nn.attention.bias import causal_lower_right
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        try:
            dense = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(nq, nk),
                                                           enable_gqa=True)
            dense()
            label = "dense flash"
        except Exception:  # noqa: BLE001
            dense = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
            label = "dense flash (no mask)"
        t_dense = cuda_time(dense, 20)
        ref = dense().float()
    agree = rel_l2(out.float(), ref)
    print(f"token-select {nq} q @ {nk}: selection {t_sel:.3f} ms + sparse attention {t_att:.3f} ms "
          f"= {t_all:.3f} ms; {label} {t_dense:.3f} ms ({t_dense / t_all:.2f}x); "
          f"rel L2 of the sparse output vs dense {agree:.2e} (random inputs: not a fidelity figure)",
          flush=True)
    rows.append({"nq": nq, "nk": nk, "select_ms": t_sel, "select_kernels_ms": each,
                 "attention_ms": t_att, "total_ms": t_all,
                 "dense_ms": t_dense, "dense_label": label, "speedup": t_dense / t_all,
                 "rel_l2_vs_dense": agree})


def run_bench(name, n, work, rows, nq=None):
    """The user's path: deltaflow-run --repeat on .npy files (the kernel
    time is from --profile; the run time includes the host side). `nq`
    query rows (default n) at n keys."""
    case = load_case(name)
    b, hq, hkv, d, dt = case["batch"], case["hq"], case["hkv"], case["d"], DT[case["dtype"]]
    nq = n if nq is None else nq
    for nm, h in (("q", hq), ("k", hkv), ("v", hkv)):
        t = torch.randn(b, h, nq if nm == "q" else n, d, dtype=dt)
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
    if case.get("token_select"):
        if m:
            print(f"deltaflow-run {name} {nq} q @ {n}: run min {float(m.group(1)):.3f} ms")
            rows.append({"case": name, "nq": nq, "n": n, "run_min_ms": float(m.group(1)),
                         "profile": r.stdout, "command": " ".join(cmd)})
        return
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
    p.add_argument("--device-select", default="bf16-gqa4-d128-tsel,f16-gqa2-d64-tsel,bf16-gqa8-d256-tsel,bf16-gqa4-d128-tsel-offset",
                   help="device selection cases to check ('' for none)")
    p.add_argument("--run-token-select", default="512@131072",
                   help="NQ@NK of deltaflow-run on the token-select module ('' for none)")
    p.add_argument("--token-select-bench", default="512@131072,4096@131072",
                   help="NQ@NK of selection + sparse attention ('' for none)")
    p.add_argument("--nonfinite", default="bf16-gqa4-d128-causal,f16-gqa4-d128-causal-lse,bf16-gqa4-d128-window,f16-gqa2-d64-window-lse",
                   help="cases checked with +-inf / NaN keys ('' for none)")
    a = p.parse_args()
    print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}", flush=True)
    with open(os.path.join(TC, "cases.json")) as f:
        all_cases = json.load(f)
    names = ([n for n, c in all_cases.items() if not c.get("device_select")]
             if a.cases == "all" else a.cases.split(","))
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
    rows["device_select"] = []
    if a.device_select:
        ok &= check_device_select(drv, a.device_select.split(","), rows["device_select"])
    rows["token_select"] = []
    for spec in [x for x in a.token_select_bench.split(",") if x]:
        nq, nk = (int(x) for x in spec.split("@"))
        bench_token_select(drv, "bf16-gqa4-d128-tsel", a.select_case, nq, nk, rows["token_select"])
    rows["run"] = []
    for n in [int(x) for x in a.run_bench.split(",") if x]:
        run_bench(a.bench_case.split(",")[0], n, work, rows["run"])
    for spec in [x for x in a.run_token_select.split(",") if x]:
        nq, nk = (int(x) for x in spec.split("@"))
        run_bench("bf16-gqa4-d128-ts", nk, work, rows["run"], nq=nq)
    with open(os.path.join(a.out, "tensorcore.json"), "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, **rows}, f, indent=1)
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
