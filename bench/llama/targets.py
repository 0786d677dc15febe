#!/usr/bin/env python3
"""Judges issue #12's Llama targets on the JSON files of one run.

    targets.py RESULT.json ...      (bench/results/llama-<N>-<date>.json)

Each target applies when its prompt lengths are among the files: dense
prefill tok/s at 32K >= 50% of its 4K rate; sparse prefill at 32K >= 2.5x
dense; sparse decode >= 2x at 32K and >= 1.3x at 16K; at 2K the sparse
build within 10% of dense (prefill and decode).
"""
import json
import sys


def main():
    runs = {}
    for path in sys.argv[1:]:
        try:
            with open(path) as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f"targets.py: {path}: {e}")
        runs[d["prompt_tokens"]] = d
    rows = []

    def build(n, name):
        return next(b for b in runs[n]["builds"] if b["build"] == name)

    def ratio(n, key):  # sparse over dense, tokens per second
        return build(n, "sparse")[key] / build(n, "dense")[key]

    if 4096 in runs and 32768 in runs:
        rows.append(("dense prefill tok/s at 32K / at 4K",
                     build(32768, "dense")["prefill_tok_s"] / build(4096, "dense")["prefill_tok_s"],
                     ">=", 0.5))
    if 32768 in runs:
        rows.append(("sparse prefill speedup at 32K", ratio(32768, "prefill_tok_s"), ">=", 2.5))
        rows.append(("sparse decode speedup at 32K", ratio(32768, "decode_tok_s"), ">=", 2.0))
    if 16384 in runs:
        rows.append(("sparse decode speedup at 16K", ratio(16384, "decode_tok_s"), ">=", 1.3))
    if 2048 in runs:
        for key, what in (("prefill_tok_s", "prefill"), ("decode_tok_s", "decode")):
            rows.append((f"sparse {what} at 2K / dense (within 10%)", ratio(2048, key), ">=", 0.9))
    if not rows:
        print("targets: no prompt length of the targets (2048, 4096, 16384, 32768) in this run")
    for what, value, op, bound in rows:
        print(f"  {what:44s} {value:6.2f} {op} {bound:4.2f}  {'met' if value >= bound else 'MISSED'}")


if __name__ == "__main__":
    main()
