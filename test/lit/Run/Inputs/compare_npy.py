"""compare_npy.py [--exact] A1 B1 [A2 B2 ...]: each pair of .npy files equal to
float32 rounding (max abs difference <= 1e-5 relative to the larger
magnitude, the same NaN and infinity positions), or with --exact equal in
every element (indices); prints one line per pair and a verdict."""
import sys

import numpy as np

ok = True
exact = sys.argv[1:2] == ["--exact"]
files = sys.argv[2:] if exact else sys.argv[1:]
for a_path, b_path in zip(files[::2], files[1::2]):
    a, b = np.load(a_path), np.load(b_path)
    if a.shape != b.shape:
        print(f"{a_path} {a.shape} vs {b_path} {b.shape}: shapes differ")
        ok = False
        continue
    if exact:
        same = a.dtype == b.dtype and bool((a == b).all())
        print(f"{a_path} vs {b_path}: {'identical' if same else 'DIFFERENT'} "
              f"({a.dtype}, {int((a != b).sum())} elements differ)")
        ok &= same
        continue
    a, b = a.astype(np.float64), b.astype(np.float64)
    fa, fb = np.isfinite(a), np.isfinite(b)
    same_special = (fa == fb).all() and (np.isnan(a) == np.isnan(b)).all() and \
        (a[~fa & ~np.isnan(a)] == b[~fb & ~np.isnan(b)]).all()
    scale = max(np.abs(a[fa]).max(initial=0), np.abs(b[fb]).max(initial=0), 1e-30)
    diff = np.abs(a[fa & fb] - b[fa & fb]).max(initial=0) / scale
    print(f"{a_path} vs {b_path}: max abs difference {diff:.2e} of the largest magnitude")
    ok &= bool(same_special and diff <= 1e-5)
print(("identical" if exact else "equal to float32 rounding") if ok else "DIFFERENT")
sys.exit(0 if ok else 1)
