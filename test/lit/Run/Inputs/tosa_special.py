"""TOSA elementwise ops and reductions at special values, against a float64
NumPy evaluation of the TOSA specification (tosa 1.0, "Floating-point
behaviour": NaN propagates through every op, including maximum, minimum,
clamp and reduce_max; +-inf and signed zeros follow IEEE 754; CAST to an
integer rounds to nearest even and saturates, and NaN casts to 0).

    tosa_special.py mlir FILE    writes the module (one entry per op)
    tosa_special.py gen DIR      writes the inputs
    tosa_special.py check DIR    compares every output; prints PASS

Inputs are every special value (+-0, +-inf, NaN, subnormals, the float32
extremes, values beyond int32) and ordinary ones; binary ops see every pair. Casts
to bf16 and f16 (round to nearest even, NaN kept, overflow to inf) are
checked bit for bit, on ties and near-ties of both types as well.
Transcendental ops are compared to 2e-6 relative (Halide's approximations);
sin and cos only where |x| <= 1e4 (their argument reduction is not exact for
huge arguments; the result must still be finite and within [-1, 1]); pow
only where TOSA defines it (x > 0, or x = 0 with y > 0).
"""
import sys

import numpy as np

F32 = np.finfo(np.float32)
SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, float(F32.tiny), float(F32.max),
           -float(F32.max), 1.0, -1.0, 0.5, -0.5, 2.5, 3.5, -2.5, 3e9, -3e9, 1e10, 88.8, -104.0,
           1e4, 7.25, -3.75, 1e-3, 100.0, -20.0, 0.25, 4.0, 1.5, -7.0]
UNARY = ["exp", "log", "rsqrt", "reciprocal", "sigmoid", "tanh", "negate", "abs", "sin", "cos"]
BINARY = ["add", "sub", "mul", "maximum", "minimum", "pow"]
W = 16  # columns


def values_unary():
    v = np.array(SPECIAL, dtype=np.float32)
    return v.reshape(-1, W)


def values_binary():
    v = np.array(SPECIAL, dtype=np.float32)
    x, y = np.repeat(v, len(v)), np.tile(v, len(v))
    return x.reshape(-1, W), y.reshape(-1, W)


def write_mlir(path):
    t = "tensor<?x16xf32>"
    out = ["// TOSA ops at special values (test/lit/Run/Inputs/tosa_special.py)."]
    for op in UNARY:
        out.append(f'func.func @{op}(%x: {t} {{deltaflow.name = "x"}}) -> ({t} {{deltaflow.name = "out"}}) {{\n'
                   f"  %r = tosa.{op} %x : ({t}) -> {t}\n  return %r : {t}\n}}")
    for op in BINARY:
        attr = " {shift = 0 : i8}" if op == "mul" else ""
        out.append(f'func.func @{op}(%x: {t} {{deltaflow.name = "x"}}, %y: {t} {{deltaflow.name = "y"}}) '
                   f'-> ({t} {{deltaflow.name = "out"}}) {{\n'
                   f"  %r = tosa.{op} %x, %y{attr} : ({t}, {t}) -> {t}\n  return %r : {t}\n}}")
    out.append(f'func.func @clamp(%x: {t} {{deltaflow.name = "x"}}) -> ({t} {{deltaflow.name = "out"}}) {{\n'
               f"  %r = tosa.clamp %x {{min_fp = -3.0 : f32, max_fp = 3.0 : f32, min_int = -3 : i64, "
               f"max_int = 3 : i64}} : ({t}) -> {t}\n  return %r : {t}\n}}")
    out.append(f'func.func @cast(%x: {t} {{deltaflow.name = "x"}}) -> (tensor<?x16xi32> {{deltaflow.name = "out"}}) {{\n'
               f"  %r = tosa.cast %x : ({t}) -> tensor<?x16xi32>\n  return %r : tensor<?x16xi32>\n}}")
    for dt in ("bf16", "f16"):  # narrowing casts, widened back to compare
        out.append(f'func.func @round_{dt}(%x: {t} {{deltaflow.name = "x"}}) -> ({t} {{deltaflow.name = "out"}}) {{\n'
                   f"  %h = tosa.cast %x : ({t}) -> tensor<?x16x{dt}>\n"
                   f"  %r = tosa.cast %h : (tensor<?x16x{dt}>) -> {t}\n  return %r : {t}\n}}")
    for op in ("reduce_max", "reduce_sum"):
        out.append(f'func.func @{op}(%x: {t} {{deltaflow.name = "x"}}) -> (tensor<?x1xf32> {{deltaflow.name = "out"}}) {{\n'
                   f"  %r = tosa.{op} %x {{axis = 1 : i32}} : ({t}) -> tensor<?x1xf32>\n"
                   f"  return %r : tensor<?x1xf32>\n}}")
    with open(path, "w") as f:
        f.write("\n\n".join(out) + "\n")


def reduction_rows():
    """Rows that put a NaN, an inf or both at every position."""
    rows = []
    for special in (np.nan, np.inf, -np.inf):
        for pos in range(W):
            r = np.arange(W, dtype=np.float32) - 5.0
            r[pos] = special
            rows.append(r)
    r = np.arange(W, dtype=np.float32)
    r[3], r[9] = np.inf, -np.inf
    rows.append(r)
    r = np.full(W, -np.inf, dtype=np.float32)
    rows.append(r)
    return np.array(rows, dtype=np.float32)


def rounding_values():
    """The special values, and ties and near-ties of bf16 (7 stored mantissa
    bits) and f16 (10 bits, largest finite 65504, subnormals below 2^-14)."""
    e = [1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -(1 + 2 ** -8), 2 ** -130, 3.3895314e38,
         3.4e38, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 65504.0, 65519.0, 65520.0,
         -65520.0, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -15 + 2 ** -25, 1e-8, 0.1, -0.3, 1 / 3, 1e5,
         -2 ** 70, 6.1e-5, 5.96e-8, 1e-45, -1e-45, 1234.5678, 0.007, 3.0, -1.0e-3]
    return np.array(SPECIAL + e, dtype=np.float32).reshape(-1, W)


def round_bf16_ref(x):
    """IEEE round-to-nearest-even to bf16 (the top 16 bits of an f32)."""
    u = x.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint32) << 16
    # NaN: a quiet NaN of its sign ((bits >> 16) | 0x40, as the kernel).
    nan = (((u >> 16) | 0x40) << 16).astype(np.uint32)
    return np.where(np.isnan(x), nan, r.astype(np.uint32)).view(np.float32)


def gen(d):
    np.save(f"{d}/u.npy", values_unary())
    np.save(f"{d}/r.npy", rounding_values())
    x, y = values_binary()
    np.save(f"{d}/bx.npy", x)
    np.save(f"{d}/by.npy", y)
    np.save(f"{d}/red.npy", reduction_rows())


def cast_ref(x):
    r = np.rint(x.astype(np.float64))  # round half to even
    r = np.where(np.isnan(r), 0, np.clip(r, -2 ** 31, 2 ** 31 - 1))
    return r.astype(np.int64)


def ref(op, x, y=None):
    with np.errstate(all="ignore"):
        x = x.astype(np.float64)
        y = None if y is None else y.astype(np.float64)
        return {
            "exp": lambda: np.exp(x), "log": lambda: np.log(x), "rsqrt": lambda: 1 / np.sqrt(x),
            "reciprocal": lambda: 1 / x, "sigmoid": lambda: 1 / (1 + np.exp(-x)),
            "tanh": lambda: np.tanh(x), "negate": lambda: -x, "abs": lambda: np.abs(x),
            "sin": lambda: np.sin(x), "cos": lambda: np.cos(x),
            "add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y,
            "maximum": lambda: np.maximum(x, y), "minimum": lambda: np.minimum(x, y),
            # TOSA: NaN propagates through pow as through every op.
            "pow": lambda: np.where(np.isnan(x) | np.isnan(y), np.nan, np.power(x, y)),
            "clamp": lambda: np.where(np.isnan(x), np.nan, np.clip(x, -3, 3)),
            "reduce_max": lambda: np.max(x, axis=1, keepdims=True),
            "reduce_sum": lambda: np.sum(x, axis=1, keepdims=True),
        }[op]()


TRANSCENDENTAL = {"exp", "log", "rsqrt", "sigmoid", "tanh", "sin", "cos", "pow"}


def compare(op, got, want, x, y=None):
    """Indices (flat) of the elements that disagree, and a reason."""
    got = got.astype(np.float64).ravel()
    want = want.astype(np.float64).ravel()
    # float64 results beyond float32 become +-inf in float32 (or 0).
    with np.errstate(all="ignore"):
        want = want.astype(np.float32).astype(np.float64)
    xs = x.astype(np.float64).ravel()
    ys = None if y is None else y.astype(np.float64).ravel()
    keep = np.ones_like(got, dtype=bool)
    if op in ("sin", "cos"):
        keep = ~(np.isfinite(xs) & (np.abs(xs) > 1e4))
        huge = ~keep
        bad_huge = huge & ~(np.isfinite(got) & (np.abs(got) <= 1))
        if bad_huge.any():
            return np.flatnonzero(bad_huge), "not finite within [-1, 1]"
    if op == "pow":
        keep = (xs > 0) | ((xs == 0) & (ys > 0))
        keep &= np.isfinite(ys) | np.isnan(ys) | np.isnan(xs)
    tol = 2e-6 if op in TRANSCENDENTAL else 0.0
    bad = np.zeros_like(keep)
    nan_w, nan_g = np.isnan(want), np.isnan(got)
    bad |= nan_w != nan_g
    both = ~nan_w & ~nan_g
    inf = both & (np.isinf(want) | np.isinf(got))
    bad |= inf & (want != got)
    fin = both & ~inf
    err = np.abs(got - want)
    bad |= fin & (err > tol * np.abs(want) + (1e-37 if tol else 0.0))
    # Signed zeros where exact (not for approximated results).
    if not tol:
        zero = fin & (want == 0) & (got == 0)
        bad |= zero & (np.signbit(want) != np.signbit(got))
    return np.flatnonzero(bad & keep), "differs"


def check(d):
    failures = 0
    u = np.load(f"{d}/u.npy")
    bx, by = np.load(f"{d}/bx.npy"), np.load(f"{d}/by.npy")
    red = np.load(f"{d}/red.npy")
    cases = [(op, u, None) for op in UNARY + ["clamp"]] + [(op, bx, by) for op in BINARY] + \
            [(op, red, None) for op in ("reduce_max", "reduce_sum")]
    for op, x, y in cases:
        got = np.load(f"{d}/out_{op}.npy")
        want = ref(op, x, y)
        if got.shape != want.shape:
            print(f"FAIL {op}: shape {got.shape}, expected {want.shape}")
            failures += 1
            continue
        idx, why = compare(op, got, want, x, y)
        xs = x.ravel() if op.startswith("reduce") is False else x
        if len(idx):
            failures += 1
            shown = []
            for i in idx[:6]:
                if op.startswith("reduce"):
                    shown.append(f"row {i}: {x[i].tolist()} -> {got.ravel()[i]!r} (want {want.ravel()[i]!r})")
                else:
                    arg = f"{x.ravel()[i]!r}" + ("" if y is None else f", {y.ravel()[i]!r}")
                    shown.append(f"{op}({arg}) = {got.ravel()[i]!r}, want {want.ravel()[i]!r}")
            print(f"FAIL {op}: {len(idx)} {why}: " + "; ".join(shown))
        else:
            print(f"ok {op}")
    got = np.load(f"{d}/out_cast.npy").astype(np.int64)
    want = cast_ref(u)
    idx = np.flatnonzero(got.ravel() != want.ravel())
    if len(idx):
        failures += 1
        print("FAIL cast: " + "; ".join(f"cast({u.ravel()[i]!r}) = {got.ravel()[i]}, want {want.ravel()[i]}"
                                         for i in idx[:6]))
    else:
        print("ok cast")
    r = np.load(f"{d}/r.npy")
    # f16 NaN: sign | 0x7e00 (the canonical quiet NaN), widened back.
    f16 = r.astype(np.float16)
    f16 = np.where(np.isnan(r), (np.signbit(r).astype(np.uint16) << 15) | 0x7E00,
                   f16.view(np.uint16)).astype(np.uint16).view(np.float16)
    for dt, want in (("bf16", round_bf16_ref(r)), ("f16", f16.astype(np.float32))):
        got = np.load(f"{d}/out_round_{dt}.npy")
        bad = np.flatnonzero(got.view(np.uint32).ravel() != want.view(np.uint32).ravel())
        if len(bad):
            failures += 1
            print(f"FAIL cast to {dt}: " + "; ".join(f"{r.ravel()[i]!r} -> {got.ravel()[i]!r}, want "
                                                      f"{want.ravel()[i]!r}" for i in bad[:6]))
        else:
            print(f"ok cast to {dt} ({r.size} values, bit-exact)")
    print("FAIL" if failures else "PASS")


if __name__ == "__main__":
    mode, arg = sys.argv[1], sys.argv[2]
    {"mlir": write_mlir, "gen": gen, "check": check}[mode](arg)
