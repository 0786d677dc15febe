#!/usr/bin/env python3
"""Checks examples/llama/make_weights.py (CTest make_weights_py).

  check_safetensors.py check FILE MANIFEST
      FILE is a valid .safetensors file holding exactly the role "weight"
      inputs of MANIFEST (F32, same shapes), header padded to 8 bytes, the
      tensors back to back covering the data section exactly (as the
      reference implementation requires) and 4-byte aligned in the file,
      values finite, not all zero and scaled as make_weights.py documents.
  check_safetensors.py e2e --make-weights SCRIPT --manifest MANIFEST --workdir DIR
      runs SCRIPT on MANIFEST, checks the file as above, then the seed,
      --entry, --list and the failures: a dynamic-shaped weight and a weight
      with two shapes exit non-zero and leave no file behind (and an existing
      output untouched).

Parses the file independently of make_weights.py; Python 3 and NumPy only.
"""
import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys

import numpy as np


def fail(msg):
    print(f"check_safetensors: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def expected_weights(manifest, entry=None):
    with open(manifest) as f:
        m = json.load(f)
    out = {}
    for e in m["entries"]:
        if entry is not None and e["name"] != entry:
            continue
        for t in e["inputs"]:
            if t.get("role") == "weight":
                out[t["name"]] = t["shape"]
    return out


def read(path):
    """{name: (header entry, np array)} and the header length."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        fail(f"{path}: {len(blob)} bytes")
    (n,) = struct.unpack("<Q", blob[:8])
    if n % 8:
        fail(f"{path}: header length {n} is not a multiple of 8")
    if 8 + n > len(blob):
        fail(f"{path}: header length {n} beyond the file")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n:]
    out, spans = {}, []
    for name, e in header.items():
        if name == "__metadata__":
            if not all(isinstance(v, str) for v in e.values()):
                fail(f"{path}: __metadata__ values must be strings")
            continue
        if e.get("dtype") != "F32":
            fail(f"{path}: {name}: dtype {e.get('dtype')}")
        begin, end = e["data_offsets"]
        if not 0 <= begin <= end <= len(data):
            fail(f"{path}: {name}: data_offsets {e['data_offsets']} (data {len(data)} bytes)")
        if end - begin != 4 * math.prod(e["shape"]):
            fail(f"{path}: {name}: {end - begin} bytes for shape {e['shape']}")
        if (8 + n + begin) % 4:
            fail(f"{path}: {name}: file offset {8 + n + begin} not 4-byte aligned")
        spans.append((begin, end, name))
        a = np.frombuffer(data[begin:end], dtype="<f4").reshape(e["shape"])
        out[name] = (e, a)
    spans.sort()
    covered = 0
    for b, e, name in spans:
        if b != covered:
            fail(f"{path}: {name} starts at {b}, the previous tensor ends at {covered}")
        covered = e
    if covered != len(data):
        fail(f"{path}: the tensors cover {covered} of {len(data)} data bytes")
    return out, n


def check(path, manifest, entry=None):
    want = expected_weights(manifest, entry)
    got, _ = read(path)
    if sorted(got) != sorted(want):
        fail(f"{path}: tensors {sorted(got)}, expected {sorted(want)}")
    for name, (e, a) in got.items():
        if e["shape"] != want[name]:
            fail(f"{path}: {name}: shape {e['shape']}, expected {want[name]}")
        if not np.all(np.isfinite(a)):
            fail(f"{path}: {name}: non-finite values")
        if not np.any(a):
            fail(f"{path}: {name}: all zero")
        shape = e["shape"]
        if "norm" in name.lower():
            mean, std = 1.0, 0.02
        elif "embed" in name.lower():
            mean, std = 0.0, 1.0
        elif len(shape) >= 2:
            mean, std = 0.0, 1.0 / math.sqrt(shape[-2])
        else:
            mean, std = 0.0, 0.02
        if np.max(np.abs(a - mean)) > 8 * std:
            fail(f"{path}: {name}: values beyond 8 sigma of N({mean}, {std})")
        if a.size >= 256 and not 0.75 * std < np.std(a) < 1.25 * std:
            fail(f"{path}: {name}: std {np.std(a):.4g}, expected about {std:.4g}")
    print(f"check_safetensors: {path}: {len(got)} tensors OK")


def run(cmd, ok=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if ok and p.returncode != 0:
        fail(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()}")
    if not ok and p.returncode == 0:
        fail(f"{' '.join(cmd)} succeeded; it should have failed")
    return p


def e2e(args):
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    gen = [sys.executable, args.make_weights]
    w = lambda name: os.path.join(args.workdir, name)

    p = run(gen + [args.manifest, "-o", w("a.safetensors"), "--seed", "3"])
    if "23 tensors" not in p.stdout or p.stdout.count("\n") != 1:
        fail(f"summary line: {p.stdout!r}")
    check(w("a.safetensors"), args.manifest)
    # Same seed, same bytes; another seed, other values.
    run(gen + [args.manifest, "-o", w("b.safetensors"), "--seed", "3"])
    run(gen + [args.manifest, "-o", w("c.safetensors"), "--seed", "4"])
    with open(w("a.safetensors"), "rb") as fa, open(w("b.safetensors"), "rb") as fb, \
            open(w("c.safetensors"), "rb") as fc:
        a, b, c = fa.read(), fb.read(), fc.read()
    if a != b:
        fail("same seed, different files")
    if a == c or len(a) != len(c):
        fail("another seed should change the values only")
    # --entry: only that entry's weights, values independent of the others.
    run(gen + [args.manifest, "-o", w("d.safetensors"), "--seed", "3", "--entry", "decode"])
    check(w("d.safetensors"), args.manifest, "decode")
    full, _ = read(w("a.safetensors"))
    part, _ = read(w("d.safetensors"))
    for name, (_, arr) in part.items():
        if not np.array_equal(arr, full[name][1]):
            fail(f"{name}: values depend on which other weights are written")
    run(gen + [args.manifest, "--list", "--entry", "nope"], ok=False)
    # --list writes nothing.
    before = sorted(os.listdir(args.workdir))
    p = run(gen + [args.manifest, "--list"])
    lines = p.stdout.strip().splitlines()
    if len(lines) != 24 or "tok_embeddings.weight F32 [32, 16]" not in lines:
        fail(f"--list output: {p.stdout!r}")
    if sorted(os.listdir(args.workdir)) != before:
        fail("--list wrote a file")

    with open(args.manifest) as f:
        m = json.load(f)
    for case, edit, needle in (
            ("dynamic", lambda t: t["shape"].__setitem__(0, -1), "static"),
            ("derived", lambda t: t["shape"].__setitem__(0, {"like": "tokens", "dim": 1}), "static"),
            ("mismatch", lambda t: t["shape"].__setitem__(1, 17), "entry 'prefill'")):
        bad = json.loads(json.dumps(m))
        entry = bad["entries"][1]  # decode
        target = next(t for t in entry["inputs"] if t["name"] == "output.weight")
        edit(target)
        path = w(f"{case}.manifest.json")
        with open(path, "w") as f:
            json.dump(bad, f)
        out = w(f"{case}.safetensors")
        p = run(gen + [path, "-o", out], ok=False)
        if "output.weight" not in p.stderr or needle not in p.stderr:
            fail(f"{case}: message {p.stderr.strip()!r}")
        # An existing output stays as it was.
        with open(w("keep.safetensors"), "wb") as f:
            f.write(b"old")
        run(gen + [path, "-o", w("keep.safetensors")], ok=False)
        with open(w("keep.safetensors"), "rb") as f:
            if f.read() != b"old":
                fail(f"{case}: a failed run changed an existing output")
        os.unlink(w("keep.safetensors"))
        os.unlink(path)
        left = [f for f in os.listdir(args.workdir) if f.startswith(case) or f.endswith(".tmp")]
        if left:
            fail(f"{case}: left {left}")
    # An error while writing (the output is a directory): no temporary remains.
    os.mkdir(w("dir.safetensors"))
    run(gen + [args.manifest, "-o", w("dir.safetensors")], ok=False)
    left = [f for f in os.listdir(args.workdir) if f.endswith(".tmp")]
    if left:
        fail(f"write error left {left}")
    print("check_safetensors: make_weights.py e2e OK")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("file")
    c.add_argument("manifest")
    c.add_argument("--entry")
    e = sub.add_parser("e2e")
    e.add_argument("--make-weights", required=True)
    e.add_argument("--manifest", required=True)
    e.add_argument("--workdir", required=True)
    args = p.parse_args()
    if args.cmd == "check":
        check(args.file, args.manifest, args.entry)
    else:
        e2e(args)


if __name__ == "__main__":
    main()
