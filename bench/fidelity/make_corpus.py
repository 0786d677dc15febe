#!/usr/bin/env python3
"""The filler text of the fidelity model: documentation from Debian packages.

    make_corpus.py [-o bench/fidelity/data] [--mb 24]

Reads, in sorted path order, the plain-text files under /usr/share/doc
(README, NEWS, changelog, copyright; gzip-compressed ones too) and
/usr/share/common-licenses, keeps printable ASCII, tabs and newlines
(other bytes dropped, runs of blank lines squeezed), skips documents
shorter than 2 KB and exact duplicates, and writes
  DATA/train.txt  the documents whose SHA-256 of the path is below 95%
  DATA/eval.txt   the other 5% (filler of the evaluation prompts)
until --mb megabytes are collected. Deterministic for a given package set;
the file list and sizes are in DATA/manifest.json.
"""
import argparse
import gzip
import hashlib
import json
import os
import re

ROOTS = ["/usr/share/doc", "/usr/share/common-licenses"]
KEEP = re.compile(rb"[^\x20-\x7e\t\n]")


def documents():
    for root in ROOTS:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for f in sorted(filenames):
                path = os.path.join(dirpath, f)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                low = f.lower()
                if not (low.startswith(("readme", "news", "changelog", "copyright", "changes", "todo", "faq"))
                        or root.endswith("licenses")):
                    continue
                try:
                    raw = gzip.open(path).read() if f.endswith(".gz") else open(path, "rb").read()
                except (OSError, EOFError):
                    continue
                yield path, raw


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    ap.add_argument("--mb", type=float, default=24)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    seen, files, sizes = set(), [], {"train": 0, "eval": 0}
    outs = {k: open(os.path.join(a.out, f"{k}.txt"), "wb") for k in sizes}
    for path, raw in documents():
        text = KEEP.sub(b"", raw)
        text = re.sub(rb"\n{3,}", b"\n\n", text)
        if len(text) < 2048:
            continue
        digest = hashlib.sha256(text).digest()
        if digest in seen:
            continue
        seen.add(digest)
        split = "eval" if hashlib.sha256(path.encode()).digest()[0] >= 243 else "train"
        outs[split].write(text + b"\n\n")
        sizes[split] += len(text) + 2
        files.append({"path": path, "bytes": len(text), "split": split})
        if sum(sizes.values()) >= a.mb * 1e6:
            break
    for f in outs.values():
        f.close()
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump({"roots": ROOTS, "sizes": sizes, "files": files}, f, indent=0)
    print(f"make_corpus.py: {len(files)} documents, train {sizes['train'] / 1e6:.1f} MB, "
          f"eval {sizes['eval'] / 1e6:.2f} MB -> {a.out}")


if __name__ == "__main__":
    main()
