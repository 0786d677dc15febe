#!/usr/bin/env python3
"""Plots train.py's loss log: plot_loss.py TRAIN.json [OUT.png]

Loss per byte (nats) against step: all tokens, the filler text, and the
answer bytes of the retrieval tasks, with the sequence length of each phase
of the curriculum on a second axis.
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.strip().splitlines()[0])
    with open(sys.argv[1]) as f:
        j = json.load(f)
    out = sys.argv[2] if len(sys.argv) == 3 else os.path.splitext(sys.argv[1])[0] + ".png"
    log = j["log"]
    steps = [r["step"] for r in log]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for key, label in (("loss", "text + answers"), ("text_loss", "text"), ("answer_loss", "answers")):
        ax.plot(steps, [r[key] for r in log], label=label, linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per byte)")
    ax2 = ax.twinx()
    ax2.plot(steps, [r["seq_len"] for r in log], color="grey", linestyle=":", label="sequence length")
    ax2.set_ylabel("sequence length (bytes)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{j['params'] / 1e6:.1f}M parameters, {j['tokens'] / 1e9:.2f}B tokens, "
                 f"{j['seconds']:.0f} s on the H200 (seed {j['seed']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
