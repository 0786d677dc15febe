"""Inputs for tosa_ops.mlir and float64 checks of its outputs.

    tosa_ops_check.py gen DIR ROWS     writes the inputs (seeded, no zeros)
    tosa_ops_check.py check DIR ROWS   compares every output; prints PASS
"""
import sys

import numpy as np

mode, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(n)
shapes = {"x_el": (n, 37), "y_el": (1, 37), "x_sm": (3, n, 13), "a": (1, n, 40), "b": (1, 40, 64),
          "c": (1, 40, 50), "r": (1, n, 64), "x_lay": (2, n, 6)}
if mode == "gen":
    for k, s in shapes.items():
        np.save(f"{d}/{k}.npy", (rng.standard_normal(s) + 0.01).astype(np.float32))
    sys.exit(0)
I = {k: np.load(f"{d}/{k}.npy").astype(np.float64) for k in shapes}
x, y = I["x_el"], I["y_el"]
ax1 = np.abs(x) + 1
want = {
    "el": np.clip(ax1 ** (y * 0.5) * np.tanh(x) - np.exp(np.minimum(x, 0)) + 1 / np.maximum(np.abs(y), 0.5)
                  + np.log(ax1), -3, 3),
}
xs = I["x_sm"]
e = np.exp(xs - xs.max(2, keepdims=True))
want["sm"] = e / e.sum(2, keepdims=True)
want["colmax"] = xs.max(1, keepdims=True)
want["ab"] = (1 / (1 + np.exp(-I["a"]))) @ I["b"] + I["r"]
want["ac"] = I["a"] @ I["c"]
xl = I["x_lay"]
want["lay"] = np.concatenate([-xl[..., 3:], xl[..., :3]], 2).transpose(0, 2, 1)
bad = False
for k, w in want.items():
    got = np.load(f"{d}/out_{k}.npy").astype(np.float64)
    if got.shape != w.shape or not np.isfinite(got).all():
        print(f"FAIL {k}: shape {got.shape} vs {w.shape}, finite {np.isfinite(got).all()}")
        bad = True
        continue
    err = np.linalg.norm(got - w) / np.linalg.norm(w)
    print(f"{k}: rel L2 {err:.2e}")
    bad |= err > 1e-5
print("FAIL" if bad else "PASS")
