#!/usr/bin/env python3
"""Writes the .mlir of every tensor-core attention case that
bench/gpu/tensorcore.py checks on the device (head shapes and flags are static
in a module; sequence lengths are dynamic).

    python3 bench/gpu/tensorcore_cases.py OUTDIR   # writes OUTDIR/<case>.mlir
                                                  # and OUTDIR/cases.json
"""
import json
import os
import sys

# name: (dtype, batch, Hq, Hkv, D, causal, lse[, static offset])
CASES = {
    "bf16-gqa2-d64-causal-offset": ("bf16", 1, 4, 2, 64, True, True, 7),
    "bf16-gqa4-d128-causal": ("bf16", 1, 32, 8, 128, True, False),
    "f16-gqa4-d128-causal-lse": ("f16", 1, 32, 8, 128, True, True),
    "bf16-mha-d64-lse": ("bf16", 2, 8, 8, 64, False, True),
    "bf16-gqa8-d256-causal": ("bf16", 1, 16, 2, 256, True, False),
    "bf16-gqa4-d128": ("bf16", 2, 4, 1, 128, False, False),
    "f16-gqa1-d64-causal": ("f16", 1, 4, 4, 64, True, False),
}

# Window + sinks (attn-sparsify policy=window): name -> (case, sinks, window).
# Small windows against the check's lengths (masks at the sinks' end, the
# window's edge and the diagonal); 128 + 2048 as bench/gpu/gpu_bench.py's
# window case, for the speed comparison with FlexAttention.
WINDOWS = {
    "bf16-gqa4-d128-window": ("bf16-gqa4-d128-causal", 4, 256),
    "f16-gqa2-d64-window-lse": (("f16", 1, 4, 2, 64, True, True), 16, 100),
    "bf16-gqa8-d256-window": ("bf16-gqa8-d256-causal", 0, 300),
    "bf16-gqa4-d128-window-2048": ("bf16-gqa4-d128-causal", 128, 2048),
}

# Sparse attention with a selection (TokenSelect's chunked form: sinks +
# selected keys + a local window anchored at the chunk start), the
# selection an input of the module: name -> (case, sinks, window, chunk,
# slots, one index set per KV head). The first is the bench shape (budget
# 2048, 128 sinks, window 512, chunk 512); the others put the pattern's
# edges inside the checks' lengths (odd slot counts, chunks of one or
# several CTAs, an offset, per-KV-head selections).
SELECTIONS = {
    "bf16-gqa4-d128-select": ("bf16-gqa4-d128-causal", 128, 512, 512, 2048, False),
    "f16-gqa2-d64-select-lse": (("f16", 1, 4, 2, 64, True, True), 4, 64, 64, 32, True),
    "bf16-gqa8-d256-select": ("bf16-gqa8-d256-causal", 0, 100, 128, 50, False),
    "bf16-gqa4-d128-select-offset": (("bf16", 1, 8, 2, 128, True, False, 37), 16, 64, 256, 24, True),
}

# The device selection (attn.select under token-select with a 16-bit query):
# name -> (case, budget, sinks, window, chunk). The first is the bench shape.
DEVICE_SELECT = {
    "bf16-gqa4-d128-tsel": ("bf16-gqa4-d128-causal", 2048, 128, 512, 512),
    "f16-gqa2-d64-tsel": (("f16", 1, 4, 2, 64, True, False), 32, 4, 64, 64),
    "bf16-gqa8-d256-tsel": ("bf16-gqa8-d256-causal", 50, 0, 100, 128),
    "bf16-gqa4-d128-tsel-offset": (("bf16", 2, 8, 2, 128, True, False, 37), 24, 16, 64, 32),
}

# Token-select end to end (attn-sparsify policy=token-select on a 16-bit
# attention: the device selection, then sparse attention over its indices),
# checked through deltaflow-run: name -> (case, budget, sinks, window, chunk).
TOKEN_SELECT = {
    "bf16-gqa4-d128-ts": ("bf16-gqa4-d128-causal", 2048, 128, 512, 512),
    "f16-gqa2-d64-ts-lse": (("f16", 1, 4, 2, 64, True, True), 32, 4, 64, 64),
}

# Token-select with Delta correction (attn-delta-correct on the token-select
# module: the device selection, sparse attention, Δ's dense rows and their
# combination, all on the device), checked through deltaflow-run: name ->
# (case, budget, sinks, window, chunk, stride). The first is the bench shape
# (Delta Attention's default stride 64); the others take an odd stride, a
# stride past the tail span, an offset with batch 2, and head dims 64/256.
TOKEN_SELECT_DELTA = {
    "bf16-gqa4-d128-ts-delta": ("bf16-gqa4-d128-causal", 2048, 128, 512, 512, 64),
    "f16-gqa2-d64-ts-delta": (("f16", 1, 4, 2, 64, True, False), 32, 4, 64, 64, 16),
    "bf16-gqa8-d256-ts-delta": ("bf16-gqa8-d256-causal", 50, 0, 100, 128, 200),
    "bf16-gqa4-d128-ts-delta-offset": (("bf16", 2, 8, 2, 128, True, False, 37), 24, 16, 64, 32, 5),
}

# Tile sweep of Δ's dense rows (bench/gpu/tensorcore.py --delta-bench-case):
# name -> (token-select + Δ case, tiles).
DELTA_SWEEP = {
    "sweep-delta-w8": ("bf16-gqa4-d128-ts-delta", {"tensorcore.rows-warps": 8}),
    "sweep-delta-w2": ("bf16-gqa4-d128-ts-delta", {"tensorcore.rows-warps": 2}),
    "sweep-delta-k128": ("bf16-gqa4-d128-ts-delta", {"tensorcore.rows-key-tile": 128}),
}

# Tile sweep of the main case (--tile overrides): name -> (case, tiles).
SWEEP = {
    "sweep-a64": ("bf16-gqa4-d128-causal", {"tensorcore.address-bits": 64}),
    "sweep-w4-k64": ("bf16-gqa4-d128-causal", {"tensorcore.warps": 4, "tensorcore.key-tile": 64}),
    "sweep-w4-k32": ("bf16-gqa4-d128-causal", {"tensorcore.warps": 4, "tensorcore.key-tile": 32}),
    "sweep-w8-k32": ("bf16-gqa4-d128-causal", {"tensorcore.warps": 8, "tensorcore.key-tile": 32}),
    "sweep-w4-k64-d256": ("bf16-gqa8-d256-causal", {"tensorcore.warps": 4, "tensorcore.key-tile": 64}),
    # The split-K decode loop (compiler/TensorCore/Decode.cpp, DecodeTile).
    "sweep-dec-noprefetch": ("bf16-gqa4-d128-causal", {"tensorcore.decode-prefetch": 0}),
    "sweep-dec-k8-noprefetch": ("bf16-gqa4-d128-causal", {"tensorcore.decode-keys-per-step": 8,
                                                          "tensorcore.decode-prefetch": 0}),
    "sweep-dec-k2": ("bf16-gqa4-d128-causal", {"tensorcore.decode-keys-per-step": 2}),
}


def mlir(dtype, b, hq, hkv, d, causal, lse, offset=None):
    t = lambda h: f"tensor<{b}x{h}x?x{d}x{dtype}>"
    res = [f"{t(hq)} {{deltaflow.name = \"out\"}}"]
    rets = ["%out"]
    types = [t(hq)]
    if lse:
        res.append(f"tensor<{b}x{hq}x?xf32> {{deltaflow.name = \"lse\"}}")
        rets.append("%lse")
        types.append(f"tensor<{b}x{hq}x?xf32>")
    flags = ((" causal" if causal else "") +
             (f" offset({offset})" if offset is not None else "") + (" lse" if lse else ""))
    return (f"func.func @attention(%q: {t(hq)} {{deltaflow.name = \"q\"}},\n"
            f"                     %k: {t(hkv)} {{deltaflow.name = \"k\"}},\n"
            f"                     %v: {t(hkv)} {{deltaflow.name = \"v\"}})\n"
            f"    -> ({', '.join(res)}) {{\n"
            f"  {', '.join(rets)} = attn.attention %q, %k, %v{flags}\n"
            f"      : {t(hq)}, {t(hkv)}, {t(hkv)}\n"
            f"  return {', '.join(rets)} : {', '.join(types)}\n}}\n")


def mlir_select(dtype, b, hq, hkv, d, causal, lse, offset=None, *, sinks, window, chunk,
                slots, per_kv):
    assert causal
    t = lambda h: f"tensor<{b}x{h}x?x{d}x{dtype}>"
    it = f"tensor<{b}x{hkv if per_kv else 1}x?x{slots}xi32>"
    res = [f"{t(hq)} {{deltaflow.name = \"out\"}}"]
    rets, types = ["%out"], [t(hq)]
    if lse:
        res.append(f"tensor<{b}x{hq}x?xf32> {{deltaflow.name = \"lse\"}}")
        rets.append("%lse")
        types.append(f"tensor<{b}x{hq}x?xf32>")
    flags = (f" offset({offset})" if offset is not None else "") + (" lse" if lse else "")
    return (f"func.func @attention(%q: {t(hq)} {{deltaflow.name = \"q\"}},\n"
            f"                     %k: {t(hkv)} {{deltaflow.name = \"k\"}},\n"
            f"                     %v: {t(hkv)} {{deltaflow.name = \"v\"}},\n"
            f"                     %idx: {it} {{deltaflow.name = \"indices\"}})\n"
            f"    -> ({', '.join(res)}) {{\n"
            f"  {', '.join(rets)} = attn.sparse_attention %q, %k, %v indices(%idx : {it})\n"
            f"      sinks({sinks}) window({window}) chunk({chunk}){flags}\n"
            f"      : {t(hq)}, {t(hkv)}, {t(hkv)}\n"
            f"  return {', '.join(rets)} : {', '.join(types)}\n}}\n")


def mlir_device_select(dtype, b, hq, hkv, d, causal, lse, offset=None, *, budget, sinks,
                       window, chunk):
    t = lambda h: f"tensor<{b}x{h}x?x{d}x{dtype}>"
    it = f"tensor<{b}x1x?x{budget}xi32>"
    off = f" offset({offset})" if offset is not None else ""
    return (f"func.func @select(%q: {t(hq)} {{deltaflow.name = \"q\"}},\n"
            f"                  %k: {t(hkv)} {{deltaflow.name = \"k\"}})\n"
            f"    -> ({it} {{deltaflow.name = \"indices\"}}) {{\n"
            f"  %idx = attn.select %q, %k policy(#attn.token_select<budget = {budget}, "
            f"sinks = {sinks}, window = {window}, chunk = {chunk}>){off}\n"
            f"      : {t(hq)}, {t(hkv)} -> {it}\n"
            f"  return %idx : {it}\n}}\n")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, c in CASES.items():
        with open(os.path.join(out, name + ".mlir"), "w") as f:
            f.write(mlir(*c))
    # The sweep's modules: the same .mlir, compiled with --tile overrides
    # listed in OUT/NAME.tiles.
    for name, (base, tiles) in SWEEP.items():
        with open(os.path.join(out, name + ".mlir"), "w") as f:
            f.write(mlir(*CASES[base]))
        with open(os.path.join(out, name + ".tiles"), "w") as f:
            f.write(" ".join(f"--tile {k}={v}" for k, v in tiles.items()))
    # Window cases: the same .mlir, sparsified (OUT/NAME.flags: one
    # deltaflow-compile argument per line).
    for name, (base, sinks, window) in WINDOWS.items():
        c = CASES[base] if isinstance(base, str) else base
        with open(os.path.join(out, name + ".mlir"), "w") as f:
            f.write(mlir(*c))
        with open(os.path.join(out, name + ".flags"), "w") as f:
            f.write(f"--sparsity=policy=window sinks={sinks} window={window}\n")
    sel_keys = ("sinks", "window", "chunk", "slots", "per_kv")
    for name, (base, *pattern) in SELECTIONS.items():
        c = CASES[base] if isinstance(base, str) else base
        with open(os.path.join(out, name + ".mlir"), "w") as f:
            f.write(mlir_select(*c, **dict(zip(sel_keys, pattern))))
    ds_keys = ("budget", "sinks", "window", "chunk")
    for name, (base, budget, sinks, window, chunk) in TOKEN_SELECT.items():
        c = CASES[base] if isinstance(base, str) else base
        with open(os.path.join(out, name + ".mlir"), "w") as f:
            f.write(mlir(*c))
        with open(os.path.join(out, name + ".flags"), "w") as f:
            f.write(f"--sparsity=policy=token-select budget={budget} sinks={sinks} "
                    f"window={window} chunk={chunk}\n")
    for name, (base, budget, sinks, window, chunk, stride) in TOKEN_SELECT_DELTA.items():
        c = CASES[base] if isinstance(base, str) else base
        with open(os.path.join(out, name + ".mlir"), "w") as f:
            f.write(mlir(*c))
        with open(os.path.join(out, name + ".flags"), "w") as f:
            f.write(f"--sparsity=policy=token-select budget={budget} sinks={sinks} "
                    f"window={window} chunk={chunk}\n--delta=stride={stride}\n")
    for name, (base, tiles) in DELTA_SWEEP.items():
        for ext in (".mlir", ".flags"):
            with open(os.path.join(out, base + ext)) as f, open(os.path.join(out, name + ext), "w") as g:
                g.write(f.read())
        with open(os.path.join(out, name + ".tiles"), "w") as f:
            f.write(" ".join(f"--tile {k}={v}" for k, v in tiles.items()))
    for name, (base, *pattern) in DEVICE_SELECT.items():
        c = CASES[base] if isinstance(base, str) else base
        with open(os.path.join(out, name + ".mlir"), "w") as f:
            f.write(mlir_device_select(*c, **dict(zip(ds_keys, pattern))))
    keys = ("dtype", "batch", "hq", "hkv", "d", "causal", "lse", "offset")
    cases = {n: dict(zip(keys, c)) for n, c in CASES.items()}
    for name, (base, sinks, window) in WINDOWS.items():
        c = CASES[base] if isinstance(base, str) else base
        cases[name] = dict(zip(keys, c), sinks=sinks, window=window)
    for name, (base, *pattern) in SELECTIONS.items():
        c = CASES[base] if isinstance(base, str) else base
        cases[name] = dict(zip(keys, c), **dict(zip(sel_keys, pattern)), select=True)
    for name, (base, *pattern) in DEVICE_SELECT.items():
        c = CASES[base] if isinstance(base, str) else base
        cases[name] = dict(zip(keys, c), **dict(zip(ds_keys, pattern)), device_select=True)
    for name, (base, *pattern) in TOKEN_SELECT.items():
        c = CASES[base] if isinstance(base, str) else base
        cases[name] = dict(zip(keys, c), **dict(zip(ds_keys, pattern)), token_select=True)
    for name, (base, *pattern) in TOKEN_SELECT_DELTA.items():
        c = CASES[base] if isinstance(base, str) else base
        cases[name] = dict(zip(keys, c), **dict(zip(ds_keys, pattern[:4])), token_select=True,
                           delta=pattern[4])
    for name, (base, tiles) in list(SWEEP.items()) + list(DELTA_SWEEP.items()):
        cases[name] = dict(cases[base], tiles=tiles, sweep=True)
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)


if __name__ == "__main__":
    main()
