#!/usr/bin/env python3
"""Compiles a Hugging Face Llama-family checkpoint with deltaflow, as it is.

    hf_import.py CHECKPOINT_DIR -o OUT [--kv-dtype f32|f16] [--attn-dtype f32|bf16|f16]
                 [--target T]
                 [--sparsity OPTS] [--delta OPTS] [--compiler PATH]

Reads CHECKPOINT_DIR/config.json and the safetensors headers (one
model.safetensors, or the shards of model.safetensors.index.json), writes
the model graph OUT.mlir (func + tosa + attn, entries `prefill` and
`decode`, examples/llama/gen_llama.py's builder) whose weight arguments are
the checkpoint's own tensors under their own names, dtypes and layouts, and
runs deltaflow-compile on it (OUT.so, OUT.manifest.json). Run it with

    deltaflow-run generate --dense OUT.so --weights CHECKPOINT_DIR --prompt ids.npy

The weights are memory-mapped from the checkpoint's files at run time; a
bf16/f16 weight is widened to f32 as the kernels read it (a tosa.cast in the
graph), never converted into a copy.

Families (config.json "model_type"): llama (Llama 2/3, rope_scaling
"linear" and "llama3", attention_bias), mistral (sliding_window: attention
over the last sliding_window keys, exactly), qwen2 (q/k/v biases). Also:
tied embeddings, head_dim other than hidden_size / num_attention_heads, and
transformers 5's "rope_parameters" as well as the older "rope_theta" /
"rope_scaling" fields. Field semantics follow transformers' modeling_llama,
modeling_mistral, modeling_qwen2 and modeling_rope_utils.

Any unsupported architecture or field value, a missing shard, a tensor that
is missing or has another shape or dtype than the config implies, a tensor
held by two shards: one line naming the file and the field or tensor, exit
status 1, and no output written. Needs Python 3 only (no NumPy, no torch).
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples", "llama"))
import gen_llama  # noqa: E402  (the Llama-family graph builder)

FAMILIES = ("llama", "mistral", "qwen2")
ST_DTYPES = {"F32": "f32", "BF16": "bf16", "F16": "f16"}
SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"


class Error(Exception):
    pass


def f32(x):
    """Rounds to IEEE single, as torch computes inv_freq in float32."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def rope_inv_freq(where, rope, head_dim):
    """inv_freq [head_dim / 2] of transformers' modeling_rope_utils, float32.

    `rope`: {"rope_type", "rope_theta", "factor", ...}. default:
    theta^(-2i/d); linear: divided by factor; llama3: the wavelength-banded
    scaling of _compute_llama3_parameters (Llama 3.1).
    """
    kind = rope.get("rope_type", rope.get("type", "default"))
    theta = rope.get("rope_theta")
    if not isinstance(theta, (int, float)) or isinstance(theta, bool) or theta <= 0:
        raise Error(f"{where}: rope_theta must be a positive number, got {theta!r}")
    d = head_dim
    inv = [f32(1.0 / f32(f32(theta) ** f32(f32(2 * i) / d))) for i in range(d // 2)]
    if kind == "default":
        return inv

    def num(key):
        v = rope.get(key)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
            raise Error(f"{where}: rope_scaling {kind!r} needs a positive number '{key}', got {v!r}")
        return float(v)

    if kind == "linear":
        factor = num("factor")
        return [f32(x / factor) for x in inv]
    if kind == "llama3":
        factor, low, high = num("factor"), num("low_freq_factor"), num("high_freq_factor")
        old = num("original_max_position_embeddings")
        if high <= low:
            raise Error(f"{where}: rope_scaling llama3 needs high_freq_factor > low_freq_factor")
        low_wavelen, high_wavelen = old / low, old / high
        out = []
        for x in inv:
            wavelen = 2 * math.pi / x
            scaled = x / factor if wavelen > low_wavelen else x
            if high_wavelen <= wavelen <= low_wavelen:
                smooth = (old / wavelen - low) / (high - low)
                scaled = (1 - smooth) * scaled / factor + smooth * scaled
            out.append(f32(scaled))
        return out
    raise Error(f"{where}: rope_scaling type {kind!r} is not supported "
                "(supported: default, linear, llama3)")


def parse_config(path):
    """The builder's cfg and the family facts from a config.json."""
    try:
        with open(path) as f:
            c = json.load(f)
    except OSError as e:
        raise Error(f"{path}: cannot be read ({e.strerror})")
    except ValueError as e:
        raise Error(f"{path}: not JSON ({e})")
    if not isinstance(c, dict):
        raise Error(f"{path}: not a JSON object")
    mt = c.get("model_type")
    if mt not in FAMILIES:
        raise Error(f"{path}: model_type {mt!r} is not supported (supported: {', '.join(FAMILIES)})")

    def integer(key, default=None):
        v = c.get(key, default)
        if v is None and default is not None:
            v = default
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise Error(f"{path}: {key} must be a positive integer, got {v!r}")
        return v

    d, heads = integer("hidden_size"), integer("num_attention_heads")
    kv_heads = integer("num_key_value_heads", heads)
    head_dim = c.get("head_dim")
    head_dim = integer("head_dim") if head_dim is not None else d // heads
    if heads % kv_heads:
        raise Error(f"{path}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}")
    if head_dim % 2:
        raise Error(f"{path}: head_dim {head_dim} must be even (rotary halves)")
    act = c.get("hidden_act", "silu")
    if act != "silu":
        raise Error(f"{path}: hidden_act {act!r} is not supported (supported: silu)")
    eps = c.get("rms_norm_eps", 1e-6)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
        raise Error(f"{path}: rms_norm_eps must be a positive number, got {eps!r}")
    if c.get("mlp_bias"):
        raise Error(f"{path}: mlp_bias true is not supported")
    # transformers 5 writes rope_parameters; older configs rope_theta + rope_scaling.
    rope = c.get("rope_parameters")
    if rope is None:
        rope = dict(c.get("rope_scaling") or {})
        rope.setdefault("rope_theta", c.get("rope_theta", 10000.0))
        field = "rope_scaling"
    else:
        field = "rope_parameters"
    if not isinstance(rope, dict):
        raise Error(f"{path}: {field} must be an object or null, got {rope!r}")
    if "full_attention" not in rope and any(isinstance(v, dict) for v in rope.values()):
        raise Error(f"{path}: per-layer-type {field} is not supported")
    inv = rope_inv_freq(f"{path}: {field}", rope, head_dim)
    window = None
    if mt == "mistral":
        window = c.get("sliding_window")
        if window is not None:
            window = integer("sliding_window")
    if mt == "qwen2" and c.get("use_sliding_window"):
        raise Error(f"{path}: use_sliding_window true (Qwen2's per-layer window) is not supported")
    for lt in c.get("layer_types") or []:
        if lt != "full_attention" and not (mt == "mistral" and lt == "sliding_attention"):
            raise Error(f"{path}: layer_types entry {lt!r} is not supported")
    biases = {"qwen2": "qkv", "llama": "qkvo" if c.get("attention_bias") else ""}.get(mt, "")
    cfg = {
        "layers": integer("num_hidden_layers"), "d_model": d, "heads": heads, "kv_heads": kv_heads,
        "head_dim": head_dim, "ffn": integer("intermediate_size"), "vocab": integer("vocab_size"),
        "rope_theta": float(rope["rope_theta"]), "rope_inv_freq": inv, "norm_eps": float(eps),
        "kv_dtype": "f32", "sliding_window": window,
    }
    facts = {"model_type": mt, "biases": biases, "tied": bool(c.get("tie_word_embeddings", False)),
             "max_position_embeddings": c.get("max_position_embeddings")}
    return cfg, facts


def read_header(path):
    """{name: (dtype, shape)} of one .safetensors file."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise Error(f"{path}: shorter than 8 bytes (not safetensors)")
            n = int.from_bytes(raw, "little")
            if n > 100 << 20:
                raise Error(f"{path}: header length {n} is out of range")
            text = f.read(n)
    except OSError as e:
        raise Error(f"{path}: cannot be read ({e.strerror})")
    try:
        h = json.loads(text)
    except ValueError as e:
        raise Error(f"{path}: bad safetensors header ({e})")
    if not isinstance(h, dict):
        raise Error(f"{path}: bad safetensors header (not an object)")
    out = {}
    for name, e in h.items():
        if name == "__metadata__":
            continue
        if not isinstance(e, dict) or "dtype" not in e or not isinstance(e.get("shape"), list):
            raise Error(f"{path}: tensor '{name}' has no dtype or shape")
        out[name] = (e["dtype"], e["shape"])
    return out


def read_checkpoint(directory):
    """{name: (dtype, shape, file)} over the checkpoint's files."""
    index = os.path.join(directory, INDEX)
    files = []
    if os.path.exists(index):
        try:
            with open(index) as f:
                wmap = json.load(f).get("weight_map")
        except (OSError, ValueError, AttributeError) as e:
            raise Error(f"{index}: cannot be read as JSON ({e})")
        if not isinstance(wmap, dict) or not wmap:
            raise Error(f"{index}: no \"weight_map\" object")
        for name, shard in wmap.items():
            if not isinstance(shard, str) or os.path.basename(shard) != shard or shard in ("", ".", ".."):
                raise Error(f"{index}: tensor '{name}' maps to {shard!r}, not a file name in the directory")
            if not os.path.exists(os.path.join(directory, shard)):
                raise Error(f"{index}: missing shard '{shard}' (the index maps '{name}' to it)")
            if shard not in files:
                files.append(shard)
    elif os.path.exists(os.path.join(directory, SINGLE)):
        files, wmap = [SINGLE], None
    else:
        raise Error(f"{directory}: no {SINGLE} or {INDEX} (not a Hugging Face checkpoint directory)")
    tensors = {}
    for shard in files:
        for name, (dt, shape) in read_header(os.path.join(directory, shard)).items():
            if name in tensors:
                raise Error(f"{directory}: tensor '{name}' is in both '{tensors[name][2]}' and '{shard}' "
                            "(duplicate tensor names are refused)")
            tensors[name] = (dt, shape, shard)
    if wmap is not None:
        for name, shard in wmap.items():
            if tensors.get(name, (0, 0, None))[2] != shard:
                raise Error(f"{index}: maps tensor '{name}' to '{shard}', which does not hold it")
    return tensors


def hf_weights(cfg, facts, tensors, directory):
    """The builder's weight map: HF names, shapes, dtypes from the files."""
    L, d, hq, hkv, hd = cfg["layers"], cfg["d_model"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    ffn, vocab = cfg["ffn"], cfg["vocab"]
    want = [("embed", "model.embed_tokens.weight", [vocab, d], "embed")]
    for l in range(L):
        p, hp = f"layers.{l}.", f"model.layers.{l}."
        want += [(p + "attn_norm", hp + "input_layernorm.weight", [d], "vec"),
                 (p + "wq", hp + "self_attn.q_proj.weight", [hq * hd, d], "oi"),
                 (p + "wk", hp + "self_attn.k_proj.weight", [hkv * hd, d], "oi"),
                 (p + "wv", hp + "self_attn.v_proj.weight", [hkv * hd, d], "oi"),
                 (p + "wo", hp + "self_attn.o_proj.weight", [d, hq * hd], "oi"),
                 (p + "mlp_norm", hp + "post_attention_layernorm.weight", [d], "vec"),
                 (p + "w1", hp + "mlp.gate_proj.weight", [ffn, d], "oi"),
                 (p + "w3", hp + "mlp.up_proj.weight", [ffn, d], "oi"),
                 (p + "w2", hp + "mlp.down_proj.weight", [d, ffn], "oi")]
        sizes = {"q": hq * hd, "k": hkv * hd, "v": hkv * hd, "o": d}
        for b in facts["biases"]:
            want.append((p + "b" + b, hp + f"self_attn.{b}_proj.bias", [sizes[b]], "vec"))
    want.append(("final_norm", "model.norm.weight", [d], "vec"))
    want.append(("lm_head", "model.embed_tokens.weight" if facts["tied"] else "lm_head.weight",
                 [vocab, d], "oi"))
    out = {}
    for key, name, shape, layout in want:
        if name not in tensors:
            hint = " (tie_word_embeddings is false)" if name == "lm_head.weight" else ""
            raise Error(f"{directory}: missing tensor '{name}'{hint}")
        dt, got, shard = tensors[name]
        if dt not in ST_DTYPES:
            raise Error(f"{directory}/{shard}: tensor '{name}' has dtype {dt} "
                        f"(supported: {', '.join(ST_DTYPES)})")
        if got != shape:
            raise Error(f"{directory}/{shard}: tensor '{name}' has shape {got}, "
                        f"but config.json implies {shape}")
        out[key] = (name, shape, ST_DTYPES[dt], layout)
    return out


def find_compiler(given):
    if given:
        return given
    local = os.path.join(HERE, "..", "build", "bin", "deltaflow-compile")
    return local if os.path.exists(local) else "deltaflow-compile"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("checkpoint", help="a Hugging Face checkpoint directory (config.json + safetensors)")
    ap.add_argument("-o", "--output", required=True, help="output prefix: OUT.mlir, OUT.so, OUT.manifest.json")
    ap.add_argument("--kv-dtype", choices=("f32", "f16"), default="f32", help="KV-cache element type (default f32)")
    ap.add_argument("--attn-dtype", choices=("f32", "bf16", "f16"), default="f32",
                    help="attention's element type (default f32). bf16/f16: Q, K and V are rounded to "
                         "it after RoPE, the KV cache holds it, and attention runs on the tensor-core "
                         "kernels (--target=cuda only)")
    ap.add_argument("--target", help="deltaflow-compile --target (default: the host)")
    ap.add_argument("--sparsity", help="deltaflow-compile --sparsity, e.g. 'policy=token-select budget=2048'")
    ap.add_argument("--delta", help="deltaflow-compile --delta, e.g. 'stride=64'")
    ap.add_argument("--compiler", help="the deltaflow-compile binary (default: build/bin, then PATH)")
    ap.add_argument("--mlir-only", action="store_true", help="write OUT.mlir and stop")
    a = ap.parse_args(argv)
    prog = "hf_import.py"
    try:
        cfg, facts = parse_config(os.path.join(a.checkpoint, "config.json"))
        cfg["kv_dtype"] = a.kv_dtype
        cfg["attn_dtype"] = a.attn_dtype
        if a.attn_dtype != "f32" and a.kv_dtype != "f32":
            raise Error(f"--kv-dtype {a.kv_dtype} with --attn-dtype {a.attn_dtype}: the KV cache "
                        f"then holds {a.attn_dtype}; leave --kv-dtype out")
        weights = hf_weights(cfg, facts, read_checkpoint(a.checkpoint), a.checkpoint)
    except Error as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    summary = {k: v for k, v in cfg.items() if k != "rope_inv_freq"}
    summary.update(facts)
    text = [f"// {facts['model_type']} checkpoint {os.path.abspath(a.checkpoint)}, imported by tools/hf_import.py",
            "// config: " + json.dumps(summary, sort_keys=True),
            "module {", gen_llama.build(cfg, None, "prefill", weights), "",
            gen_llama.build(cfg, 1, "decode", weights), "}", ""]
    out_dir = os.path.dirname(os.path.abspath(a.output))
    mlir = a.output + ".mlir"
    try:
        fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".mlir.tmp")
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(text))
        os.replace(tmp, mlir)
    except OSError as e:
        print(f"{prog}: error: {mlir}: {e.strerror or e}", file=sys.stderr)
        return 1
    dts = sorted({w[2] for w in weights.values()})
    print(f"{prog}: {facts['model_type']}: {cfg['layers']} layers, d_model {cfg['d_model']}, "
          f"{cfg['heads']}/{cfg['kv_heads']} heads of {cfg['head_dim']}, vocab {cfg['vocab']}, "
          f"{len(set(w[0] for w in weights.values()))} tensors ({'/'.join(dts)}) -> {mlir}")
    if a.mlir_only:
        return 0
    cmd = [find_compiler(a.compiler), mlir, "-o", a.output]
    if a.target:
        cmd.append(f"--target={a.target}")
    if a.sparsity:
        cmd.append(f"--sparsity={a.sparsity}")
    if a.delta:
        cmd.append(f"--delta={a.delta}")
    try:
        rc = subprocess.run(cmd).returncode
    except OSError as e:
        print(f"{prog}: error: cannot run {cmd[0]}: {e.strerror or e}", file=sys.stderr)
        return 1
    if rc != 0:
        print(f"{prog}: error: deltaflow-compile failed (exit {rc})", file=sys.stderr)
        return 1
    print(f"{prog}: compiled {a.output}.so; run: deltaflow-run generate --dense {a.output}.so "
          f"--weights {a.checkpoint} --prompt IDS.npy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
