#!/usr/bin/env python3
"""Inputs and a float64 reference for Inputs/tosa_attention.mlir.

  raise_check.py gen DIR        writes DIR/{q,k,v}.npy, float32 [4, 16, 8]
  raise_check.py check DIR OUT [SINKS WINDOW]
      compares OUT with float64 causal attention; with SINKS and WINDOW, with
      window + sinks attention in docs/design.md's convention: row i sees key j
      iff j <= i and (j < SINKS or i - j <= WINDOW)
"""
import os
import sys

import numpy as np

BH, N, D = 4, 16, 8

if sys.argv[1] == "gen":
    rng = np.random.default_rng(5)
    os.makedirs(sys.argv[2], exist_ok=True)
    for name in "qkv":
        np.save(os.path.join(sys.argv[2], name + ".npy"),
                rng.standard_normal((BH, N, D), dtype=np.float32))
else:
    q, k, v = (np.load(os.path.join(sys.argv[2], n + ".npy")).astype(np.float64)
               for n in "qkv")
    out = np.load(sys.argv[3])
    assert out.shape == (BH, N, D), out.shape
    s = q @ k.transpose(0, 2, 1) / np.sqrt(D)
    i, j = np.indices((N, N))
    hidden = j > i
    if len(sys.argv) > 5:
        sinks, window = int(sys.argv[4]), int(sys.argv[5])
        hidden |= (j >= sinks) & (i - j > window)
    s[:, hidden] = -np.inf
    p = np.exp(s - s.max(axis=2, keepdims=True))
    ref = (p @ v) / p.sum(axis=2, keepdims=True)
    err = np.abs(out - ref).max()
    print(f"max abs error {err:.3g}")
    print("PASS" if err < 1e-5 else "FAIL")
