#!/usr/bin/env python3
"""Writes the seed corpora of test/fuzz/corpus/ (the regression inputs there,
named regress-*, are kept as they are).

  make_seeds.py [--fixtures BUILD/test/unit/fixtures] [--compile BUILD/bin/deltaflow-compile]

  npy/           arrays as numpy.save writes them (f4, f2, i4, 0-d, empty,
                 format versions 1, 2 and 3) and the kinds it refuses
                 (Fortran order, big-endian, f8); the malformed headers of
                 issue #16
  safetensors/   files as the reference implementation lays them out (header
                 padded to 8, tensors back to back), one by
                 examples/llama/make_weights.py, and ones it refuses
  manifest/      the manifests of the unit-test fixtures (--fixtures) and of a
                 few modules compiled here (--compile): sparse + delta,
                 f16 K/V with LSE, the CUDA target's tensor-core (PTX) variant
  attn-mlir/     every .mlir of test/lit, test/unit/fixtures and examples,
                 split at "// -----" as -split-input-file does
  pass-options/  the --sparsity / --delta strings of the lit tests

Needs NumPy. Seeds are small on purpose: libFuzzer mutates faster.
"""
import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def reset(name):
    d = os.path.join(CORPUS, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if not f.startswith("regress-"):
            os.remove(os.path.join(d, f))
    return d


def npy_seeds():
    d = reset("npy")
    rng = np.random.default_rng(16)

    def save(name, a, version=None):
        path = os.path.join(d, name + ".npy")
        with open(path, "wb") as f:
            np.lib.format.write_array(f, a, version=version, allow_pickle=False)

    save("f32-4d", rng.standard_normal((1, 2, 3, 4)).astype("<f4"))
    save("f32-1d", np.arange(5, dtype="<f4"))
    save("f32-0d", np.array(1.5, dtype="<f4"))
    save("f32-empty", np.zeros((0,), dtype="<f4"))
    save("f32-zero-dim", np.zeros((2, 0, 3), dtype="<f4"))
    save("f16-2d", rng.standard_normal((2, 3)).astype("<f2"))
    save("i32-tokens", np.array([1, 95, 7], dtype="<i4"))
    save("f32-v2", np.ones((2, 2), dtype="<f4"), version=(2, 0))
    save("f32-v3", np.ones((3,), dtype="<f4"), version=(3, 0))
    save("refused-fortran", np.asfortranarray(np.ones((2, 3), dtype="<f4")))
    save("refused-big-endian", np.ones((2,), dtype=">f4"))
    save("refused-f8", np.ones((2,), dtype="<f8"))

    # Issue #16's headers: a non-integer shape entry, a dimension beyond
    # int64, a 2^62 dimension (all refused, naming the file).
    def raw(name, header, data=b""):
        header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
        with open(os.path.join(d, name + ".npy"), "wb") as f:
            f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)))
            f.write(header.encode("latin1") + data)

    raw("issue16-not-integer", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, x6, 64), }")
    raw("issue16-beyond-int64", "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }")
    raw("issue16-huge", "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 1), }")


def st_write(path, tensors, metadata=None, align=8):
    """tensors: [(name, dtype name, shape, bytes)] written back to back in
    the given order, as the reference implementation does."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    off = 0
    for name, dt, shape, data in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    if align > 1:
        text += b" " * ((align - len(text) % align) % align)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _, _, _, data in tensors:
            f.write(data)


def safetensors_seeds():
    d = reset("safetensors")
    rng = np.random.default_rng(16)
    f32 = lambda *s: rng.standard_normal(s).astype("<f4")
    bf16 = lambda a: (a.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()

    st_write(os.path.join(d, "one-f32.safetensors"), [("w", "F32", (2, 3), f32(2, 3).tobytes())])
    st_write(os.path.join(d, "dtypes.safetensors"), [
        ("a.f32", "F32", (2, 2), f32(2, 2).tobytes()),
        ("b.i32", "I32", (3,), np.array([1, 2, 3], "<i4").tobytes()),
        ("c.f16", "F16", (2, 2), f32(2, 2).astype("<f2").tobytes()),
        ("d.bf16", "BF16", (3,), bf16(f32(3))),
    ], metadata={"format": "pt"})
    st_write(os.path.join(d, "empty-and-scalar.safetensors"), [
        ("empty", "F32", (0, 4), b""),
        ("scalar", "F32", (), f32(1).tobytes()),
    ])
    st_write(os.path.join(d, "model-like.safetensors"), [
        ("layers.0.wq", "F32", (64, 1, 4), f32(64, 1, 4).tobytes()),
        ("norm", "F16", (4,), f32(4).astype("<f2").tobytes()),
    ])
    # Header not padded: data not 4-byte aligned in memory (copied, not viewed).
    st_write(os.path.join(d, "misaligned.safetensors"),
             [("x", "F32", (3,), f32(3).tobytes())], align=1)
    st_write(os.path.join(d, "no-tensors.safetensors"), [], metadata={"k": "v"})
    # Refused: an unknown dtype, an overlap, a byte no tensor owns.
    st_write(os.path.join(d, "refused-dtype.safetensors"), [("x", "F64", (1,), b"\0" * 8)])
    with open(os.path.join(d, "refused-overlap.safetensors"), "wb") as f:
        text = b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}'
        f.write(struct.pack("<Q", len(text)) + text + b"\0" * 12)
    with open(os.path.join(d, "refused-unowned.safetensors"), "wb") as f:
        text = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
        f.write(struct.pack("<Q", len(text)) + text + b"\0" * 8)
    with open(os.path.join(d, "refused-duplicate.safetensors"), "wb") as f:
        text = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
        f.write(struct.pack("<Q", len(text)) + text + b"\0" * 4)

    # examples/llama/make_weights.py, on a two-tensor manifest.
    with tempfile.TemporaryDirectory() as tmp:
        m = {"format": "deltaflow-module", "version": 1, "target": "host", "library": "x.so",
             "entries": [{"name": "prefill", "inputs": [
                 {"name": "embed", "dtype": "float32", "shape": [8, 4], "role": "weight"},
                 {"name": "norm", "dtype": "float16", "shape": [4], "role": "weight"}],
                 "outputs": [], "temporaries": [], "kernels": []}]}
        mp = os.path.join(tmp, "m.json")
        with open(mp, "w") as f:
            json.dump(m, f)
        subprocess.run([sys.executable, os.path.join(ROOT, "examples/llama/make_weights.py"), mp,
                        "-o", os.path.join(d, "make-weights.safetensors")], check=True)


def manifest_seeds(fixtures, compile_tool):
    d = reset("manifest")
    if fixtures:
        for f in sorted(os.listdir(fixtures)):
            if f.endswith(".manifest.json") and f != "attention_avx2.manifest.json":
                shutil.copy(os.path.join(fixtures, f), os.path.join(d, f))
    if compile_tool:
        jobs = [
            ("sparse-delta", "examples/attention.mlir",
             ["--sparsity=policy=token-select budget=64 sinks=16 window=64 chunk=64", "--delta=stride=32"]),
            ("block-topk", "examples/attention.mlir",
             ["--sparsity=policy=block-topk budget=64 page=16 sinks=16 window=64 chunk=64"]),
            ("f16kv-lse", "examples/attention_lse.mlir", []),
            ("cuda-bf16", "examples/attention_bf16.mlir", ["--target=cuda"]),
        ]
        with tempfile.TemporaryDirectory() as tmp:
            for name, src, opts in jobs:
                out = os.path.join(tmp, name)
                r = subprocess.run([compile_tool, os.path.join(ROOT, src), "-o", out] + opts,
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"make_seeds: skipping manifest {name}: {r.stderr.strip()}", file=sys.stderr)
                    continue
                shutil.copy(out + ".manifest.json", os.path.join(d, name + ".manifest.json"))
    # Hand-made: a derived dimension, a rows selector, a dense fallback.
    with open(os.path.join(d, "derived.manifest.json"), "w") as f:
        json.dump({"format": "deltaflow-module", "version": 1, "target": "host", "library": "d.so",
                   "entries": [{"name": "e",
                                "inputs": [{"name": "q", "dtype": "float32", "shape": [1, 2, -1, 4], "role": "input"}],
                                "outputs": [{"name": "out", "dtype": "float32", "shape": [1, 2, {"like": "q", "dim": 2}, 4]}],
                                "temporaries": [{"name": "t", "dtype": "int32",
                                                 "shape": [1, 1, {"like": "q", "dim": 2, "div": 16, "add": 1}, 8]}],
                                "kernels": [
                                    {"name": "g0", "kind": "graph", "loc": "a.mlir:1:1", "inputs": ["q"],
                                     "outputs": ["t"], "params": {"ops": "tosa.cast"},
                                     "variants": [{"symbol": "g0", "max_rows": 1}, {"symbol": "g0_n"}],
                                     "rows": {"buffer": "q", "dim": 2}, "deps": []},
                                    {"name": "g1", "kind": "graph", "loc": "a.mlir:2:1", "inputs": ["t", "q"],
                                     "outputs": ["out"], "params": {"ops": "tosa.add"},
                                     "variants": [{"symbol": "g1"}], "deps": [0]}]}]}, f)


def split_mlir(text):
    return [c.strip() + "\n" for c in re.split(r"^// -----\s*$", text, flags=re.M) if c.strip()]


def mlir_seeds(fixtures):
    d = reset("attn-mlir")
    sources = []
    for base in ["test/lit", "test/unit/fixtures", "examples"]:
        for dirpath, _, files in os.walk(os.path.join(ROOT, base)):
            sources += [os.path.join(dirpath, f) for f in files if f.endswith(".mlir")]
    if fixtures and os.path.exists(os.path.join(fixtures, "tiny_llama.mlir")):
        sources.append(os.path.join(fixtures, "tiny_llama.mlir"))
    seen = set()
    for src in sorted(sources):
        rel = os.path.relpath(src, ROOT) if src.startswith(ROOT) else os.path.basename(src)
        stem = re.sub(r"[^A-Za-z0-9]+", "-", rel[:-len(".mlir")]).strip("-")
        with open(src) as f:
            chunks = split_mlir(f.read())
        for i, c in enumerate(chunks):
            if len(c) > 16384 or c in seen:
                continue
            seen.add(c)
            name = stem + (f"-{i}" if len(chunks) > 1 else "") + ".mlir"
            with open(os.path.join(d, name), "w") as f:
                f.write(c)


def pass_option_seeds():
    d = reset("pass-options")
    # SPARSIFY, or SPARSIFY "\n" DELTA (PassOptionsFuzzer.cpp).
    seeds = {
        "default": "",
        "token-select": "policy=token-select budget=2048 sinks=128 window=512 chunk=512",
        "token-select-delta": "policy=token-select budget=64 sinks=16 window=64 chunk=64\nstride=32",
        "window": "policy=window sinks=4 window=16 chunk=32",
        "adaptive": "policy=adaptive p=0.9 min-budget=8 max-budget=96 sinks=4 window=16 chunk=32",
        "block-topk": "policy=block-topk budget=70 page=16 sinks=4 window=16 chunk=32\nstride=16",
        "strided": "policy=strided budget=64 sinks=4 window=16 chunk=32 param=stride:4",
        "all-options": "policy=adaptive budget=64 sinks=16 window=64 chunk=64 min-budget=16 max-budget=128 page=16 p=0.5",
        "delta-only": "policy=window sinks=4 window=8\nstride=1",
        "bad-typo": "policy=token-select param=windw:64",
        "bad-nan": "policy=strided param=stride:nan",
        "bad-form": "param=dilation",
        "bad-budget": "budget=0",
        "bad-unknown": "no-such=1",
        "bad-value": "budget=lots",
        "bad-stride": "policy=window\nstride=9000",
        "bad-policy": "policy=nope",
        "quoted": "policy='token-select' budget=16 param={stride:2}",
        "param-list": "policy=strided budget=16 param=stride:2,stride:3",
    }
    for name, text in seeds.items():
        with open(os.path.join(d, name + ".txt"), "w") as f:
            f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fixtures", help="a build's test/unit/fixtures (manifests, tiny_llama.mlir)")
    ap.add_argument("--compile", help="a deltaflow-compile, for more manifests")
    a = ap.parse_args()
    npy_seeds()
    safetensors_seeds()
    manifest_seeds(a.fixtures, a.compile)
    mlir_seeds(a.fixtures)
    pass_option_seeds()
    for name in sorted(os.listdir(CORPUS)):
        p = os.path.join(CORPUS, name)
        if os.path.isdir(p):
            print(f"{name}: {len(os.listdir(p))} files")


if __name__ == "__main__":
    main()
