"""float64 check of a selecting policy's sparse attention output.

check_sparse.py DIR --sinks S --window W --chunk C
DIR holds q.npy, k.npy, v.npy (attention_check.py gen), out.npy, and the
selection's indices in temps/*.npy (deltaflow-run --temporaries), shape
[B, heads (1 or Hkv), chunks, slots]. Query row i at position p = Nk - Nq + i
sees the sinks, its chunk's selected keys and the window anchored at its
chunk's start s0 (keys max(sinks, s0 - W) .. p), each once, causally
(docs/design.md; test/unit/SparseReference.h sparseKeys).
"""
import argparse, glob, sys
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--sinks", type=int, required=True)
ap.add_argument("--window", type=int, required=True)
ap.add_argument("--chunk", type=int, required=True)
a = ap.parse_args()
q = np.load(f"{a.dir}/q.npy").astype(np.float64)
k = np.load(f"{a.dir}/k.npy").astype(np.float64)
v = np.load(f"{a.dir}/v.npy").astype(np.float64)
out = np.load(f"{a.dir}/out.npy")
temps = [np.load(f) for f in glob.glob(f"{a.dir}/temps/*.npy")]
idx = [t for t in temps if t.dtype == np.int32]
if len(idx) != 1:
    sys.exit(f"check_sparse: error: expected one int32 temporary in {a.dir}/temps, found {len(idx)}")
idx = idx[0]
B, Hq, Nq, D = q.shape
Hkv, Nk = k.shape[1], k.shape[2]
G = Hq // Hkv
scale = 1.0 / np.sqrt(D)
worst = 0.0
for b in range(B):
    for h in range(Hq):
        hk = h // G
        hs = 0 if idx.shape[1] == 1 else hk
        for i in range(Nq):
            p = Nk - Nq + i
            c = i // a.chunk
            s0 = Nk - Nq + c * a.chunk
            keys = set(range(min(a.sinks, p + 1)))
            keys |= {int(j) for j in idx[b, hs, c] if 0 <= j <= p}
            keys |= set(range(max(a.sinks, s0 - a.window), p + 1))
            ks = sorted(keys)
            s = k[b, hk, ks] @ q[b, h, i] * scale
            w = np.exp(s - s.max())
            ref = (w / w.sum()) @ v[b, hk, ks]
            err = np.abs(out[b, h, i] - ref).max() / max(np.abs(ref).max(), 1e-30)
            worst = max(worst, err)
ok = np.isfinite(out).all() and worst <= 1e-4
print(f"sparse output vs float64 over sinks + selection + window: max relative error {worst:.3e}")
print("PASS" if ok else "FAIL (tolerance 1e-4)")
sys.exit(0 if ok else 1)
