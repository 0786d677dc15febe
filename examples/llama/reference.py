#!/usr/bin/env python3
"""Float64 NumPy reference of the Llama-style decoder gen_llama.py writes.

    reference.py MODEL.mlir WEIGHTS.safetensors RUN.json [--tol 1e-4]

RUN.json is what `deltaflow-run generate --json` wrote with --dump-dir: the
tokens fed (prompt, then each decode input) and the logits file of each
step. The reference runs the whole sequence causally at once and compares
the logits of the last prompt position and of every decode position
(relative L2). Exits 1 when any step is off by more than --tol.
"""
import argparse
import json
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dt = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "BF16": np.uint16}[e["dtype"]]
        b, t = e["data_offsets"]
        a = np.frombuffer(data[base + b:base + t], dtype=dt)
        if e["dtype"] == "BF16":  # the top half of an f32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a.reshape(e["shape"]).astype(np.float64)
    return out


LINEAR = ("wq", "wk", "wv", "wo", "w1", "w3", "w2")


def as_in_out(cfg, W):
    """With 16-bit weights (cfg weight_dtype) the projections are stored
    [out, in] (nn.Linear); the forward pass takes them [in, out]."""
    if cfg.get("weight_dtype", "f32") == "f32":
        return W
    W = dict(W)
    for name in list(W):
        if name == "lm_head" or name.split(".")[-1] in LINEAR:
            W[name] = W[name].T
    return W


def config_of(mlir_path):
    with open(mlir_path) as f:
        for line in f:
            if line.startswith("// config: "):
                return json.loads(line[len("// config: "):])
    sys.exit(f"reference.py: {mlir_path}: no '// config:' line (not written by gen_llama.py?)")


def rmsnorm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w.reshape(-1)


def rope(x, pos, theta):  # x [n, h, d]
    d = x.shape[-1]
    half = d // 2
    inv = 1.0 / theta ** (2 * np.arange(half) / d)
    ang = pos[:, None] * np.concatenate([inv, inv])[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    rot = np.concatenate([-x[..., half:], x[..., :half]], -1)
    return x * cos + rot * sin


def forward(cfg, W, tokens):
    n = len(tokens)
    hq, hkv, hd = cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    eps = cfg["norm_eps"]
    x = W["embed"][tokens]
    pos = np.arange(n, dtype=np.float64)
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(cfg["layers"]):
        p = f"layers.{l}."
        xn = rmsnorm(x, W[p + "attn_norm"], eps)
        q = rope((xn @ W[p + "wq"]).reshape(n, hq, hd), pos, cfg["rope_theta"])
        k = rope((xn @ W[p + "wk"]).reshape(n, hkv, hd), pos, cfg["rope_theta"])
        v = (xn @ W[p + "wv"]).reshape(n, hkv, hd)
        g = hq // hkv
        o = np.empty((n, hq, hd))
        for h in range(hq):
            s = q[:, h] @ k[:, h // g].T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            o[:, h] = (s / s.sum(-1, keepdims=True)) @ v[:, h // g]
        x = x + o.reshape(n, hq * hd) @ W[p + "wo"]
        xn = rmsnorm(x, W[p + "mlp_norm"], eps)
        a = xn @ W[p + "w1"]
        x = x + (a / (1 + np.exp(-a)) * (xn @ W[p + "w3"])) @ W[p + "w2"]
    return rmsnorm(x, W["final_norm"], eps) @ W["lm_head"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mlir")
    ap.add_argument("weights")
    ap.add_argument("run")
    ap.add_argument("--build", default="dense", help="which build's logits to check")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    cfg = config_of(a.mlir)
    W = as_in_out(cfg, read_safetensors(a.weights))
    run = json.load(open(a.run))
    dump = run["dumps"][a.build]
    tokens = np.array(dump["tokens"], dtype=np.int64)
    logits = np.load(dump["logits"]).astype(np.float64)  # [steps, vocab]
    prompt = run["prompt_tokens"]
    ref = forward(cfg, W, tokens)
    worst = 0.0
    for s in range(logits.shape[0]):
        r = ref[prompt - 1 + s]
        err = np.linalg.norm(logits[s] - r) / np.linalg.norm(r)
        worst = max(worst, err)
        print(f"step {s}: position {prompt - 1 + s}: rel L2 {err:.2e}  top-1 {int(np.argmax(logits[s]))} vs {int(np.argmax(r))}")
    print(f"worst rel L2 {worst:.2e} (tol {a.tol:g})")
    sys.exit(0 if worst <= a.tol else 1)


if __name__ == "__main__":
    main()
