#!/usr/bin/env python3
"""Float64 NumPy forward pass of a Hugging Face Llama-family checkpoint.

    hf_reference.py CHECKPOINT_DIR RUN.json [--build dense] [--tol 1e-4]

An independent reference for tools/hf_import.py's builds: it follows
transformers' module semantics (modeling_llama / mistral / qwen2), not
deltaflow's graph: y = x W^T + b for nn.Linear, RMSNorm x / sqrt(mean(x^2) +
eps) * w, rotate-half RoPE with float32 inv_freq and angles (as
transformers computes them) from tools/hf_import.py's rope_inv_freq,
grouped-query attention with query head h on key/value head h // (Hq / Hkv),
Mistral's sliding window (key j seen by query i iff i - W < j <= i),
SwiGLU MLP, the final norm and the (possibly tied) LM head. bf16/f16
weights are widened exactly.

RUN.json is what `deltaflow-run generate --json RUN.json --dump-dir DIR`
wrote: the tokens fed and each step's logits. The whole sequence runs
causally at once; the logits of the last prompt position and of every
decode position are compared (relative L2), and so is each step's top-1
token. Exits 1 when a step is off by more than --tol or a top-1 differs.
Needs NumPy.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_import  # noqa: E402

NP = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}


def load_tensors(directory, names):
    """{name: float64 array} of the named tensors, read from their shards."""
    tensors = hf_import.read_checkpoint(directory)
    out = {}
    for name in names:
        dt, shape, shard = tensors[name]
        path = os.path.join(directory, shard)
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
            b, e = header[name]["data_offsets"]
            f.seek(8 + n + b)
            raw = np.frombuffer(f.read(e - b), dtype=NP[dt])
        if dt == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[name] = raw.astype(np.float64).reshape(shape)
    return out


def forward(cfg, facts, W, tokens):
    """Logits [n, vocab] of the whole sequence, float64."""
    n = len(tokens)
    hq, hkv, hd, eps = cfg["heads"], cfg["kv_heads"], cfg["head_dim"], cfg["norm_eps"]

    def norm(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    def linear(x, key, bias=None):
        y = x @ W[key].T
        return y + W[bias] if bias and bias in W else y

    inv = np.array(cfg["rope_inv_freq"], dtype=np.float32)
    ang = (np.arange(n, dtype=np.float32)[:, None] * inv[None, :]).astype(np.float64)
    ang = np.concatenate([ang, ang], -1)
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]

    def rope(x):  # [n, h, d]
        half = hd // 2
        return x * cos + np.concatenate([-x[..., half:], x[..., :half]], -1) * sin

    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    visible = j <= i
    if cfg.get("sliding_window"):
        visible &= j > i - cfg["sliding_window"]
    mask = np.where(visible, 0.0, -np.inf)
    x = W["model.embed_tokens.weight"][tokens]
    for l in range(cfg["layers"]):
        p = f"model.layers.{l}."
        a = p + "self_attn."
        h = norm(x, W[p + "input_layernorm.weight"])
        q = rope(linear(h, a + "q_proj.weight", a + "q_proj.bias").reshape(n, hq, hd))
        k = rope(linear(h, a + "k_proj.weight", a + "k_proj.bias").reshape(n, hkv, hd))
        v = linear(h, a + "v_proj.weight", a + "v_proj.bias").reshape(n, hkv, hd)
        g = hq // hkv
        o = np.empty((n, hq, hd))
        for hh in range(hq):
            s = q[:, hh] @ k[:, hh // g].T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            o[:, hh] = (s / s.sum(-1, keepdims=True)) @ v[:, hh // g]
        x = x + linear(o.reshape(n, hq * hd), a + "o_proj.weight", a + "o_proj.bias")
        h = norm(x, W[p + "post_attention_layernorm.weight"])
        gate = linear(h, p + "mlp.gate_proj.weight")
        x = x + linear(gate / (1 + np.exp(-gate)) * linear(h, p + "mlp.up_proj.weight"),
                       p + "mlp.down_proj.weight")
    head = "model.embed_tokens.weight" if facts["tied"] else "lm_head.weight"
    return norm(x, W["model.norm.weight"]) @ W[head].T


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("checkpoint")
    ap.add_argument("run", help="RUN.json of deltaflow-run generate --json --dump-dir")
    ap.add_argument("--build", default="dense", help="which build's logits to check (default dense)")
    ap.add_argument("--tol", type=float, default=1e-4, help="relative L2 per step (default 1e-4)")
    a = ap.parse_args()
    try:
        cfg, facts = hf_import.parse_config(os.path.join(a.checkpoint, "config.json"))
        tensors = hf_import.read_checkpoint(a.checkpoint)
    except hf_import.Error as e:
        sys.exit(f"hf_reference.py: error: {e}")
    W = load_tensors(a.checkpoint, list(tensors))
    with open(a.run) as f:
        run = json.load(f)
    dump = run["dumps"][a.build]
    tokens = np.array(dump["tokens"], dtype=np.int64)
    logits = np.load(dump["logits"]).astype(np.float64)
    prompt = run["prompt_tokens"]
    ref = forward(cfg, facts, W, tokens)
    worst, mismatches = 0.0, 0
    for s in range(logits.shape[0]):
        r = ref[prompt - 1 + s]
        err = np.linalg.norm(logits[s] - r) / np.linalg.norm(r)
        worst = max(worst, err)
        ours, theirs = int(np.argmax(logits[s])), int(np.argmax(r))
        mismatches += ours != theirs
        print(f"step {s}: position {prompt - 1 + s}: rel L2 {err:.2e}  top-1 {ours} vs {theirs}")
    print(f"{facts['model_type']}: worst rel L2 {worst:.2e} (tol {a.tol:g}), "
          f"top-1 mismatches {mismatches}/{logits.shape[0]}")
    sys.exit(0 if worst <= a.tol and mismatches == 0 else 1)


if __name__ == "__main__":
    main()
