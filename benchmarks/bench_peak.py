"""How close the largest convolutions of a CDNet training step at the paper's shapes run to this machine's
arithmetic peak, in float32 and in bf16.

    python benchmarks/bench_peak.py                 # 1 thread, 5 interleaved repeats
    python benchmarks/bench_peak.py --threads 2 --repeats 9
    python benchmarks/bench_peak.py --step          # also: every convolution of one released-CDNet training step

At the paper's shapes (batch 4, 3x128x128, hidden 32 per channel: 96-wide cells on 16x16 features in 3-frame
windows) the two fused gate convolutions of every ST cell (C gates and M gates, each a Conv3d 288 -> 288, kernel
3, padding 1, on [4, 288, 3, 16, 16] in the cells' contiguous layout) are the largest cost of a training step:
about 40% of it with their backward. Each is timed forward, and forward plus backward (the input and weight
gradients, three times the forward's arithmetic), beside a square matrix product of similar size (`torch.mm`,
2048 x 2048), which is about as fast as this core multiplies. The arithmetic counts only the taps that touch
data (oneDNN skips padding: 7 of the 9 temporal taps of a 3-frame window, 46 of the 48 taps along each spatial
axis of 16). Rows are timed in interleaved repeats (median of repeats, each the median of 5 calls). A
convolution at about the matrix product's rate cannot be made faster by changing how it is called: only less
arithmetic (a different model) or narrower numbers (bf16) shorten it.
"""
import argparse
import math
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
    x = torch.randn(4, 288, 3, 16, 16, generator=g).to(dtype).requires_grad_()
    w = torch.randn(288, 288, 3, 3, 3, generator=g).to(dtype).requires_grad_()
    dy = torch.randn(4, 288, 3, 16, 16, generator=g).to(dtype)
    a, b = (torch.randn(2048, 2048, generator=g).to(dtype) for _ in range(2))
    conv_flop = 2 * 4 * 288 * 288 * (2 + 3 + 2) * 46 * 46   # per output channel and image: valid temporal x spatial taps

    def fwd():
        with torch.no_grad(): F.conv3d(x, w, padding=1)

    def fwd_bwd():
        x.grad = w.grad = None
        F.conv3d(x, w, padding=1).backward(dy)

    return {"conv3d 288->288 forward": (fwd, conv_flop), "conv3d 288->288 fwd+bwd": (fwd_bwd, 3 * conv_flop),
            "matmul 2048x2048": (lambda: torch.mm(a, b), 2 * 2048**3)}


def valid_taps(n: int, k: int, pad: int, stride: int) -> int:
    "Kernel taps that touch data, summed over the outputs of one axis (input length `n`, kernel `k`)."
    return sum(sum(1 for j in range(k) if 0 <= o * stride - pad + j < n) for o in range((n + 2 * pad - k) // stride + 1))


def step_convolutions(threads: int) -> None:
    """Profile one training step of the released CDNet at the paper's shapes (`torch.profiler`, shapes recorded):
    the step's time, its convolutions' forward and backward time, their forward arithmetic (taps that touch data)
    and what that arithmetic would take, forward and backward (3x), at the rate of this core's matrix product."""
    from torch.profiler import ProfilerActivity, profile
    from cdnet.config import DATASETS, resolve_config
    from cdnet.zoo import build_model
    cfg = resolve_config("paper", device="cpu", verbose=False, model="cdnet", variant="released", dataset="human36m", batch_size=4)
    d = DATASETS[cfg.dataset]
    torch.manual_seed(0)
    model = build_model(cfg, d["channels"], d["height"], d["width"]).train()
    frames = torch.rand(cfg.batch_size, cfg.n_obs + cfg.n_pred, d["channels"], d["height"], d["width"])

    def step():
        model.zero_grad(set_to_none=True)
        model.loss(frames, cfg.n_obs, epoch=0)[0].backward()

    step()
    plain = timed(step, calls=1)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        step()
    flop, fwd_s, n = 0, 0.0, 0
    for e in prof.events():
        if e.name != "aten::mkldnn_convolution": continue
        x, w = e.input_shapes[0], e.input_shapes[1]
        pad, stride = e.concrete_inputs[3], e.concrete_inputs[4]
        taps = math.prod(valid_taps(x[2 + i], w[2 + i], pad[i], stride[i]) for i in range(len(w) - 2))
        flop += 2 * x[0] * w[0] * w[1] * taps
        fwd_s += e.self_cpu_time_total / 1e6
        n += 1
    bwd_s = sum(e.self_cpu_time_total for e in prof.events() if e.name == "aten::convolution_backward") / 1e6
    total_s = sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e6
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(2048, 2048, generator=g) for _ in range(2))
    mm_rate = 2 * 2048**3 / timed(lambda: torch.mm(a, b))
    print(f"released CDNet training step at the paper's shapes, {threads} thread(s): {plain:.1f} s unprofiled, {total_s:.1f} s profiled")
    print(f"  {n} oneDNN convolutions: forward {fwd_s:.1f} s, backward {bwd_s:.1f} s; the rest of the profiled step "
          f"{total_s - fwd_s - bwd_s:.1f} s")
    print(f"  forward arithmetic {flop / 1e12:.3f} TFLOP ({flop / fwd_s / 1e9:.0f} GFLOP/s); forward and backward "
          f"(3x) at the matrix product's {mm_rate / 1e9:.0f} GFLOP/s: {3 * flop / mm_rate:.1f} s")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--step", action="store_true", help="also profile one paper-shape training step of the released CDNet")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.step: step_convolutions(a.threads)
    rows = {(dt, name): (f, flop) for dt in (torch.float32, torch.bfloat16) for name, (f, flop) in cases(dt).items()}
    times = {k: [] for k in rows}
    for _ in range(a.repeats):
        for k, (f, _) in rows.items():
            times[k].append(timed(f))
    from cdnet.train import cpu_has_bf16
    print(f"torch {torch.__version__}, {a.threads} thread(s), {a.repeats} interleaved repeats; "
          f"bf16 hardware (AVX512-BF16 or AMX): {cpu_has_bf16()}")
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
