#!/usr/bin/env python3
"""A Hugging Face checkpoint of Llama-3-8B's shapes on the GPU: deltaflow's
`generate` against transformers on the same device, in the same run
(issue #14, stage 4: "the Hugging Face models run generate on the H200").

The checkpoint is Llama-3-8B's config.json (hidden 4096, 32/8 heads of 128,
intermediate 14336, vocab 128256, rope_theta 500000 with "llama3" scaling)
cut to --layers decoder layers, with random bf16 weights scaled like trained
ones (N(0, 1/in) linears, 1 + 0.1 N norms, N(0, 1) embeddings): 3.1 GB at 2
layers, made on the device because it cannot be carried. Two halves:

  hf_llama3.py header DIR [--layers 2]          (here, no torch)
      Writes DIR/config.json and DIR/model.safetensors with the checkpoint's
      exact header and a sparse (unallocated) data section: what
      tools/hf_import.py reads to compile it. bench/gpu/build.sh then runs
      hf_import.py --target=cuda --attn-dtype bf16 (dense, and token-select
      + Δ).

  hf_llama3.py run [--prompt 8192] [--decode 32]   (device, after build.sh)
      Builds the model with transformers from that config.json (seed 0),
      saves it with save_pretrained (bf16 safetensors), and runs
        deltaflow-run generate --dense --sparse --weights CKPT --warmup
      on a random prompt. Then transformers on the same GPU:
        - bf16, attn_implementation="sdpa", warm: prefill time (logits of the
          last row) and decode ms/token with its KV cache (DynamicCache);
        - float32 (the same bf16 weights, widened), sdpa: one forward over
          the prompt and our generated tokens, the reference logits.
      Prints both speeds and their ratio, our logits' relative L2 against
      transformers' float32 and bf16 forwards, greedy-token agreement, the
      fraction of this GPU's bf16 matmul rate (prefill) and copy rate
      (decode: weights read per token) measured in this run, and writes
      $OUT/hf-llama3.json.

Tolerance: our projections round their inputs to bf16 on the tensor-core
GEMM and attention rounds Q/K/V to bf16, so our logits sit within the error
of bf16 activations of the f32 forward; the check is rel L2 <= 2^-5 (the
bound bench/hf/transformers_check.py uses for bf16 forwards).
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "out")
HF = os.path.join(OUT, "hf-llama3")
BOUND = 2.0 ** -5

# Llama-3-8B's config.json (meta-llama/Meta-Llama-3.1-8B), layers aside.
CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False,
    "attention_dropout": 0.0, "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 128,
    "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
    "max_position_embeddings": 131072, "mlp_bias": False, "num_attention_heads": 32,
    "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-5,
    "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                        "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                        "original_max_position_embeddings": 8192},
    "tie_word_embeddings": False, "dtype": "bfloat16", "use_cache": True, "vocab_size": 128256,
}


def tensors(cfg):
    """[(name, shape)] of a LlamaForCausalLM checkpoint, all bf16."""
    d, f, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = cfg["head_dim"]
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    out = [("model.embed_tokens.weight", [v, d]), ("model.norm.weight", [d]), ("lm_head.weight", [v, d])]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", [d]), (p + "post_attention_layernorm.weight", [d]),
                (p + "self_attn.q_proj.weight", [q, d]), (p + "self_attn.k_proj.weight", [kv, d]),
                (p + "self_attn.v_proj.weight", [kv, d]), (p + "self_attn.o_proj.weight", [d, q]),
                (p + "mlp.gate_proj.weight", [f, d]), (p + "mlp.up_proj.weight", [f, d]),
                (p + "mlp.down_proj.weight", [d, f])]
    return out


def header(a):
    cfg = dict(CONFIG, num_hidden_layers=a.layers)
    os.makedirs(a.dir, exist_ok=True)
    with open(os.path.join(a.dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    h, off = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in tensors(cfg):
        n = 2
        for s in shape:
            n *= s
        h[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + n]}
        off += n
    text = json.dumps(h, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path = os.path.join(a.dir, "model.safetensors")
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        f.truncate(8 + len(text) + off)  # sparse: no data is written
    print(f"hf_llama3.py: {path}: {len(h) - 1} tensors, {off / 1e9:.2f} GB (header only, sparse)")
    return 0


def run(a):
    import numpy as np
    import torch
    import transformers as tf
    sys.path.insert(0, HERE)
    sys.path.insert(0, os.path.join(ROOT, "bench", "hf"))
    from common import cuda_time
    from transformers_check import scale_like_trained

    torch.backends.cuda.matmul.allow_tf32 = False
    dev = "cuda"
    cfg_json = json.load(open(os.path.join(HF, "config.json")))
    ckpt = "/tmp/deltaflow-hf-llama3"
    t0 = time.time()
    torch.manual_seed(0)
    cfg = tf.LlamaConfig(**{k: v for k, v in cfg_json.items() if k not in ("architectures", "model_type")})
    with torch.device(dev):
        model = tf.LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    scale_like_trained(model)  # (Llama has no biases)
    model.save_pretrained(ckpt, safe_serialization=True)
    print(f"checkpoint: {ckpt}, {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters, "
          f"made and saved in {time.time() - t0:.1f} s", flush=True)
    ids = torch.randint(0, cfg.vocab_size, (a.prompt,), generator=torch.Generator().manual_seed(1))
    np.save(os.path.join(ckpt, "prompt.npy"), ids.numpy().astype(np.int32))

    work = "/tmp/deltaflow-hf-run"
    os.makedirs(work, exist_ok=True)
    cmd = [os.path.join(OUT, "deltaflow-run"), "generate", "--dense", os.path.join(HF, "dense.so"),
           "--sparse", os.path.join(HF, "sparse.so"), "--weights", ckpt,
           "--prompt", os.path.join(ckpt, "prompt.npy"), "--decode", str(a.decode), "--warmup",
           "--json", os.path.join(work, "run.json"), "--dump-dir", work] + a.generate_args.split()
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    print(r.stdout + r.stderr[-2500:], flush=True)
    if r.returncode != 0:
        print(f"SOME CHECKS FAILED: deltaflow-run generate exited {r.returncode}")
        return 1
    print(f"(generate took {time.time() - t0:.1f} s of wall time)", flush=True)
    gen = json.load(open(os.path.join(work, "run.json")))
    builds = {b["build"]: b for b in gen["builds"]}
    dump = gen["dumps"]["dense"]
    tokens = torch.tensor(dump["tokens"], device=dev)[None]
    ours = torch.from_numpy(np.load(dump["logits"])).to(dev).double()  # [decode + 1, vocab]
    rows = torch.arange(a.prompt - 1, a.prompt - 1 + ours.shape[0], device=dev)

    def logits_at(m, dtype):
        with torch.no_grad():
            h = m.model(input_ids=tokens[:, :a.prompt - 1 + ours.shape[0]]).last_hidden_state[0, rows]
            return m.lm_head(h.to(dtype)).double()

    def rel(x):
        return ((x - ours).norm(dim=-1) / x.norm(dim=-1)).max().item()

    # transformers, bf16, sdpa: the speed baseline.
    model.config._attn_implementation = "sdpa"
    prompt = tokens[:, :a.prompt]
    with torch.no_grad():
        t_prefill = cuda_time(lambda: model(input_ids=prompt, logits_to_keep=1), 3)

        def decode(n):
            cache = model(input_ids=prompt, use_cache=True, logits_to_keep=1).past_key_values
            torch.cuda.synchronize()
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            for i in range(n):
                model(input_ids=tokens[:, a.prompt + i:a.prompt + i + 1], past_key_values=cache,
                      use_cache=True, logits_to_keep=1)
            e.record()
            torch.cuda.synchronize()
            return s.elapsed_time(e) / n
        decode(2)  # warm-up of the decode shapes
        t_decode = decode(a.decode)
    l_bf16 = logits_at(model, torch.bfloat16)
    # float32 forward of the same (bf16) weights: the reference. For this
    # GQA model with transformers' mask, PyTorch's SDPA takes its math path
    # in float32 (the memory-efficient kernel refuses Hq != Hkv), which
    # materialises the [heads, N, N] scores: 8 GiB at 8K, 128 GiB at 32K.
    # When that does not fit, the check is against transformers' bf16
    # forward, and says so.
    model = model.float()
    try:
        l_ref = logits_at(model, torch.float32)
        ref_name = "float32"
    except torch.OutOfMemoryError:
        print("transformers' float32 forward ran out of GPU memory (SDPA's math path "
              "for GQA); checking against its bf16 forward", flush=True)
        l_ref, ref_name = l_bf16, "bf16 (float32 out of memory)"
    model = None
    torch.cuda.empty_cache()
    err32, err16 = rel(l_ref), rel(l_bf16)
    agree = int((l_ref.argmax(-1) == ours.argmax(-1)).sum().item())
    ok = err32 <= BOUND

    # This GPU's rates, measured now: bf16 matmul and device copy.
    m = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
    mm_tflops = 2 * 8192 ** 3 / cuda_time(lambda: m @ m, 10) / 1e9
    buf = torch.empty(1 << 30, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(buf)
    copy_gbs = 2 * buf.numel() / cuda_time(lambda: dst.copy_(buf), 10) / 1e6
    L, d, f, V = cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    kvd = cfg.num_key_value_heads * cfg.head_dim
    proj = L * (2 * d * d + 2 * d * kvd + 3 * d * f)  # weights per layer stack
    flops_prefill = 2 * proj * a.prompt + L * 2 * 2 * a.prompt ** 2 / 2 * cfg.num_attention_heads * cfg.head_dim
    bytes_tok = 2 * (proj + V * d)  # bf16 weights read per decode step (+ lm_head)

    dense = builds["dense"]
    torch_prefill_tok_s = a.prompt / (t_prefill / 1e3)
    print(f"\nLlama-3-8B shapes, {L} layers, bf16 checkpoint, prompt {a.prompt}, decode {a.decode} "
          f"(transformers {tf.__version__} sdpa bf16 on the same GPU, same run)")
    print(f"{'':34s} {'prefill tok/s':>14s} {'decode ms/token':>16s}")
    res = []
    for name in ("dense", "sparse"):
        b = builds[name]
        dms = 1000.0 / b["decode_tok_s"] if b["decode_tok_s"] else float("nan")
        print(f"deltaflow {name:24s} {b['prefill_tok_s']:14.0f} {dms:16.3f}")
        res.append({"build": name, "prefill_tok_s": b["prefill_tok_s"], "decode_ms_per_token": dms})
    print(f"{'transformers bf16 sdpa':34s} {torch_prefill_tok_s:14.0f} {t_decode:16.3f}")
    dms = 1000.0 / dense["decode_tok_s"]
    print(f"dense vs transformers: prefill {dense['prefill_tok_s'] / torch_prefill_tok_s:.3f}x, "
          f"decode {t_decode / dms:.3f}x (above 1: faster)")
    print(f"dense prefill {flops_prefill * dense['prefill_tok_s'] / a.prompt / 1e12:.1f} TFLOP/s = "
          f"{flops_prefill * dense['prefill_tok_s'] / a.prompt / 1e12 / mm_tflops:.1%} of this GPU's "
          f"bf16 matmul ({mm_tflops:.0f} TFLOP/s by torch, this run)")
    print(f"dense decode reads {bytes_tok / 1e9:.2f} GB of weights per token: "
          f"{bytes_tok / (dms / 1e3) / 1e9:.0f} GB/s = {bytes_tok / (dms / 1e3) / 1e9 / copy_gbs:.1%} of "
          f"this GPU's copy rate ({copy_gbs:.0f} GB/s, this run)")
    print(f"logits vs transformers {ref_name}: max rel L2 {err32:.2e} (bound {BOUND:g}); vs its bf16 "
          f"forward {err16:.2e}; greedy top-1 agrees with the reference at {agree}/{ours.shape[0]} steps")
    with open(os.path.join(a.out, "hf-llama3.json"), "w") as fjs:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                   "transformers": tf.__version__, "layers": L, "prompt": a.prompt, "decode": a.decode,
                   "builds": res, "transformers_prefill_tok_s": torch_prefill_tok_s,
                   "transformers_decode_ms_per_token": t_decode, "reference": ref_name, "rel_l2_vs_ref": err32,
                   "rel_l2_vs_bf16": err16, "top1_agree": agree, "steps": ours.shape[0],
                   "bf16_matmul_tflops": mm_tflops, "copy_gb_s": copy_gbs, "generate": gen,
                   "command": " ".join(cmd)}, fjs, indent=1, default=str)
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="mode", required=True)
    h = sub.add_parser("header", help="here: config.json and a header-only checkpoint")
    h.add_argument("dir")
    h.add_argument("--layers", type=int, default=2)
    r = sub.add_parser("run", help="device: the checkpoint, deltaflow generate and transformers")
    r.add_argument("--prompt", type=int, default=8192)
    r.add_argument("--decode", type=int, default=32)
    r.add_argument("--generate-args", default="", help="more deltaflow-run generate options")
    r.add_argument("--out", default=os.environ.get("OUT", "/tmp"))
    a = ap.parse_args()
    return header(a) if a.mode == "header" else run(a)


if __name__ == "__main__":
    sys.exit(main())
