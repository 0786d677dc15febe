#!/usr/bin/env python3
"""The whole Llama-style example (examples/llama: 2 layers, d_model 1024,
16/4 heads of 64, vocab 4096, f32) on the GPU through deltaflow-run generate
(issue #14, stage 4), against the same model in PyTorch eager on the same
device, in the same run. Device side of bench/gpu/build.sh:

    bash bench/gpu/run.sh llama [--prompt 2048] [--decode 16]

Checks: our dense logits against float64 (examples/llama/reference.py, the
prompt's last position and every decode step, tol 1e-4), PyTorch's against
ours. Prints prefill tokens/s and decode ms/token of both, their ratio, and
the fraction of the f32 matmul rate PyTorch reaches on this GPU (measured
in this run) that our prefill sustains.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import cuda_time  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "out")
LL = os.path.join(OUT, "llama")
sys.path.insert(0, os.path.join(ROOT, "examples", "llama"))
from reference import as_in_out, config_of, read_safetensors  # noqa: E402


class TorchLlama:
    """examples/llama/reference.py's forward in PyTorch eager (f32, no TF32),
    with a KV cache for decode."""

    def __init__(self, cfg, weights, dtype=torch.float32):
        self.cfg = cfg
        self.W = {k: torch.from_numpy(v.astype(np.float32)).cuda().to(dtype)
                  for k, v in as_in_out(cfg, weights).items()}
        self.dtype = dtype
        d = cfg["head_dim"]
        self.inv = 1.0 / cfg["rope_theta"] ** (torch.arange(0, d // 2, device="cuda", dtype=torch.float64) * 2 / d)

    def rms(self, x, w):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.cfg["norm_eps"]) * w.reshape(-1)

    def rope(self, x, pos):  # x [n, h, d]
        ang = pos[:, None].double() * torch.cat([self.inv, self.inv])[None, :]
        cos, sin = ang.cos().to(self.dtype)[:, None, :], ang.sin().to(self.dtype)[:, None, :]
        half = x.shape[-1] // 2
        return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin

    def step(self, tokens, pos0, cache):
        c, W = self.cfg, self.W
        n, hq, hkv, hd = len(tokens), c["heads"], c["kv_heads"], c["head_dim"]
        x = W["embed"][tokens]
        pos = torch.arange(pos0, pos0 + n, device="cuda")
        for l in range(c["layers"]):
            p = f"layers.{l}."
            xn = self.rms(x, W[p + "attn_norm"])
            q = self.rope((xn @ W[p + "wq"]).reshape(n, hq, hd), pos)
            k = self.rope((xn @ W[p + "wk"]).reshape(n, hkv, hd), pos)
            v = (xn @ W[p + "wv"]).reshape(n, hkv, hd)
            if l in cache:
                k, v = torch.cat([cache[l][0], k]), torch.cat([cache[l][1], v])
            cache[l] = (k, v)
            o = F.scaled_dot_product_attention(q.transpose(0, 1)[None], k.transpose(0, 1)[None],
                                               v.transpose(0, 1)[None], is_causal=n > 1,
                                               enable_gqa=True)
            x = x + o[0].transpose(0, 1).reshape(n, hq * hd) @ W[p + "wo"]
            xn = self.rms(x, W[p + "mlp_norm"])
            a = xn @ W[p + "w1"]
            x = x + (F.silu(a) * (xn @ W[p + "w3"])) @ W[p + "w2"]
        return (self.rms(x[-1:], W["final_norm"]) @ W["lm_head"]).float()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp"))
    ap.add_argument("--prompt", type=int, default=2048)
    ap.add_argument("--decode", type=int, default=16)
    ap.add_argument("--weights", choices=("f32", "bf16"), default="f32",
                    help="the example's projection weights: f32, or bf16 in nn.Linear's "
                         "layout (the matmuls then run on the tensor-core GEMM; PyTorch is "
                         "timed in f32 and in bf16)")
    ap.add_argument("--attn", choices=("f32", "bf16"), default="f32",
                    help="attention's element type (gen_llama.py --attn-dtype): f32 (Halide SIMT "
                         "kernels), or bf16 (Q/K/V rounded after RoPE, a bf16 KV cache, the "
                         "tensor-core attention kernels); bf16 needs --weights bf16")
    ap.add_argument("--cold", action="store_true",
                    help="time deltaflow without generate --warmup (first use included: "
                         "the module's GPU code is loaded and its PTX JIT-compiled)")
    ap.add_argument("--generate-args", default="",
                    help="more deltaflow-run generate options, e.g. '--no-kv-offload' (the KV "
                         "cache in host memory, copied to the GPU each step)")
    a = ap.parse_args()
    if a.attn == "bf16" and a.weights != "bf16":
        ap.error("--attn bf16 needs --weights bf16 (the modules bench/gpu/build.sh builds)")
    suffix = ("" if a.weights == "f32" else "-" + a.weights) + ("" if a.attn == "f32" else "-attn16")
    # bf16 weights: from 16 rows on the GEMM rounds each projection's input
    # to bf16 (2^-9 relative), which the float64 reference does not; bf16
    # attention rounds Q, K and V likewise.
    tol = 1e-4 if a.weights == "f32" else 3e-2
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}", flush=True)
    work = "/tmp/deltaflow-llama"
    os.makedirs(work, exist_ok=True)
    wpath = os.path.join(work, "weights.safetensors")
    subprocess.run([sys.executable, os.path.join(ROOT, "examples/llama/make_weights.py"),
                    os.path.join(LL, f"dense{suffix}.manifest.json"), "-o", wpath], check=True)
    cmd = [os.path.join(OUT, "deltaflow-run"), "generate", "--dense", os.path.join(LL, f"dense{suffix}.so"),
           "--sparse", os.path.join(LL, f"sparse{suffix}.so"), "--weights", wpath,
           "--prompt-len", str(a.prompt), "--decode", str(a.decode),
           "--json", os.path.join(work, "run.json"), "--dump-dir", work]
    # Both sides warm up: PyTorch below, deltaflow by --warmup (the same
    # prefill and two decode steps in a scratch session, so the driver's
    # JIT of the PTX is not in the timings).
    if not a.cold:
        cmd.append("--warmup")
    cmd += a.generate_args.split()
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=550)
    print(r.stdout[-3000:] + r.stderr[-3000:], flush=True)
    if r.returncode != 0:
        print(f"SOME CHECKS FAILED: deltaflow-run generate exited {r.returncode}")
        return 1
    print(f"(generate took {time.time() - t0:.1f} s of wall time)")
    run = json.load(open(os.path.join(work, "run.json")))
    builds = {b["build"]: b for b in run["builds"]}
    # float64 reference of the dense build's logits.
    ref = subprocess.run([sys.executable, os.path.join(ROOT, "examples/llama/reference.py"),
                          os.path.join(LL, f"llama{suffix}.mlir"), wpath, os.path.join(work, "run.json"),
                          "--build", "dense", "--tol", str(tol)], capture_output=True, text=True)
    print(ref.stdout.strip().splitlines()[-1] if ref.stdout else ref.stderr, flush=True)
    ok = ref.returncode == 0

    # The same model in PyTorch eager on the same tokens.
    cfg = config_of(os.path.join(LL, f"llama{suffix}.mlir"))
    model = TorchLlama(cfg, read_safetensors(wpath))
    dump = run["dumps"]["dense"]
    tokens = torch.tensor(dump["tokens"], device="cuda")
    ours = torch.from_numpy(np.load(dump["logits"])).cuda().double()
    prompt = tokens[:a.prompt]
    def time_model(model):
        """(prefill ms, decode ms/token, logits of the prompt and each step)."""
        with torch.no_grad():
            t_prefill = cuda_time(lambda: model.step(prompt, 0, {}), 5)
            cache = {}
            logits = [model.step(prompt, 0, cache)]
            # Warm-up of the decode shapes (cuBLAS picks and loads their
            # kernels on first use) on a copy of the cache.
            warm = dict(cache)
            for i in range(2):
                model.step(tokens[a.prompt + i:a.prompt + i + 1], a.prompt + i, warm)
            torch.cuda.synchronize()
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            for i in range(a.decode):
                logits.append(model.step(tokens[a.prompt + i:a.prompt + i + 1], a.prompt + i, cache))
            e.record()
            torch.cuda.synchronize()
            return t_prefill, s.elapsed_time(e) / a.decode, logits

    t_prefill, t_decode, logits = time_model(model)
    # bf16 weights: PyTorch in bf16 as well (weights and activations), its
    # usual way to run such a checkpoint.
    t16 = time_model(TorchLlama(cfg, read_safetensors(wpath), torch.bfloat16)) \
        if a.weights == "bf16" else None
    theirs = torch.cat(logits).double()
    agree = ((theirs - ours[:theirs.shape[0]]).norm(dim=-1) / ours[:theirs.shape[0]].norm(dim=-1)).max().item()
    ok &= agree <= tol
    # This GPU's f32 matmul rate (no TF32), measured now: the yardstick.
    m = torch.randn(8192, 8192, device="cuda")
    sgemm = 2 * 8192 ** 3 / cuda_time(lambda: m @ m, 10) / 1e9  # TFLOP/s
    d, f, L = cfg["d_model"], cfg["ffn"], cfg["layers"]
    kv = cfg["kv_heads"] * cfg["head_dim"]
    flops_tok = L * 2 * (2 * d * d + 2 * d * kv + 3 * d * f)  # projections and MLP per token
    rows = []
    print(f"\nLlama example, {L} layers, d_model {d}, ffn {f}, {a.weights} weights, {a.attn} attention, "
          f"prompt {a.prompt}, decode {a.decode} "
          f"(H200; PyTorch eager f32 on the same GPU, same run)")
    print(f"{'':28s} {'prefill tok/s':>14s} {'decode ms/token':>16s}")
    for name in ("dense", "sparse"):
        b = builds[name]
        dec_ms = 1000.0 / b["decode_tok_s"] if b["decode_tok_s"] else float("nan")
        print(f"deltaflow {name:18s} {b['prefill_tok_s']:14.0f} {dec_ms:16.3f}")
        rows.append({"build": name, "prefill_tok_s": b["prefill_tok_s"], "decode_ms_per_token": dec_ms})
    torch_tok_s = a.prompt / (t_prefill / 1e3)
    dense = builds["dense"]
    print(f"{'PyTorch eager f32':28s} {torch_tok_s:14.0f} {t_decode:16.3f}")
    if t16:
        print(f"{'PyTorch eager bf16':28s} {a.prompt / (t16[0] / 1e3):14.0f} {t16[1]:16.3f}")
        dms = 1000.0 / dense["decode_tok_s"]
        print(f"dense vs PyTorch bf16: prefill {dense['prefill_tok_s'] / (a.prompt / (t16[0] / 1e3)):.3f}x, "
              f"decode {t16[1] / dms:.3f}x (above 1: faster)")
    print(f"dense vs PyTorch: prefill {dense['prefill_tok_s'] / torch_tok_s:.3f}x, decode "
          f"{t_decode / (1000.0 / dense['decode_tok_s']):.3f}x (above 1: faster)")
    print(f"prefill sustains {dense['prefill_tok_s'] * flops_tok / 1e12:.2f} TFLOP/s in the projections = "
          f"{dense['prefill_tok_s'] * flops_tok / 1e12 / sgemm:.1%} of this GPU's f32 matmul "
          f"({sgemm:.1f} TFLOP/s by torch, this run); PyTorch's prefill "
          f"{torch_tok_s * flops_tok / 1e12:.2f} TFLOP/s")
    print(f"PyTorch's logits vs ours: max rel L2 {agree:.2e} (tol {tol:g})")
    with open(os.path.join(a.out, "llama.json"), "w") as fjs:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "prompt": a.prompt,
                   "decode": a.decode, "builds": rows, "torch_prefill_tok_s": torch_tok_s,
                   "torch_decode_ms_per_token": t_decode, "sgemm_tflops": sgemm,
                   "weights": a.weights, "attn": a.attn,
                   "torch_bf16_prefill_ms": t16[0] if t16 else None,
                   "torch_bf16_decode_ms_per_token": t16[1] if t16 else None,
                   "reference": ref.stdout, "torch_vs_ours_rel_l2": agree, "generate": run,
                   "command": " ".join(cmd)}, fjs, indent=1, default=str)
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
