"""How close the dominant convolution of a CDNet training step at the paper's shapes runs to this machine's
arithmetic peak, in float32 and in bf16.

    python benchmarks/bench_peak.py                 # 1 thread, 5 interleaved repeats
    python benchmarks/bench_peak.py --threads 2 --repeats 9

At the paper's shapes (batch 4, 3x128x128, hidden 32 per channel: 96-wide cells on 16x16 features in 3-frame
windows) the fused C/M gate convolution of the released ST cell (Conv3d 288 -> 288, kernel 3, padding 1, input
[4, 288, 3, 16, 16]) is the largest single cost of a training step (about 40% of it with its backward). Its
arithmetic is counted on the temporal taps that touch data (oneDNN skips the zero-padded frames of a 3-frame
window: 7 of the 9 temporal taps) and on every spatial tap, and set beside a square matrix product of similar size (`torch.mm`, 2048 x 2048),
which is about as fast as this core multiplies. Rows are timed in interleaved repeats (median of repeats, each
the median of 5 calls). A convolution at about the matrix product's rate cannot be made faster by changing how
it is called: only less arithmetic (a different model) or narrower numbers (bf16) shorten the step.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def timed(f, calls: int = 5) -> float:
    "Median seconds of `calls` calls of `f` after one untimed call."
    f()
    ts = []
    for _ in range(calls):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def cases(dtype: torch.dtype) -> dict:
    "name -> (callable, floating-point operations per call) for `dtype`."
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 288, 3, 16, 16, generator=g).to(dtype=dtype, memory_format=torch.channels_last_3d)
    w = torch.randn(288, 288, 3, 3, 3, generator=g).to(dtype)
    a, b = (torch.randn(2048, 2048, generator=g).to(dtype) for _ in range(2))
    conv_flop = 2 * 4 * 288 * 16 * 16 * 288 * 9 * (2 + 3 + 2)   # output t=0 and t=2 read 2 frames, t=1 reads 3
    return {"conv3d 288->288 (cell gates)": (lambda: F.conv3d(x, w, padding=1), conv_flop),
            "matmul 2048x2048": (lambda: torch.mm(a, b), 2 * 2048**3)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = {(dt, name): (f, flop) for dt in (torch.float32, torch.bfloat16) for name, (f, flop) in cases(dt).items()}
    times = {k: [] for k in rows}
    for _ in range(a.repeats):
        for k, (f, _) in rows.items():
            times[k].append(timed(f))
    print(f"torch {torch.__version__}, {a.threads} thread(s), {a.repeats} interleaved repeats; "
          f"oneDNN bf16 kernels: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    print(f"{'dtype':<10}{'operation':<32}{'ms (median [min-max])':<26}{'GFLOP/s':>9}{'of matmul':>11}")
    for dt in (torch.float32, torch.bfloat16):
        mm = statistics.median(times[(dt, "matmul 2048x2048")])
        mm_rate = rows[(dt, "matmul 2048x2048")][1] / mm
        for (d, name), ts in times.items():
            if d != dt: continue
            med, rate = statistics.median(ts), rows[(d, name)][1] / statistics.median(ts)
            print(f"{str(dt).replace('torch.', ''):<10}{name:<32}{f'{med*1e3:.1f} [{min(ts)*1e3:.1f}-{max(ts)*1e3:.1f}]':<26}"
                  f"{rate / 1e9:>9.0f}{rate / mm_rate:>11.2f}")


if __name__ == "__main__":
    main()
