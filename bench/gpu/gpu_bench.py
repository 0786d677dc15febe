#!/usr/bin/env python3
"""deltaflow's CUDA kernels beside PyTorch SDPA and FlexAttention (device side).

Runs the CUDA modules of bench/gpu/out (built by bench/gpu/build.sh) through
deltaflow-run on the same inputs as PyTorch, checks our outputs against
PyTorch's, and prints one table: time, TFLOP/s or TB/s, fraction of the H100
limits (67 TFLOP/s fp32 SIMT, 3.35 TB/s HBM), and our time over each
reference's. Hq=32, Hkv=8, D=128; ours is fp32, the references run bf16
(flash, cuDNN, Flex) and fp32 (memory-efficient).
"""
import argparse
import json
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
from common import cuda_time as common_time, rel_l2  # noqa: E402

HQ, HKV, D = 32, 8, 128
PEAK_TFLOPS, PEAK_TBS = 67.0, 3.35
OUT_DIR = os.path.join(os.path.dirname(__file__), "out")


def cuda_time(fn, reps=5):
    return common_time(fn, reps, stat="min")


def ours(module, q, k, v, work, reps=5, timeout=400, kv_half=False, extra=()):
    """Runs deltaflow-run on .npy copies of q/k/v (k/v as float16 for a module
    with f16 K/V storage); returns (ms, output, profile text)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        t = t.half() if kv_half and name != "q" else t.float()
        np.save(os.path.join(work, name + ".npy"), t.cpu().numpy())
    cmd = [os.path.join(OUT_DIR, "deltaflow-run"), os.path.join(OUT_DIR, module + ".so"),
           "--input", f"q={work}/q.npy", "--input", f"k={work}/k.npy",
           "--input", f"v={work}/v.npy", "--output", f"out={work}/out.npy",
           "--repeat", str(reps), "--profile", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip() or r.stdout.strip())
    ms = float(re.search(r"min ([0-9.]+) ms", r.stdout).group(1))
    return ms, torch.from_numpy(np.load(f"{work}/out.npy")).cuda(), r.stdout


def sdpa(q, k, v, backend, dtype, causal_lower_right):
    """A closure running SDPA on one backend. Grouped K/V heads go in as they
    are (enable_gqa) where the backend takes them, else repeated to Hq heads
    (4x the K/V bytes: a weaker baseline, marked 'rep' in the table)."""
    from torch.nn.attention.bias import causal_lower_right as clr
    qq, kk, vv = (t.to(dtype) for t in (q, k, v))
    mask = clr(q.shape[2], k.shape[2]) if causal_lower_right else None

    def call(kx, vx, **kw):
        with sdpa_kernel([backend]):
            if mask is None:
                return F.scaled_dot_product_attention(qq, kx, vx, is_causal=True, **kw)
            return F.scaled_dot_product_attention(qq, kx, vx, attn_mask=mask, **kw)
    try:
        call(kk, vv, enable_gqa=True)
        run = lambda: call(kk, vv, enable_gqa=True)
        run.gqa = True
    except Exception:
        kr = kk.repeat_interleave(HQ // HKV, dim=1)
        vr = vv.repeat_interleave(HQ // HKV, dim=1)
        run = lambda: call(kr, vr)
        run.gqa = False
    return run


FLASH = ("flash-bf16", SDPBackend.FLASH_ATTENTION, torch.bfloat16)
CUDNN = ("cudnn-bf16", SDPBackend.CUDNN_ATTENTION, torch.bfloat16)
MEMEFF = ("memeff-fp32", SDPBackend.EFFICIENT_ATTENTION, torch.float32)


def references(q, k, v, backends, lower_right, reps):
    """Times each SDPA backend; returns ([(name, ms)], the fp32 output)."""
    refs, ref_out = [], None
    for name, be, dt in backends:
        try:
            fn = sdpa(q, k, v, be, dt, lower_right)
            refs.append((name + ("" if fn.gqa else " rep"), cuda_time(fn, reps)))
            if dt == torch.float32:
                ref_out = fn()
        except Exception as e:  # a backend may not support the shape
            print(f"  ({name}: {type(e).__name__}: {str(e)[:80]})")
    return refs, ref_out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="/tmp")
    p.add_argument("--prefill", default="4096,16384,32768")
    p.add_argument("--decode", default="32768,131072")
    p.add_argument("--sparse", default="32768,131072")
    p.add_argument("--budget-s", type=float, default=520, help="stop starting cases after this")
    a = p.parse_args()
    t0 = time.time()
    work = "/tmp/deltaflow-gpu"
    os.makedirs(work, exist_ok=True)
    dev = torch.cuda.get_device_name()
    print(f"device: {dev}; torch {torch.__version__}", flush=True)
    rows = []

    def report(case, ms, rate, unit, frac, refs, err):
        refs_s = "  ".join(f"{n} {t:.3f} ms ({ms / t:.2f}x)" for n, t in refs if t)
        print(f"{case:34s} ours {ms:9.3f} ms  {rate:7.2f} {unit} ({100 * frac:5.1f}% of limit)"
              f"  err {err:.1e}  | {refs_s}", flush=True)
        rows.append({"case": case, "ours_ms": ms, "rate": rate, "unit": unit,
                     "fraction_of_limit": frac, "rel_err_vs_torch": err,
                     "references_ms": {n: t for n, t in refs}})

    gen = torch.Generator(device="cuda").manual_seed(0)
    rnd = lambda *s: torch.randn(*s, device="cuda", generator=gen)

    # Prefill, dense, causal (Nq = Nk = N).
    for n in [int(x) for x in a.prefill.split(",") if x]:
        if time.time() - t0 > a.budget_s:
            break
        q, k, v = rnd(1, HQ, n, D), rnd(1, HKV, n, D), rnd(1, HKV, n, D)
        ms, out, _ = ours("dense", q, k, v, work, reps=3 if n > 8192 else 5)
        refs, ref_out = references(q, k, v, (FLASH, CUDNN, MEMEFF), False, 5)
        flops = 4 * HQ * n * n * D / 2
        report(f"prefill causal N={n}", ms, flops / ms / 1e9, "TFLOP/s",
               flops / ms / 1e9 / PEAK_TFLOPS, refs,
               rel_l2(out, ref_out) if ref_out is not None else float("nan"))

    # Decode: one query at the end of an L-token context.
    for n in [int(x) for x in a.decode.split(",") if x]:
        if time.time() - t0 > a.budget_s:
            break
        q, k, v = rnd(1, HQ, 1, D), rnd(1, HKV, n, D), rnd(1, HKV, n, D)
        ms, out, _ = ours("dense", q, k, v, work, reps=10)
        refs, ref_out = references(q, k, v, (FLASH, MEMEFF), True, 10)
        tb = 2 * HKV * n * D * 4 / ms / 1e9
        report(f"decode L={n}", ms, tb, "TB/s", tb / PEAK_TBS, refs,
               rel_l2(out, ref_out) if ref_out is not None else float("nan"))
        if os.path.exists(os.path.join(OUT_DIR, "dense-f16.so")):
            # K/V stored as f16 (half the bytes); the reference is fp32 SDPA
            # on the same f16-rounded K/V.
            ms, out, _ = ours("dense-f16", q, k, v, work, reps=10, kv_half=True)
            ref16 = sdpa(q, k.half().float(), v.half().float(),
                         SDPBackend.EFFICIENT_ATTENTION, torch.float32, True)()
            tb = 2 * HKV * n * D * 2 / ms / 1e9
            report(f"decode L={n} f16 K/V", ms, tb, "TB/s", tb / PEAK_TBS, refs,
                   rel_l2(out, ref16))

    # Sparse: token-select on the last 512 queries of an N context vs dense
    # bf16 flash on the same shape; window + sinks over a whole prefill of
    # 32K vs FlexAttention with the same mask.
    for n in [int(x) for x in a.sparse.split(",") if x]:
        if time.time() - t0 > a.budget_s:
            break
        q, k, v = rnd(1, HQ, 512, D), rnd(1, HKV, n, D), rnd(1, HKV, n, D)
        tmp = os.path.join(work, "ts-temporaries")
        ms, out, prof = ours("token-select", q, k, v, work, reps=5,
                             extra=("--temporaries", tmp))
        fn = sdpa(q, k, v, SDPBackend.FLASH_ATTENTION, torch.bfloat16, True)
        flash = cuda_time(fn)
        dense = sdpa(q, k, v, SDPBackend.EFFICIENT_ATTENTION, torch.float32, True)()
        keys = 128 + 2048 + 512 + 256
        flops = 4 * HQ * 512 * keys * D
        refs = [("flash-bf16 dense" + ("" if fn.gqa else " rep"), flash)]
        # FlexAttention with the same pattern: our selected indices (one
        # chunk of 512 queries), the sinks and the local window, causal.
        flex_err = float("nan")
        try:
            from torch.nn.attention.flex_attention import flex_attention, create_block_mask
            idx = torch.from_numpy(np.load(os.path.join(tmp, "attention_k0_r0.npy"))).cuda()
            sel = torch.zeros(n, dtype=torch.bool, device="cuda")
            sel[idx[idx >= 0].long()] = True
            off = n - 512

            def ts_mask(b, h, qi, ki):
                return (ki <= qi + off) & ((ki < 128) | sel[ki] | (ki >= off - 512))
            bm = create_block_mask(ts_mask, None, None, 512, n)
            flex = torch.compile(flex_attention)
            qb, kb, vb = (t.to(torch.bfloat16) for t in (q, k, v))
            tf = cuda_time(lambda: flex(qb, kb, vb, block_mask=bm, enable_gqa=True))
            refs.append(("flex-bf16 same pattern", tf))
            flex_err = rel_l2(out, flex(q, k, v, block_mask=bm, enable_gqa=True))
            print(f"   flex block mask: {bm.sparsity():.1f}% of 128x128 blocks skipped")
        except Exception as e:
            print(f"   token-select vs FlexAttention failed: {type(e).__name__}: {str(e)[:200]}")
        report(f"token-select 512 q @ N={n}", ms, flops / ms / 1e9, "TFLOP/s",
               flops / ms / 1e9 / PEAK_TFLOPS, refs, flex_err)
        print(f"   sparse output vs dense fp32: rel L2 {rel_l2(out, dense):.2f} (random inputs)")
        print("   " + " | ".join(l.strip() for l in prof.splitlines() if "kernel" in l))
    if time.time() - t0 < a.budget_s:
        try:
            from torch.nn.attention.flex_attention import flex_attention, create_block_mask
            n = 32768
            q, k, v = rnd(1, HQ, n, D), rnd(1, HKV, n, D), rnd(1, HKV, n, D)
            ms, out, _ = ours("window", q, k, v, work, reps=3)

            def mask(b, h, qi, ki):  # window + sinks, per query (docs/design.md)
                return (ki <= qi) & ((ki < 128) | (qi - ki <= 2048))
            bm = create_block_mask(mask, None, None, n, n)
            flex = torch.compile(flex_attention)
            qb, kb, vb = (t.to(torch.bfloat16) for t in (q, k, v))
            run = lambda: flex(qb, kb, vb, block_mask=bm, enable_gqa=True)
            tf = cuda_time(run)
            ref = flex(q, k, v, block_mask=bm, enable_gqa=True)
            keys = 128 + 2048
            flops = 4 * HQ * n * keys * D
            report(f"window+sinks prefill N={n}", ms, flops / ms / 1e9, "TFLOP/s",
                   flops / ms / 1e9 / PEAK_TFLOPS, [("flex-bf16", tf)], rel_l2(out, ref))
        except Exception as e:
            print(f"window+sinks vs FlexAttention failed: {type(e).__name__}: {e}")
    with open(os.path.join(a.out, "gpu.json"), "w") as f:
        json.dump({"device": dev, "torch": torch.__version__, "results": rows}, f, indent=2)
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
