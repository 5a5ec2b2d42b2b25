"""Seconds per training step (forward + backward of `model.loss`) of the baselines at the `cpu` preset widths on a
32x32 miniature (batch 16, 1x32x32, 4 -> 4), under several CPU thread settings.

    python benchmarks/bench_threads.py                                   # motionrnn, phydnet, convlstm; 1 and 2 threads
    python benchmarks/bench_threads.py --models phydnet --steps 5 --repeats 3

Settings: `1` (one intra-op thread), `2` (two threads, the OpenMP default active wait), `2-passive` (two threads,
`OMP_WAIT_POLICY=PASSIVE`). Every (model, setting) runs in a fresh process, because OpenMP reads its environment
once; the settings are interleaved over `--repeats` rounds and the table gives the median over all timed steps.
On a machine whose cores are busy with other processes, two actively waiting OpenMP threads spend most of every
convolution waiting for each other: the step is then 5 to 30 times slower than with one thread.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SETTINGS = {"1": (1, {}), "2": (2, {}), "2-passive": (2, {"OMP_WAIT_POLICY": "PASSIVE"})}


def worker(args) -> None:
    import torch
    from cdnet.config import resolve_config
    from cdnet.zoo import build_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(resolve_config("cpu", model=args.worker), 1, args.size, args.size).train()
    frames = torch.rand(args.batch, 8, 1, args.size, args.size)
    times = []
    for i in range(args.steps + 1):   # the first step warms up
        t = time.perf_counter()
        model.zero_grad(set_to_none=True)
        loss, _ = model.loss(frames, 4, epoch=0)
        loss.backward()
        if i: times.append(time.perf_counter() - t)
    print(json.dumps(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["motionrnn", "phydnet", "convlstm"])
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--steps", type=int, default=2, help="timed steps per process (after one warm-up step)")
    p.add_argument("--repeats", type=int, default=2, help="interleaved rounds over models and settings")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        for model in args.models:
            for s in args.settings:
                threads, extra = SETTINGS[s]
                env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **extra)
                cmd = [sys.executable, __file__, "--worker", model, "--threads", str(threads), "--steps", str(args.steps),
                       "--batch", str(args.batch), "--size", str(args.size)]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
                times.setdefault((model, s), []).extend(json.loads(out.strip().splitlines()[-1]))
    print(f"{'model':<10} {'threads':<10} {'median s/step':>13}  steps")
    for (model, s), ts in times.items():
        print(f"{model:<10} {s:<10} {statistics.median(ts):>13.3f}  {len(ts)}")


if __name__ == "__main__":
    main()
