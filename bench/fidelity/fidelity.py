#!/usr/bin/env python3
"""Fidelity of sparse attention on a trained model: accuracy next to speed.

    fidelity.py [--model models/byte-llama-16k] [--lengths 4096,16384]
                [--tasks needle,multikey,kv,vartrack] [--count 5]
                [--variants dense,token-select,token-select+delta,window,window+delta]
                [--out bench/results/fidelity] [--build-dir build]

Compiles the trained byte-level model (bench/fidelity/train.py) once per
variant with tools/hf_import.py, then for every task and length runs the
fixed evaluation prompts (tasks.eval_set, seed 1234, filler from
data/eval.txt: make_corpus.py) through `deltaflow-run generate` with each
build on its own (greedy, its own context) and scores:
  accuracy   the greedy answer equals the expected one (exact bytes);
  agreement  the answer equals the dense build's answer;
  prefill s  the build's prefill time on this machine, this run.
Prints a progress line per run and a table per task x length; writes
OUT.json and, where matplotlib is installed, OUT.png (accuracy against
length per variant, one panel per task).

Variants (the policies at their documented defaults, matched key budgets):
  dense               exact attention;
  token-select        budget 2048, sinks 128, window 512, chunk 512;
  window              sinks 128, window 2560 (the same number of keys);
  adaptive            top-p, p = 0.95, budget 256-2048;
  block-topk          2048 keys in pages of 64;
  X+delta             X with the Delta correction, stride 64.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import tasks  # noqa: E402

POLICIES = {
    "dense": None,
    "token-select": "policy=token-select budget=2048 sinks=128 window=512 chunk=512",
    "window": "policy=window sinks=128 window=2560 chunk=512",
    "adaptive": "policy=adaptive p=0.95 min-budget=256 max-budget=2048 sinks=128 window=512 chunk=512",
    "block-topk": "policy=block-topk budget=2048 page=64 sinks=128 window=512 chunk=512",
}
EVAL_SEED = 1234


def variant_flags(name):
    base, _, delta = name.partition("+")
    if base not in POLICIES or delta not in ("", "delta") or (base == "dense" and delta):
        raise SystemExit(f"fidelity.py: unknown variant {name!r} (policies: {', '.join(POLICIES)}; "
                         "add +delta for the Delta correction)")
    flags = []
    if POLICIES[base]:
        flags.append(f"--sparsity={POLICIES[base]}")
    if delta:
        flags.append("--delta=stride=64")
    return flags


def compile_variants(model, variants, work, build):
    for v in variants:
        t0 = time.time()
        args = [sys.executable, os.path.join(ROOT, "tools", "hf_import.py"), model, "-o", os.path.join(work, v),
                "--compiler", os.path.join(build, "bin", "deltaflow-compile")]
        for f in variant_flags(v):  # hf_import.py takes --sparsity VALUE
            args += f.split("=", 1)
        r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode:
            raise SystemExit(f"fidelity.py: compiling {v} failed:\n{r.stderr}")
        print(f"[compile] {v}: {time.time() - t0:.0f} s", flush=True)


def answer_of(run_json):
    """The dense build's greedy bytes up to the first newline, and its prefill s."""
    with open(run_json) as f:
        j = json.load(f)
    ids = j["generated"]["dense"]["ids"]
    out = bytes(ids)
    return out[:out.index(b"\n") + 1] if b"\n" in out else out, j["builds"][0]["prefill_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "byte-llama-16k"))
    ap.add_argument("--lengths", default="4096,16384")
    ap.add_argument("--tasks", default=",".join(tasks.TASKS))
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--variants", default="dense,token-select,token-select+delta,window,window+delta")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "fidelity"))
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=0, help="deltaflow-run --threads (default: all cores)")
    a = ap.parse_args()
    variants = a.variants.split(",")
    if variants[0] != "dense":
        variants = ["dense"] + [v for v in variants if v != "dense"]
    for v in variants:
        variant_flags(v)
    lengths = [int(x) for x in a.lengths.split(",")]
    task_list = a.tasks.split(",")
    for t in task_list:
        if t not in tasks.TASKS:
            raise SystemExit(f"fidelity.py: unknown task {t!r} (tasks: {', '.join(tasks.TASKS)})")
    filler_path = os.path.join(HERE, "data", "eval.txt")
    if not os.path.exists(filler_path):
        raise SystemExit(f"fidelity.py: {filler_path} is missing: run bench/fidelity/make_corpus.py")
    filler = open(filler_path, "rb").read()
    build = os.path.abspath(a.build_dir)
    work = a.out + ".work"
    os.makedirs(work, exist_ok=True)
    compile_variants(a.model, variants, work, build)
    run = os.path.join(build, "bin", "deltaflow-run")
    cells, total, done = [], len(task_list) * len(lengths) * a.count * len(variants), 0
    t_start = time.time()
    for task in task_list:
        for length in lengths:
            stats = {v: {"correct": 0, "agree": 0, "prefill_s": 0.0} for v in variants}
            for i, (prompt, answer) in enumerate(tasks.eval_set(task, length, a.count, EVAL_SEED, filler)):
                pfile = os.path.join(work, "prompt.txt")
                with open(pfile, "wb") as f:
                    f.write(prompt)
                dense_answer = None
                for v in variants:
                    rj = os.path.join(work, "run.json")
                    cmd = [run, "generate", "--dense", os.path.join(work, v + ".so"), "--weights", a.model,
                           "--prompt-file", pfile, "--decode", str(len(answer) + 1), "--json", rj]
                    if a.threads:
                        cmd += ["--threads", str(a.threads)]
                    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                    if r.returncode:
                        raise SystemExit(f"fidelity.py: {v} on {task}@{length} #{i} failed: {r.stderr.strip()}")
                    got, pre = answer_of(rj)
                    if v == "dense":
                        dense_answer = got
                    s = stats[v]
                    s["correct"] += got == answer
                    s["agree"] += got == dense_answer
                    s["prefill_s"] += pre
                    done += 1
                    eta = (time.time() - t_start) / done * (total - done)
                    print(f"[{done}/{total}] {task}@{length} #{i} {v}: {'ok ' if got == answer else 'MISS'} "
                          f"{got!r} (prefill {pre:.2f} s) eta {eta:.0f} s", flush=True)
            for v in variants:
                s = stats[v]
                cells.append({"task": task, "length": length, "variant": v, "count": a.count,
                              "accuracy": s["correct"] / a.count, "agreement_with_dense": s["agree"] / a.count,
                              "prefill_s_mean": s["prefill_s"] / a.count})
    dense_acc = {(c["task"], c["length"]): c["accuracy"] for c in cells if c["variant"] == "dense"}
    print(f"\n{'task':9s} {'length':>6s}  " + "  ".join(f"{v:>22s}" for v in variants))
    for task in task_list:
        for length in lengths:
            row = [c for c in cells if c["task"] == task and c["length"] == length]
            cols = []
            for c in row:
                c["kept_of_dense"] = (c["accuracy"] / dense_acc[(task, length)]
                                      if dense_acc[(task, length)] else None)
                cols.append(f"{c['accuracy']:4.0%} agr {c['agreement_with_dense']:4.0%} "
                            f"{c['prefill_s_mean']:5.2f}s")
            print(f"{task:9s} {length:6d}  " + "  ".join(f"{x:>22s}" for x in cols))
    meta = {"model": os.path.relpath(a.model, ROOT), "eval_seed": EVAL_SEED, "count": a.count,
            "policies": {v: variant_flags(v) for v in variants}, "machine_threads": a.threads or os.cpu_count(),
            "seconds": round(time.time() - t_start, 1), "cells": cells}
    with open(a.out + ".json", "w") as f:
        json.dump(meta, f, indent=1)
    print(f"wrote {a.out}.json")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (scripts/install-deps.sh installs it): no plot")
        return 0
    fig, axes = plt.subplots(1, len(task_list), figsize=(4 * len(task_list), 3.4), sharey=True, squeeze=False)
    for ax, task in zip(axes[0], task_list):
        for v in variants:
            ys = [next(c["accuracy"] for c in cells if c["task"] == task and c["length"] == n and c["variant"] == v)
                  for n in lengths]
            ax.plot(lengths, ys, marker="o", label=v)
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, [f"{n // 1024}K" for n in lengths])
        ax.set_title(task)
        ax.set_xlabel("context (bytes = tokens)")
        ax.set_ylim(-0.05, 1.05)
    axes[0][0].set_ylabel(f"accuracy ({a.count} prompts per point)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(a.out + ".png", dpi=110)
    print(f"wrote {a.out}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
