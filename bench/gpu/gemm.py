#!/usr/bin/env python3
"""The tensor-core GEMM of graph matmuls by bf16/f16 nn.Linear weights
(issue #14, stage 4; compiler/TensorCore/Gemm.cpp) on the GPU, through
deltaflow-run, against PyTorch on the same device in the same run.

Build side (bench/gpu/build.sh):  gemm.py --write-cases DIR  (the .mlir
cases; build.sh compiles each for --target=cuda, and the "linear" case
also with --tile tensorcore.gemm=0, Halide's f32 SIMT kernels).
Device side:  bash bench/gpu/run.sh gemm [--rows 1,15,16,17,1000] [--bench 4096,16384]

Checks (every row count of --rows, fresh random inputs, every element):
  - "linear" (two projections, a SiLU epilogue and a computed A, so the
    split into A / GEMM / epilogue kernels runs) against float64;
  - the single projections (Llama-3-8B's shapes) against float64.
From 16 rows on the GEMM rounds A to the weight's type: the reference then
uses the rounded A (the bound against unrounded A, ~2^-9 relative for
bf16, is printed beside it); below 16 rows the GEMV (compiler/TensorCore/
Gemv.cpp) runs in f32.
Speed (--bench rows): the GEMM kernel time from deltaflow-run --profile
against torch.matmul with bf16 operands (cuBLAS, the strong baseline) and in
f32 (TF32 off, PyTorch eager's f32), and the fraction of the bf16 rate
cuBLAS reaches in this run. GEMV speed (--gemv-bench rows, decode): its
kernel time against torch.matmul in bf16 and f32 on the same shapes, and
the weight's bytes per second as a fraction of the device memory bandwidth
measured in the same run (a device-to-device copy).
"""
import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out", "gemm")

# name: (K, N, weight dtype): single projections y = x W^T.
SINGLE = {
    "proj-4096-14336-bf16": (4096, 14336, "bf16"),  # Llama-3-8B gate/up
    "proj-14336-4096-bf16": (14336, 4096, "bf16"),  # down
    "proj-4096-1024-bf16": (4096, 1024, "bf16"),    # k/v (8 KV heads of 128)
    "proj-4096-4096-f16": (4096, 4096, "f16"),      # q/o, f16 weights
}


def single_mlir(k, n, dt):
    return f"""func.func @main(%x: tensor<1x?x{k}xf32> {{deltaflow.name = "x"}},
    %w: tensor<{n}x{k}x{dt}> {{deltaflow.name = "w", deltaflow.role = "weight"}})
    -> (tensor<1x?x{n}xf32> {{deltaflow.name = "y"}}) {{
  %p = "tosa.const"() {{value = dense<[0, 2, 1]> : tensor<3xi32>}} : () -> tensor<3xi32>
  %wf = tosa.cast %w : (tensor<{n}x{k}x{dt}>) -> tensor<{n}x{k}xf32>
  %wr = tosa.reshape %wf {{new_shape = array<i64: 1, {n}, {k}>}} : (tensor<{n}x{k}xf32>) -> tensor<1x{n}x{k}xf32>
  %wt = tosa.transpose %wr, %p : (tensor<1x{n}x{k}xf32>, tensor<3xi32>) -> tensor<1x{k}x{n}xf32>
  %y = tosa.matmul %x, %wt : (tensor<1x?x{k}xf32>, tensor<1x{k}x{n}xf32>) -> tensor<1x?x{n}xf32>
  return %y : tensor<1x?x{n}xf32>
}}
"""


def write_cases(d):
    os.makedirs(d, exist_ok=True)
    for name, (k, n, dt) in SINGLE.items():
        with open(os.path.join(d, name + ".mlir"), "w") as f:
            f.write(single_mlir(k, n, dt))


def run(cmd):
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--write-cases")
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp"))
    ap.add_argument("--rows", default="1,15,16,17,100,128,1000,4097")
    ap.add_argument("--bench", default="4096,16384")
    ap.add_argument("--gemv-bench", default="1,4", help="GEMV rows timed ('' for none)")
    a = ap.parse_args()
    if a.write_cases:
        write_cases(a.write_cases)
        return 0
    import numpy as np
    import torch
    sys.path.insert(0, HERE)
    from common import cuda_time

    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}", flush=True)
    work = "/tmp/deltaflow-gemm"
    os.makedirs(work, exist_ok=True)
    run_bin = os.path.join(HERE, "out", "deltaflow-run")
    g = torch.Generator().manual_seed(7)
    tdt = {"bf16": torch.bfloat16, "f16": torch.float16}
    rows_out, fails, checks = [], 0, 0

    def rnd(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale

    def deltaflow(module, inputs, repeat=1, temporaries=None):
        args = [run_bin, module]
        for nm, arr in inputs.items():
            p = os.path.join(work, nm + ".npy")
            np.save(p, arr)
            args += ["--input", f"{nm}={p}"]
        outp = os.path.join(work, "y.npy")
        if os.path.exists(outp):
            os.remove(outp)
        args += ["--output", f"y={outp}", "--repeat", str(repeat), "--profile"]
        if temporaries:
            args += ["--temporaries", temporaries]
        r = run(args)
        if r.returncode != 0:
            print(r.stdout[-2000:] + r.stderr[-2000:])
            return None, r.stdout
        return np.load(outp), r.stdout

    def check(name, got, ref, tol, extra=""):
        nonlocal fails, checks
        checks += 1
        if got is None:
            fails += 1
            print(f"FAIL {name}: no output")
            return
        got = torch.from_numpy(got).double() if isinstance(got, np.ndarray) else got.double()
        ok_shape = tuple(got.shape) == tuple(ref.shape)
        finite = bool(torch.isfinite(got).all()) if ok_shape else False
        err = ((got - ref).abs().max() / ref.abs().max()).item() if ok_shape else float("inf")
        ok = ok_shape and finite and err <= tol
        fails += 0 if ok else 1
        print(f"{'ok  ' if ok else 'FAIL'} {name}: max|err|/max|ref| {err:.2e} (tol {tol:.0e})"
              f"{'' if finite else ' NON-FINITE'}{extra}", flush=True)
        rows_out.append({"check": name, "err": err, "tol": tol, "ok": ok})

    def npw(w):
        """A 16-bit weight as .npy data: f16 as it is; bf16 (which NumPy
        lacks) as float32 holding bf16 values, which deltaflow-run narrows
        exactly."""
        return w.numpy() if w.dtype == torch.float16 else w.float().numpy()

    def rounded(x, dt):
        return x.to(tdt[dt]).double()

    # Correctness: the two-projection graph and the single projections.
    ms = [int(s) for s in a.rows.split(",") if s]
    tmp = os.path.join(work, "temporaries")
    os.makedirs(tmp, exist_ok=True)
    for m in ms:
        # Each kernel against float64 of its own inputs as the run computed
        # them (--temporaries), so that the check is tight: a GEMM rounds
        # its A to bf16, and A's f32 values decide each rounding.
        x = rnd(1, m, 256)
        w1 = rnd(384, 256, scale=0.06).bfloat16()
        w2 = rnd(128, 384, scale=0.05).bfloat16()
        for f in os.listdir(tmp):
            os.remove(os.path.join(tmp, f))
        y, prof = deltaflow(os.path.join(OUT, "linear.so"),
                            {"x": x.numpy(), "w1": w1.float().numpy(), "w2": w2.float().numpy()},
                            temporaries=tmp)
        path = ("GEMM" if "tensor-core GEMM" in prof else
                "GEMV" if "[GEMV, PTX]" in prof else "Halide")
        gemm = m >= 16
        rd = (lambda t: rounded(t, "bf16")) if gemm else (lambda t: t.double())

        def temp(name):
            p = os.path.join(tmp, name + ".npy")
            return torch.from_numpy(np.load(p)).double() if os.path.exists(p) else None

        h, act = temp("main_k0_r0"), temp("main_k1_gemm_a")
        if h is None or act is None:
            check(f"linear M={m} [{path}] temporaries", None, None, 0)
            continue
        check(f"linear M={m} [{path}] h = x W1^T", h.numpy(), rd(x) @ w1.double().T, 2e-5)
        check(f"linear M={m} [Halide] SiLU(h)", act.numpy(), h * torch.sigmoid(h), 2e-5)
        check(f"linear M={m} [{path}] y = SiLU(h) W2^T", y, rd(act.float()) @ w2.double().T, 2e-5)
        exact = x.double() @ w1.double().T
        exact = (exact * torch.sigmoid(exact)) @ w2.double().T
        print(f"     against float64 with unrounded activations: "
              f"{((torch.from_numpy(y).double() - exact).abs().max() / exact.abs().max()).item():.1e}"
              f" (the bf16 rounding of A, {'applied' if gemm else 'not applied'} here)")
    for name, (k, n, dt) in SINGLE.items():
        for m in [1, 17, 300]:
            x = rnd(1, m, k)
            w = rnd(n, k, scale=k ** -0.5).to(tdt[dt])
            y, prof = deltaflow(os.path.join(OUT, name + ".so"), {"x": x.numpy(), "w": npw(w)})
            ref = (rounded(x, dt) if m >= 16 else x.double()) @ w.double().T
            check(f"{name} M={m}", y, ref, 2e-5)

    # Speed.
    for name, (k, n, dt) in SINGLE.items():
        w = (torch.randn(n, k, device="cuda") * k ** -0.5).to(tdt[dt])
        for m in [int(s) for s in a.bench.split(",") if s]:
            if m * k > 1 << 27:  # A passes through a .npy file: at most 512 MB
                print(f"{name} M={m}: skipped (A of {m * k * 4 / 1e9:.1f} GB)")
                continue
            x = torch.randn(1, m, k)
            _, prof = deltaflow(os.path.join(OUT, name + ".so"), {"x": x.numpy(), "w": npw(w.cpu())},
                                repeat=5)
            km = re.search(r"([0-9.]+) ms.*tensor-core GEMM|tensor-core GEMM.*?([0-9.]+) ms", prof)
            kms = float(km.group(1) or km.group(2)) if km else float("nan")
            xd = x.cuda()
            x16 = xd.to(tdt[dt])
            wf = w.float()
            t16 = cuda_time(lambda: x16 @ w.T)
            t32 = cuda_time(lambda: xd @ wf.T)
            fl = 2.0 * m * n * k
            peak = fl / t16 / 1e9
            print(f"{name} M={m}: GEMM {kms:.3f} ms ({fl / kms / 1e9:.0f} TFLOP/s, "
                  f"{(t16 / kms):.0%} of cuBLAS {dt} {t16:.3f} ms = {peak:.0f} TFLOP/s); "
                  f"PyTorch f32 {t32:.3f} ms ({t32 / kms:.1f}x ours)", flush=True)
            rows_out.append({"case": name, "m": m, "k": k, "n": n, "gemm_ms": kms,
                             "cublas_16bit_ms": t16, "torch_f32_ms": t32,
                             "tflops": fl / kms / 1e9, "cublas_tflops": peak,
                             "profile": prof})
    # The GEMV (decode rows): kernel time against cuBLAS on the same shapes,
    # and the weight's read rate against a device copy's in this run.
    gemv_rows = [int(s) for s in a.gemv_bench.split(",") if s]
    if gemv_rows:
        buf = torch.empty(1 << 28, dtype=torch.float32, device="cuda")  # 1 GiB
        dst = torch.empty_like(buf)
        tcopy = cuda_time(lambda: dst.copy_(buf))
        bw = 2 * buf.numel() * 4 / tcopy / 1e6  # GB/s (read + write)
        print(f"device copy: {bw:.0f} GB/s (read + write, 1 GiB) = this run's memory bandwidth",
              flush=True)
        del buf, dst
    from tensorcore import Driver, graph_time, ptx_with, split_ptx
    drv = Driver() if gemv_rows else None
    for name, (k, n, dt) in SINGLE.items():
        w = (torch.randn(n, k, device="cuda") * k ** -0.5).to(tdt[dt])
        if gemv_rows:
            # The module's GEMV entry, launched directly (CUDA events over a
            # CUDA graph: no host launch overhead), as the runtime would.
            with open(os.path.join(OUT, name + ".manifest.json")) as f:
                var = [v for v in json.load(f)["entries"][0]["kernels"][0]["variants"]
                       if v.get("ptx", {}).get("abi") == "gemv-v2"][0]["ptx"]
            with open(os.path.join(OUT, name + ".ptx")) as f:
                fn = drv.load(ptx_with(split_ptx(f.read()), var["function"]), var["function"], 0)
        for m in gemv_rows:
            x = torch.randn(1, m, k)
            _, prof = deltaflow(os.path.join(OUT, name + ".so"), {"x": x.numpy(), "w": npw(w.cpu())},
                                repeat=20)
            km = re.search(r"([0-9.]+) ms.*\[GEMV|\[GEMV, PTX\].*?([0-9.]+) ms", prof)
            run_ms = float(km.group(1) or km.group(2)) if km else float("nan")
            xd = x.cuda()
            yd = torch.full((1, m, n), float("nan"), device="cuda")
            # "gemv-v2": 4 columns a warp (kGemvColumnsPerWarp, PtxAbi.h).
            cols = var["threads"] // 32 * 4
            grid = ((n + cols - 1) // cols, 1, 1)
            launch = lambda: drv.launch(fn, grid, var["threads"], 0, [xd, w, yd], [m])  # noqa: E731
            kms = graph_time(launch)
            check(f"{name} M={m} GEMV launched directly", yd.cpu(), x.double() @ w.cpu().double().T,
                  2e-5)
            x16 = xd.to(tdt[dt])
            wf = w.float()
            t16 = graph_time(lambda: x16 @ w.T)
            t32 = graph_time(lambda: xd @ wf.T)
            gbs = n * k * 2 / kms / 1e6
            print(f"{name} M={m}: GEMV {kms * 1e3:.1f} us ({gbs:.0f} GB/s of weight, "
                  f"{gbs / bw:.0%} of the copy's; through deltaflow-run with launch and sync "
                  f"{run_ms * 1e3:.1f} us); cuBLAS {dt} {t16 * 1e3:.1f} us "
                  f"({t16 / kms:.2f}x ours); PyTorch f32 {t32 * 1e3:.1f} us ({t32 / kms:.2f}x ours)",
                  flush=True)
            rows_out.append({"case": name, "m": m, "k": k, "n": n, "gemv_ms": kms,
                             "gemv_run_ms": run_ms,
                             "cublas_16bit_ms": t16, "torch_f32_ms": t32,
                             "weight_gbs": gbs, "copy_gbs": bw, "profile": prof})
    # The Halide f32 SIMT kernel on the same graph (--tile tensorcore.gemm=0).
    for m in [int(s) for s in a.bench.split(",") if s][:1]:
        x = rnd(1, m, 256)
        w1 = rnd(384, 256, scale=0.06).bfloat16().float().numpy()
        w2 = rnd(128, 384, scale=0.05).bfloat16().float().numpy()
        for mod in ("linear", "linear-simt"):
            _, prof = deltaflow(os.path.join(OUT, mod + ".so"), {"x": x.numpy(), "w1": w1, "w2": w2},
                                repeat=5)
            print(prof, flush=True)
    print(f"{checks - fails}/{checks} checks passed" if not fails else
          f"SOME CHECKS FAILED: {fails} of {checks}")
    with open(os.path.join(a.out, "gemm.json"), "w") as f:
        json.dump(rows_out, f, indent=1)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
