#!/usr/bin/env python3
"""Writes a tiny Hugging Face-layout checkpoint with NumPy (CI has no torch).

    make_checkpoint.py DIR --family llama|mistral|qwen2 [--dtype f32|bf16|f16]
        [--shards N] [--tied] [--head-dim D] [--rope default|linear|llama3]
        [--legacy-rope] [--sliding-window W] [--attention-bias] [--seed S]
        [--break KIND]

config.json uses transformers' field names (transformers 5's
"rope_parameters", or with --legacy-rope the older "rope_theta" +
"rope_scaling"); the tensors carry transformers' names and nn.Linear's
[out, in] layout, in one model.safetensors or, with --shards N, in N shards
listed by model.safetensors.index.json (as save_pretrained writes them).
--break KIND writes a checkpoint with one fault, for the bad-input tests:
model-type, rope-type, missing-shard, duplicate, shape, dtype, index-file,
missing-tensor.
"""
import argparse
import json
import os
import struct

import numpy as np


def bf16_bits(a):
    """float32 -> bfloat16 bit patterns, round to nearest even."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def encode(a, dtype):
    if dtype == "f32":
        return "F32", a.astype("<f4").tobytes()
    if dtype == "f16":
        return "F16", a.astype("<f2").tobytes()
    return "BF16", bf16_bits(a).astype("<u2").tobytes()


def write_safetensors(path, tensors):
    """tensors: [(name, st_dtype, shape, bytes)] back to back, 8-byte aligned header."""
    header, off = {}, 0
    for name, st, shape, data in tensors:
        header[name] = {"dtype": st, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for *_, data in tensors:
            f.write(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--family", choices=("llama", "mistral", "qwen2"), required=True)
    ap.add_argument("--dtype", choices=("f32", "bf16", "f16"), default="f32")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--tied", action="store_true")
    ap.add_argument("--head-dim", type=int)
    ap.add_argument("--rope", choices=("default", "linear", "llama3"), default="default")
    ap.add_argument("--legacy-rope", action="store_true")
    ap.add_argument("--sliding-window", type=int)
    ap.add_argument("--attention-bias", action="store_true")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=96)
    ap.add_argument("--vocab", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--break", dest="fault", choices=("model-type", "rope-type", "missing-shard", "duplicate",
                                                       "shape", "dtype", "index-file", "missing-tensor"))
    a = ap.parse_args()
    d, heads, kv_heads, ffn, vocab = a.hidden, a.heads, a.kv_heads, a.ffn, a.vocab
    hd = a.head_dim or d // heads
    rng = np.random.default_rng(a.seed)
    cfg = {"model_type": a.family, "architectures": [{"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
                                                       "qwen2": "Qwen2ForCausalLM"}[a.family]],
           "hidden_size": d, "intermediate_size": ffn, "num_hidden_layers": a.layers,
           "num_attention_heads": heads, "num_key_value_heads": kv_heads, "vocab_size": vocab,
           "rms_norm_eps": 1e-5, "hidden_act": "silu", "max_position_embeddings": 4096,
           "tie_word_embeddings": a.tied, "dtype": {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}[a.dtype]}
    if a.head_dim:
        cfg["head_dim"] = hd
    rope = {"rope_type": a.rope, "rope_theta": 10000.0}
    if a.rope == "linear":
        rope["factor"] = 4.0
    if a.rope == "llama3":
        # original context 64: a tiny model's positions cross all three bands.
        rope.update(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=64)
    if a.fault == "rope-type":
        rope["rope_type"] = "yarn"
    if a.fault == "model-type":
        cfg["model_type"] = "gpt_neox"
    if a.legacy_rope:
        cfg["rope_theta"] = rope.pop("rope_theta")
        cfg["rope_scaling"] = rope if rope["rope_type"] != "default" else None
    else:
        cfg["rope_parameters"] = rope
    if a.family == "mistral":
        cfg["sliding_window"] = a.sliding_window
    if a.family == "llama":
        cfg["attention_bias"] = a.attention_bias
    biases = "qkv" if a.family == "qwen2" else ("qkvo" if a.attention_bias else "")

    shapes = [("model.embed_tokens.weight", [vocab, d])]
    for l in range(a.layers):
        p = f"model.layers.{l}."
        shapes += [(p + "input_layernorm.weight", [d]), (p + "self_attn.q_proj.weight", [heads * hd, d]),
                   (p + "self_attn.k_proj.weight", [kv_heads * hd, d]),
                   (p + "self_attn.v_proj.weight", [kv_heads * hd, d]),
                   (p + "self_attn.o_proj.weight", [d, heads * hd]),
                   (p + "post_attention_layernorm.weight", [d]), (p + "mlp.gate_proj.weight", [ffn, d]),
                   (p + "mlp.up_proj.weight", [ffn, d]), (p + "mlp.down_proj.weight", [d, ffn])]
        size = {"q": heads * hd, "k": kv_heads * hd, "v": kv_heads * hd, "o": d}
        shapes += [(p + f"self_attn.{b}_proj.bias", [size[b]]) for b in biases]
    shapes.append(("model.norm.weight", [d]))
    if not a.tied:
        shapes.append(("lm_head.weight", [vocab, d]))
    tensors = []
    for name, shape in shapes:
        if name.endswith("norm.weight"):
            v = 1 + 0.1 * rng.standard_normal(shape)
        elif name.endswith("bias"):
            v = 0.1 * rng.standard_normal(shape)
        elif "embed" in name:
            v = rng.standard_normal(shape, dtype=np.float32)
        else:
            v = rng.standard_normal(shape, dtype=np.float32) / np.float32(np.sqrt(shape[-1]))
        if a.fault == "shape" and name.endswith("layers.1.mlp.up_proj.weight"):
            v = v[:-1]
        dt = a.dtype
        if a.fault == "dtype" and name.endswith("layers.0.self_attn.k_proj.weight"):
            st, data = "I32", v.astype("<i4").tobytes()
        else:
            st, data = encode(v, dt)
        if a.fault == "missing-tensor" and name == "model.norm.weight":
            continue
        tensors.append((name, st, v.shape, data))

    os.makedirs(a.dir, exist_ok=True)
    with open(os.path.join(a.dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if a.shards == 1:
        write_safetensors(os.path.join(a.dir, "model.safetensors"), tensors)
        return
    n = a.shards
    names = [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
    parts = [tensors[i::n] for i in range(n)]
    if a.fault == "duplicate":
        parts[1].append(parts[0][0])
    weight_map = {t[0]: names[i] for i, part in enumerate(parts) for t in part}
    if a.fault == "index-file":
        weight_map[tensors[0][0]] = "model-99999-of-00002.safetensors"
    for i, part in enumerate(parts):
        if a.fault == "missing-shard" and i == n - 1:
            continue
        write_safetensors(os.path.join(a.dir, names[i]), part)
    with open(os.path.join(a.dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(len(t[3]) for t in tensors)}, "weight_map": weight_map}, f, indent=2)


if __name__ == "__main__":
    main()
