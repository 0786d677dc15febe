#!/usr/bin/env python3
"""Trains the fidelity model: a byte-level Llama on Debian docs + RULER tasks.

    train.py OUT_DIR [--seconds 330] [--seed 0]     (device: torch + transformers)

The model is transformers' own LlamaForCausalLM (RMSNorm, RoPE, GQA,
SwiGLU): vocabulary 256 (token = byte, no tokenizer), 4 layers, d_model
256, 4 query heads and 2 key/value heads of dim 64, SwiGLU 768, RoPE theta
500000, untied head. Data: bench/fidelity/data/train.txt (make_corpus.py:
documentation from Debian packages) as filler and plain text, and the
tasks of tasks.py with needles at random depths; 25% of the sequences are
plain text. Loss: the mean next-byte cross-entropy over all positions plus
the mean over the answer bytes (so the few answer bytes of a 16K sequence
weigh as much as the text). AdamW (lr 2e-3, betas 0.9/0.95, weight decay
0.1), 200 warm-up steps then cosine, bf16 autocast, gradient clip 1.0.
Curriculum by wall time, at 96K tokens per step: the first 20% at
512-2K-byte sequences, the next 25% at 1K-4K, the next 30% at 4K-8K, the last 25% at 16K (the
training context).

Writes OUT_DIR/model (save_pretrained, bf16 safetensors + config.json),
OUT_DIR/train_log.json (loss per 25 steps, the phases) and
OUT_DIR/dense_eval.json: transformers' own accuracy (exact match of the
greedy answer, by teacher forcing: every answer byte, the newline included,
is the argmax) per task at 4K, 8K, 16K and 32K on the fixed evaluation
prompts of tasks.eval_set(seed 1234) over data/eval.txt (20 per cell).
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tasks  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
TOKENS_PER_STEP = 96 * 1024
EVAL_LENGTHS = (4096, 8192, 16384, 32768)
EVAL_COUNT, EVAL_SEED = 20, 1234


def phase_of(frac):
    if frac < 0.2:
        return (512, 2048)
    if frac < 0.45:
        return (1024, 4096)
    if frac < 0.75:
        return (4096, 8192)
    return (16384, 16384)


def batch(rng, lo, hi, filler):
    """(ids [B, L] int64, answer mask [B, L] bool) for one step."""
    length = rng.choice([n for n in (512, 1024, 2048, 3072, 4096, 6144, 8192, 16384) if lo <= n <= hi])
    b = max(1, TOKENS_PER_STEP // length)
    ids, mask = [], []
    for _ in range(b):
        if rng.random() < 0.25:
            s = rng.randrange(0, len(filler) - length - 1)
            seq, m = filler[s:s + length + 1], [False] * (length + 1)
        else:
            task = rng.choice(tasks.TASKS)
            prompt, answer = tasks.sample(task, length + 1 - len(answer_room(task)), rng, filler)
            seq = (prompt + answer)[:length + 1]
            m = [False] * len(prompt) + [True] * len(answer)
            seq, m = seq.ljust(length + 1, b"\n"), (m + [False] * (length + 1))[:length + 1]
        ids.append(torch.frombuffer(bytearray(seq), dtype=torch.uint8))
        mask.append(torch.tensor(m))
    return torch.stack(ids).long(), torch.stack(mask)


def answer_room(task):
    return b" " + b"x" * 9 + b"\n"  # the longest answer (" " + 8 hex + "\n")


@torch.no_grad()
def evaluate(model, dev, filler):
    out = {}
    model.eval()
    for task in tasks.TASKS:
        for length in EVAL_LENGTHS:
            ok = 0
            for prompt, answer in tasks.eval_set(task, length, EVAL_COUNT, EVAL_SEED, filler):
                seq = torch.frombuffer(bytearray(prompt + answer), dtype=torch.uint8).long()[None].to(dev)
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    logits = model(seq[:, :-1]).logits[0, len(prompt) - 1:]
                ok += bool((logits.argmax(-1) == seq[0, len(prompt):]).all())
            out[f"{task}@{length}"] = ok / EVAL_COUNT
            print(f"[eval] {task:9s} {length:6d}: {ok}/{EVAL_COUNT}", flush=True)
    model.train()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("out")
    ap.add_argument("--seconds", type=float, default=330)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    import transformers as tf
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    dev = "cuda"
    train_text = open(os.path.join(DATA, "train.txt"), "rb").read()
    eval_text = open(os.path.join(DATA, "eval.txt"), "rb").read()
    cfg = tf.LlamaConfig(vocab_size=256, hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=64,
                         max_position_embeddings=32768, rms_norm_eps=1e-5, tie_word_embeddings=False,
                         rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
                         bos_token_id=None, eos_token_id=10, pad_token_id=None)
    model = tf.LlamaForCausalLM(cfg).to(dev)
    model.config._attn_implementation = "sdpa"
    params = sum(p.numel() for p in model.parameters())
    print(f"[train] {params / 1e6:.2f}M parameters; transformers {tf.__version__}, torch {torch.__version__}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    log, t0, step, total_tokens = [], time.time(), 0, 0
    while True:
        frac = (time.time() - t0) / a.seconds
        if frac >= 1:
            break
        lo, hi = phase_of(frac)
        ids, mask = batch(rng, lo, hi, train_text)
        ids, mask = ids.to(dev, non_blocking=True), mask.to(dev, non_blocking=True)
        lr = 2e-3 * min(1.0, (step + 1) / 200) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(ids[:, :-1]).logits.float()
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), ids[:, 1:].reshape(-1),
                                               reduction="none").view(ids.shape[0], -1)
        m = mask[:, 1:].float()
        text_loss = ce.mean()
        ans_loss = (ce * m).sum() / m.sum().clamp(min=1)
        loss = text_loss + ans_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        total_tokens += ids.numel()
        if step % 25 == 0:
            entry = {"step": step, "seconds": round(time.time() - t0, 1), "seq_len": ids.shape[1] - 1,
                     "loss": round(loss.item(), 4), "text_loss": round(text_loss.item(), 4),
                     "answer_loss": round(ans_loss.item(), 4), "lr": lr}
            log.append(entry)
            if step % 200 == 0:
                print(f"[train] {entry}", flush=True)
    print(f"[train] {step} steps, {total_tokens / 1e6:.0f}M tokens in {time.time() - t0:.0f}s", flush=True)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "train_log.json"), "w") as f:
        json.dump({"params": params, "steps": step, "tokens": total_tokens, "seconds": a.seconds,
                   "seed": a.seed, "phases": "20% 512-2K, 25% 1K-4K, 30% 4K-8K, 25% 16K", "log": log}, f)
    ev = evaluate(model, dev, eval_text)
    model.to(torch.bfloat16).save_pretrained(os.path.join(a.out, "model"), safe_serialization=True)
    with open(os.path.join(a.out, "dense_eval.json"), "w") as f:
        json.dump({"engine": f"transformers {tf.__version__} (bf16 autocast, sdpa)", "count": EVAL_COUNT,
                   "seed": EVAL_SEED, "accuracy": ev}, f, indent=1)


if __name__ == "__main__":
    main()
