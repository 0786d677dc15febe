#!/usr/bin/env python3
"""Random, well-scaled weights for a deltaflow module, as a .safetensors file.

  make_weights.py MANIFEST.json -o weights.safetensors [--seed N] [--entry NAME]
  make_weights.py MANIFEST.json --list [--entry NAME]

Reads a module manifest (what deltaflow-compile writes beside OUT.so) and
collects the inputs whose "role" is "weight" from every entry (or from
--entry NAME only). A name used by several entries must have the same shape
and dtype everywhere, and every weight needs a fully static shape.

Values follow a Llama-style initialisation, by name:
  contains "norm"        1 + 0.02 * N(0, 1)
  contains "embed"       N(0, 1)
  rank >= 2 [.., C, W]   N(0, 1) / sqrt(C)   (C: the second-to-last dim)
  anything else          0.02 * N(0, 1)
Each tensor's values depend only on --seed and its name, so adding or
removing a weight leaves the others unchanged.

The file: an 8-byte little-endian header length, a JSON header padded with
spaces so that the data section starts 64-byte aligned, then the tensors
back to back (sorted by name): the safetensors reference implementation
refuses bytes of the data section that no tensor owns, so there is no
padding between tensors (each stays aligned to its element size). It is written to a temporary file in the
output's directory and renamed into place: on any error no output remains.

Needs Python 3 and NumPy only.
"""
import argparse
import hashlib
import json
import math
import os
import struct
import sys
import tempfile

import numpy as np

ALIGN = 64
# Elements generated and written at a time: bounds memory for big tensors.
CHUNK = 1 << 22
# bfloat16 is written as its bits (NumPy has no bf16 type): the f32 value
# rounded to nearest even, its top 16 bits.
DTYPES = {"float32": ("F32", np.dtype("<f4")), "float16": ("F16", np.dtype("<f2")),
          "bfloat16": ("BF16", np.dtype("<u2"))}


def to_bf16_bits(a):
    """f32 array -> uint16 bf16 bits, round to nearest even (finite input)."""
    b = a.view(np.uint32)
    return ((b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype("<u2")


class Error(Exception):
    pass


def load_weights(manifest_path, entry_name=None):
    """[(name, shape tuple, manifest dtype)] sorted by name."""
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except OSError as e:
        raise Error(f"cannot read {manifest_path}: {e.strerror}")
    except json.JSONDecodeError as e:
        raise Error(f"{manifest_path}: bad JSON: {e}")
    entries = manifest.get("entries") if isinstance(manifest, dict) else None
    if not isinstance(entries, list):
        raise Error(f"{manifest_path}: no 'entries' list")
    if entry_name is not None:
        names = [e.get("name") for e in entries if isinstance(e, dict)]
        entries = [e for e in entries if isinstance(e, dict) and e.get("name") == entry_name]
        if not entries:
            raise Error(f"{manifest_path}: no entry '{entry_name}' (entries: {', '.join(map(str, names))})")

    weights = {}  # name -> (shape, dtype, entry)
    for entry in entries:
        if not isinstance(entry, dict):
            raise Error(f"{manifest_path}: an entry is not an object")
        ename = entry.get("name", "?")
        for t in entry.get("inputs", []):
            if not isinstance(t, dict) or t.get("role") != "weight":
                continue
            name = t.get("name")
            where = f"{manifest_path}: entry '{ename}' weight '{name}'"
            if not isinstance(name, str) or not name:
                raise Error(f"{manifest_path}: entry '{ename}': a weight has no name")
            dims = t.get("shape")
            if not isinstance(dims, list):
                raise Error(f"{where}: no 'shape' list")
            for d in dims:
                if not (isinstance(d, int) and not isinstance(d, bool) and d >= 0):
                    raise Error(f"{where}: shape {json.dumps(dims)} is not fully static "
                                "(weights need a static shape)")
            dtype = t.get("dtype", "float32")
            if dtype not in DTYPES:
                raise Error(f"{where}: dtype '{dtype}' (only {', '.join(DTYPES)} weights can be generated)")
            shape = tuple(dims)
            if name in weights:
                pshape, pdtype, pentry = weights[name]
                if (pshape, pdtype) != (shape, dtype):
                    raise Error(f"{where}: {dtype} {list(shape)} but entry '{pentry}' has "
                                f"{pdtype} {list(pshape)}")
                continue
            weights[name] = (shape, dtype, ename)
    if not weights:
        scope = f"entry '{entry_name}'" if entry_name else "any entry"
        raise Error(f"{manifest_path}: no input with role 'weight' in {scope}")
    return [(n, s, d) for n, (s, d, _) in sorted(weights.items())]


def scale_of(name, shape):
    """(mean, std) of the values of weight `name`."""
    lower = name.lower()
    if "norm" in lower:
        return 1.0, 0.02
    if "embed" in lower:
        return 0.0, 1.0
    if len(shape) >= 2:
        return 0.0, 1.0 / math.sqrt(max(shape[-2], 1))
    return 0.0, 0.02


def rng_for(seed, name):
    digest = hashlib.sha256(name.encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def layout(weights):
    """The header bytes and [(name, shape, np dtype, begin, end)]."""
    header, spans, offset = {}, [], 0
    for name, shape, dtype in weights:
        st, npd = DTYPES[dtype]
        nbytes = math.prod(shape) * npd.itemsize
        header[name] = {"dtype": st, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        spans.append((name, shape, npd, offset, offset + nbytes))
        offset += nbytes
    header["__metadata__"] = {"generator": "deltaflow examples/llama/make_weights.py"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % ALIGN)
    return text, spans


def write(path, weights, seed):
    header, spans = layout(weights)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(header)))
            f.write(header)
            pos = 0
            for name, shape, npd, begin, end in spans:
                assert begin == pos  # back to back: no byte without a tensor
                mean, std = scale_of(name, shape)
                rng = rng_for(seed, name)
                left = math.prod(shape)
                while left:
                    n = min(left, CHUNK)
                    a = rng.standard_normal(n, dtype=np.float32)
                    a *= np.float32(std)
                    a += np.float32(mean)
                    if npd == DTYPES["bfloat16"][1]:
                        f.write(to_bf16_bits(a).tobytes())
                    else:
                        f.write(a.astype(npd, copy=False).tobytes())
                    left -= n
                pos = end
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return 8 + len(header) + (spans[-1][4] if spans else 0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("manifest", help="a deltaflow module manifest (OUT.manifest.json)")
    p.add_argument("-o", "--output", help="the .safetensors file to write")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--entry", help="only the weights of this entry")
    p.add_argument("--list", action="store_true", help="print the weights and write nothing")
    args = p.parse_args(argv)
    if not args.list and not args.output:
        p.error("-o/--output is required (or --list)")
    if args.seed < 0:
        p.error("--seed must be >= 0")
    prog = os.path.basename(sys.argv[0])
    try:
        weights = load_weights(args.manifest, args.entry)
        total = sum(math.prod(s) * DTYPES[d][1].itemsize for _, s, d in weights)
        if args.list:
            for name, shape, dtype in weights:
                print(f"{name} {DTYPES[dtype][0]} {list(shape)}")
            print(f"{len(weights)} tensors, {total / 1e6:.2f} MB")
            return 0
        size = write(args.output, weights, args.seed)
    except Error as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{prog}: error: {args.output}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"{prog}: wrote {len(weights)} tensors, {total / 1e6:.2f} MB of weights "
          f"({size / 1e6:.2f} MB file) to {args.output} (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
