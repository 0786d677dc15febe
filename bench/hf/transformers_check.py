#!/usr/bin/env python3
"""deltaflow's Hugging Face import checked against transformers itself.

Two halves, because the device machine has torch + transformers but no
MLIR/Halide, and this machine the opposite:

  transformers_check.py make OUT_DIR      (device: torch 2.11, transformers 5.17)
      For each case, builds a small random config of the family with
      transformers' own config class, initialises the model (weights scaled
      like a trained one: N(0, 1/in) linears, 1 + 0.1 N norms), saves it with
      save_pretrained (f32, or bf16; sharded where the case says), and runs
      transformers' forward pass greedily from a random prompt for 16 steps.
      Writes OUT_DIR/CASE/{config.json, *.safetensors, prompt.npy,
      hf_logits.npy [17, vocab] (float32 forward), hf_tokens.json} and, for
      bf16 checkpoints, hf_logits_bf16.npy (transformers' forward in bf16).

      The device tool returns only a few files: pack the directory,
      e.g. `python3 bench/hf/transformers_check.py make /tmp/hf &&
      tar czf $OUT/hf.tgz -C /tmp hf`, and unpack it here.

  transformers_check.py check OUT_DIR [--build-dir build] [--json FILE]
      (here) For each case: tools/hf_import.py, then deltaflow-run generate
      with the same prompt; compares the greedy tokens (must be equal) and
      each step's logits (relative L2; f32 forward: <= 1e-4; bf16 weights:
      against the float32 forward of the same bf16 weights <= 1e-4, and
      against transformers' bf16 forward reported with the bound below).

bf16 bound: transformers' bf16 forward rounds every activation to bf16
(8 bits of mantissa), ours keeps f32 activations over the same weights; the
relative L2 between the two is reported and must stay below 2^-5 = 3.1e-2
(a few roundings of 2^-9 relative each compound over the layers).
"""
import argparse
import inspect
import json
import os
import subprocess
import sys
import time

import numpy as np

CASES = [
    # name, family, dtype, extra config, shard size
    ("llama-f32", "llama", "f32", {}, None),
    ("llama3-rope-bf16-sharded", "llama", "bf16",
     {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                       "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}, "300KB"),
    ("llama-linear-rope-head-dim-f32", "llama", "f32",
     {"rope_scaling": {"rope_type": "linear", "factor": 4.0}, "head_dim": 32, "attention_bias": True}, None),
    ("mistral-window-f32", "mistral", "f32", {"sliding_window": 24}, None),
    ("qwen2-tied-f32", "qwen2", "f32", {"tie_word_embeddings": True}, None),
    ("qwen2-bf16", "qwen2", "bf16", {}, None),
]
PROMPT, DECODE = 61, 16
BF16_BOUND = 2.0 ** -5


def scale_like_trained(model):
    """Random weights scaled like a trained model's, in place: N(0, 1/in)
    linears, 1 + 0.1 N norms, 0.1 N biases, N(0, 1) embeddings."""
    import torch
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif pname.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif "embed" in pname:
                p.copy_(torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p.shape[-1] ** 0.5)


def make(out):
    import torch
    import transformers as tf
    torch.manual_seed(0)
    classes = {"llama": (tf.LlamaConfig, tf.LlamaForCausalLM), "mistral": (tf.MistralConfig, tf.MistralForCausalLM),
               "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM)}
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    for name, fam, dtype, extra, shard in CASES:
        t0 = time.time()
        C, M = classes[fam]
        kw = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=256, max_position_embeddings=4096, rms_norm_eps=1e-5,
                  tie_word_embeddings=False)
        kw.update(extra)
        # transformers 5 takes rope_parameters (theta inside); 4.x rope_scaling.
        if "rope_parameters" in inspect.signature(C.__init__).parameters:
            rope = dict(kw.pop("rope_scaling", None) or {"rope_type": "default"})
            rope["rope_theta"] = 10000.0
            kw["rope_parameters"] = rope
        cfg = C(**kw)
        cfg._attn_implementation = "eager"
        model = M(cfg).eval()
        scale_like_trained(model)
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        if dtype == "bf16":
            model = model.to(torch.bfloat16)
        save = {"max_shard_size": shard} if shard else {}
        model.save_pretrained(d, safe_serialization=True, **save)
        prompt = torch.randint(0, cfg.vocab_size, (PROMPT,), generator=torch.Generator().manual_seed(1))
        np.save(os.path.join(d, "prompt.npy"), prompt.numpy().astype(np.int32))

        def greedy(m):
            m = m.to(dev)
            ids = prompt[None].to(dev)
            logits = []
            with torch.no_grad():
                for _ in range(DECODE + 1):
                    out_logits = m(ids).logits[0, -1].float()
                    logits.append(out_logits.cpu().numpy())
                    ids = torch.cat([ids, out_logits.argmax().view(1, 1)], 1)
            return np.stack(logits), ids[0, PROMPT:].tolist()

        f32_model = M.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
        logits, tokens = greedy(f32_model)
        np.save(os.path.join(d, "hf_logits.npy"), logits.astype(np.float32))
        meta = {"case": name, "family": fam, "dtype": dtype, "tokens": tokens,
                "transformers": tf.__version__, "torch": torch.__version__, "device": dev}
        if dtype == "bf16":
            bf_model = M.from_pretrained(d, dtype=torch.bfloat16, attn_implementation="eager").eval()
            lb, tb = greedy(bf_model)
            np.save(os.path.join(d, "hf_logits_bf16.npy"), lb.astype(np.float32))
            meta["tokens_bf16"] = tb
        with open(os.path.join(d, "hf_tokens.json"), "w") as f:
            json.dump(meta, f)
        print(f"[make] {name}: {fam} {dtype}, files {sorted(os.listdir(d))}, {time.time() - t0:.1f}s", flush=True)


def rel(a, b):
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))


def check(out, build, json_path):
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    results, ok = [], True
    for name, *_ in CASES:
        d = os.path.join(out, name)
        meta = json.load(open(os.path.join(d, "hf_tokens.json")))
        work = os.path.join(out, "_work", name)
        os.makedirs(work, exist_ok=True)
        subprocess.run([sys.executable, os.path.join(root, "tools", "hf_import.py"), d, "-o",
                        os.path.join(work, "model"), "--compiler", os.path.join(build, "bin", "deltaflow-compile")],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([os.path.join(build, "bin", "deltaflow-run"), "generate", "--dense",
                        os.path.join(work, "model.so"), "--weights", d, "--prompt", os.path.join(d, "prompt.npy"),
                        "--decode", str(DECODE), "--json", os.path.join(work, "run.json"), "--dump-dir", work],
                       check=True, stdout=subprocess.DEVNULL)
        run = json.load(open(os.path.join(work, "run.json")))
        ours = np.load(run["dumps"]["dense"]["logits"])
        our_tokens = [int(np.argmax(r)) for r in ours[:DECODE + 1]]  # 17 steps, as make records
        hf = np.load(os.path.join(d, "hf_logits.npy"))
        errs = [rel(ours[s], hf[s]) for s in range(DECODE + 1)]
        r = {"case": name, "family": meta["family"], "dtype": meta["dtype"],
             "tokens_equal": our_tokens == meta["tokens"], "worst_rel_l2_vs_f32_forward": max(errs),
             "transformers": meta["transformers"]}
        good = r["tokens_equal"] and max(errs) <= 1e-4
        if meta["dtype"] == "bf16":
            hb = np.load(os.path.join(d, "hf_logits_bf16.npy"))
            eb = max(rel(ours[s], hb[s]) for s in range(DECODE + 1))
            r["worst_rel_l2_vs_bf16_forward"] = eb
            r["tokens_equal_bf16_forward"] = our_tokens == meta["tokens_bf16"]
            good = good and eb <= BF16_BOUND
        r["pass"] = good
        ok &= good
        results.append(r)
        extra = (f", vs transformers' bf16 forward {r['worst_rel_l2_vs_bf16_forward']:.2e} (bound {BF16_BOUND:.1e}), "
                 f"its tokens {'equal' if r['tokens_equal_bf16_forward'] else 'differ'}") if meta["dtype"] == "bf16" else ""
        print(f"{name}: greedy tokens {'equal' if r['tokens_equal'] else 'DIFFER'} ({DECODE}), worst rel L2 "
              f"vs transformers' f32 forward {max(errs):.2e} (tol 1e-4){extra}: {'pass' if good else 'FAIL'}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"prompt": PROMPT, "decode": DECODE, "results": results}, f, indent=1)
    print(f"{sum(r['pass'] for r in results)}/{len(results)} cases pass")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="device: checkpoints and transformers' logits")
    m.add_argument("out")
    c = sub.add_parser("check", help="here: import, run, compare")
    c.add_argument("out")
    c.add_argument("--build-dir", default="build")
    c.add_argument("--json")
    a = ap.parse_args()
    if a.cmd == "make":
        make(a.out)
        return 0
    return check(a.out, os.path.abspath(a.build_dir), a.json)


if __name__ == "__main__":
    sys.exit(main())
