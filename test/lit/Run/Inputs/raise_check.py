#!/usr/bin/env python3
"""Inputs, variants and float64 references for Inputs/tosa_attention.mlir.

  raise_check.py gen DIR [--qk-gain G]
      writes DIR/{q,k,v}.npy, float32 [4, 16, 8] (q and k times G)
  raise_check.py mlir OUT.mlir --mask M --scale S
      writes tosa_attention.mlir with the causal mask's hidden entries set to
      M and the score multiplier set to S (MLIR float literals: 0xFF800000 is
      -inf, 0xFF7FFFFF float32's lowest, 0x7FC00000 NaN)
  raise_check.py check DIR OUT [--sinks S --window W]
                               [--graph-mask=M --graph-scale=S]
      compares OUT with float64 causal attention; with --sinks/--window,
      with window + sinks attention in docs/design.md's convention (row i
      sees key j iff j <= i and (j < S or i - j <= W)). With --graph-*, with
      the TOSA graph as written instead: scores times S plus a mask whose
      hidden entries are M, then the softmax ops one by one in IEEE float64
      arithmetic (NaN where the graph makes NaN). Prints the relative L2
      error and PASS or FAIL (bound 1e-5, or 1e-3 when |scores| > 1e3:
      float32 rounding of a score of 1e4 alone is 1e-3).
"""
import argparse
import os
import struct

import numpy as np

BH, N, D = 4, 16, 8
HERE = os.path.dirname(os.path.abspath(__file__))


def mlir_float(text):
    """An MLIR float literal (decimal or float32 hex bits) as a float."""
    if text.lower().startswith("0x"):
        return struct.unpack("<f", struct.pack("<I", int(text, 16)))[0]
    return float(text)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("dir")
    g.add_argument("--qk-gain", type=float, default=1.0)
    m = sub.add_parser("mlir")
    m.add_argument("out")
    m.add_argument("--mask", required=True)
    m.add_argument("--scale", required=True)
    c = sub.add_parser("check")
    c.add_argument("dir")
    c.add_argument("out")
    c.add_argument("--sinks", type=int)
    c.add_argument("--window", type=int)
    c.add_argument("--graph-mask", metavar="M")
    c.add_argument("--graph-scale", metavar="S")
    a = ap.parse_args()

    if a.cmd == "gen":
        rng = np.random.default_rng(5)
        os.makedirs(a.dir, exist_ok=True)
        for name in "qkv":
            x = rng.standard_normal((BH, N, D), dtype=np.float32)
            if name != "v":
                x = (x * np.float32(a.qk_gain)).astype(np.float32)
            np.save(os.path.join(a.dir, name + ".npy"), x)
        return

    if a.cmd == "mlir":
        text = open(os.path.join(HERE, "tosa_attention.mlir")).read()
        mask_lines = [l for l in text.splitlines() if "0xFF800000" in l]
        assert len(mask_lines) == 1 and text.count("dense<0.353553385>") == 1
        mask_line = mask_lines[0]
        text = text.replace(mask_line, mask_line.replace("0xFF800000", a.mask))
        text = text.replace("dense<0.353553385>", f"dense<{a.scale}>")
        with open(a.out, "w") as f:
            f.write(text)
        return

    q, k, v = (np.load(os.path.join(a.dir, n + ".npy")).astype(np.float64)
               for n in "qkv")
    out = np.load(a.out)
    assert out.shape == (BH, N, D), out.shape
    i, j = np.indices((N, N))
    hidden = j > i
    with np.errstate(all="ignore"):
        if a.graph_mask is not None:
            mask_value, scale = mlir_float(a.graph_mask), mlir_float(a.graph_scale)
            # As written: float32 constants, float64 arithmetic, IEEE.
            scale = float(np.float32(scale))
            mask = np.where(hidden, np.float64(np.float32(mask_value)), 0.0)
            s = (q @ k.transpose(0, 2, 1)) * scale + mask
            mx = s.max(axis=2, keepdims=True)  # propagates NaN, as TOSA
            e = np.exp(s - mx)
            ref = (e * (1.0 / e.sum(axis=2, keepdims=True))) @ v
        else:
            s = q @ k.transpose(0, 2, 1) / np.sqrt(D)
            if a.sinks is not None:
                hidden |= (j >= a.sinks) & (i - j > a.window)
            s[:, hidden] = -np.inf
            p = np.exp(s - s.max(axis=2, keepdims=True))
            ref = (p @ v) / p.sum(axis=2, keepdims=True)
    nan_ref, nan_out = np.isnan(ref), np.isnan(out)
    if not np.array_equal(nan_ref, nan_out):
        print(f"NaN mismatch: reference {nan_ref.sum()} NaN, output "
              f"{nan_out.sum()} NaN of {ref.size}")
        print("FAIL")
        return
    fin = ~nan_ref
    print(f"{nan_ref.sum()} of {ref.size} elements NaN in both")
    if fin.any():
        if not np.array_equal(np.isinf(ref[fin]), np.isinf(out[fin])):
            print("FAIL: infinities differ")
            return
        r, o = ref[fin], out[fin].astype(np.float64)
        rel = np.linalg.norm(o - r) / max(np.linalg.norm(r), 1e-300)
        big = np.abs(q @ k.transpose(0, 2, 1)).max() > 1e3
        bound = 1e-3 if big else 1e-5
        print(f"relative L2 error {rel:.3g} (bound {bound:g})")
        print("PASS" if rel <= bound else "FAIL")
    else:
        print("PASS")


if __name__ == "__main__":
    main()
