"""What the device-side GPU benchmarks share."""
import torch


def cuda_time(fn, reps=5, stat="median"):
    """Milliseconds of fn() by CUDA events: one warm-up call, then `reps`
    timed calls; their median (or minimum, stat="min")."""
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        ts.append(s.elapsed_time(e))
    ts.sort()
    return ts[0] if stat == "min" else ts[len(ts) // 2]


def rel_l2(a, b):
    """||a - b|| / ||b|| in float64 (b: the reference)."""
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()
