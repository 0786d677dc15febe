#!/usr/bin/env python3
"""Tile sweep on the device: runs several CUDA modules of the same graph
(built with different tiles, e.g. deltaflow-compile --target=cuda
--tile decode.key-chunk=256) on one shape
and prints time, bandwidth or FLOP rate, and the error against PyTorch.

  python3 bench/gpu/tune.py --modules dec128,dec256 --nq 1 --nk 131072
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import gpu_bench as gb  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--modules", required=True)
    p.add_argument("--nq", type=int, default=1)
    p.add_argument("--nk", type=int, default=131072)
    p.add_argument("--reps", type=int, default=10)
    a = p.parse_args()
    work = "/tmp/deltaflow-tune"
    os.makedirs(work, exist_ok=True)
    gen = torch.Generator(device="cuda").manual_seed(1)
    q = torch.randn(1, gb.HQ, a.nq, gb.D, device="cuda", generator=gen)
    k = torch.randn(1, gb.HKV, a.nk, gb.D, device="cuda", generator=gen)
    v = torch.randn(1, gb.HKV, a.nk, gb.D, device="cuda", generator=gen)
    refs, ref = gb.references(q, k, v, (gb.FLASH, gb.MEMEFF), True, a.reps)
    print(f"Nq={a.nq} Nk={a.nk}: " + ", ".join(f"{n} {t:.3f} ms" for n, t in refs))
    ref16 = None
    for m in a.modules.split(","):
        half = "f16" in m.lower()
        try:
            ms, out, prof = gb.ours(m, q, k, v, work, reps=a.reps, kv_half=half)
        except Exception as e:
            print(f"{m:12s} FAILED: {str(e)[:300]}")
            continue
        if half and ref16 is None:  # the reference on the f16-rounded K/V
            ref16 = gb.references(q, k.half().float(), v.half().float(),
                                  (gb.MEMEFF,), True, 1)[1]
        if a.nq == 1:
            rate = f"{2 * gb.HKV * a.nk * gb.D * (2 if half else 4) / ms / 1e9:.3f} TB/s"
        else:
            fl = 4 * gb.HQ * a.nq * a.nk * gb.D / (2 if a.nq == a.nk else 1)
            rate = f"{fl / ms / 1e9:.2f} TFLOP/s"
        print(f"{m:12s} {ms:9.3f} ms  {rate}  err {gb.rel_l2(out, ref16 if half else ref):.1e}")
        print("   " + " | ".join(l.strip() for l in prof.splitlines() if "kernel" in l))


if __name__ == "__main__":
    main()
