"""`python -m bench.winograd [--cpu-time] [--rounds N] [--shapes N,C,H,K ...]`

fastdl's conv2d algorithms (`fastdl.backends.cpu.conv2d_algorithm`) side by side on 3x3 stride-1
convolutions with padding 1: the error of each against the float64 reference, then the time of
each forward, input gradient and weight gradient against PyTorch's, interleaved in one process (2 threads each,
or with --cpu-time 1 thread each timed by the thread's CPU time, which a loaded machine disturbs
far less than wall-clock time). Prints medians and the median of per-round ratios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

ALGORITHMS = ("gemm", "winograd_2x2", "winograd_4x4", "auto")
# (N, C, H, K): the founding CNN's conv2 first, then a sweep of channels and planes.
SHAPES = [
    (64, 32, 14, 64),
    (64, 8, 14, 8),
    (64, 16, 14, 16),
    (1, 32, 14, 64),
    (16, 64, 28, 64),
    (8, 128, 14, 128),
    (4, 256, 7, 256),
]
# The error grows with the channels summed (C for y, K for dx).
ACCURACY_SHAPES = [(64, 32, 14, 64), (16, 64, 28, 64), (8, 128, 14, 128), (4, 256, 7, 256)]


def max_relative_error(got, exact) -> float:
    """max |got - exact| / max |exact|."""
    return float(np.max(np.abs(got - exact)) / np.max(np.abs(exact)))


def accuracy(shapes) -> None:
    from fastdl.backends import cpu, reference

    print("error against float64: max |err| / max |exact|, y, dx, dw")
    rng = np.random.default_rng(0)
    for n, c, h, k in shapes:
        # Post-ReLU activations and Kaiming-uniform weights, as in training.
        x = np.maximum(rng.standard_normal((n, c, h, h)), 0).astype(np.float32)
        bound = 1 / np.sqrt(9 * c)
        w = rng.uniform(-bound, bound, (k, c, 3, 3)).astype(np.float32)
        dy = rng.standard_normal((n, k, h, h)).astype(np.float32)
        x64, w64 = x.astype(np.float64), w.astype(np.float64)
        y64 = reference.conv2d_forward(x64, w64, None, 1, 1)
        dy64 = dy.astype(np.float64)
        dx64, dw64, _ = reference.conv2d_backward(dy64, x64, w64, 1, 1, True, True, False)
        row = []
        for algorithm in ALGORITHMS[:3]:
            cpu.conv2d_algorithm = algorithm
            y = cpu.conv2d_forward(x, w, None, 1, 1)
            dx, dw, _ = cpu.conv2d_backward(dy, x, w, 1, 1, True, True, False)
            errors = [max_relative_error(*pair) for pair in [(y, y64), (dx, dx64), (dw, dw64)]]
            row.append(f"{algorithm} " + " ".join(f"{e:.1e}" for e in errors))
        print(f"  {n}x{c}x{h}x{h} -> {k}: " + " | ".join(row), flush=True)
    cpu.conv2d_algorithm = "auto"


def _fastdl_call(cpu, algorithm, part, x, w, b, dy):
    def call():
        cpu.conv2d_algorithm = algorithm
        if part == "fwd":
            return cpu.conv2d_forward(x, w, b, 1, 1)
        return cpu.conv2d_backward(dy, x, w, 1, 1, part == "dx", part == "dw", False)

    return call


def _torch_call(torch, part, x, w, b, dy):
    if part == "fwd":
        return lambda: torch.nn.functional.conv2d(x, w, b, 1, 1)
    mask = [part == "dx", part == "dw", False]
    backward = torch.ops.aten.convolution_backward
    return lambda: backward(dy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)


def timing(shapes, rounds: int, cpu_time: bool) -> None:
    import fastdl
    import torch
    from fastdl.backends import cpu

    threads = 1 if cpu_time else 2
    fastdl.set_num_threads(threads)
    torch.set_num_threads(threads)
    clock = time.thread_time if cpu_time else time.perf_counter
    print(
        f"time / torch's ({threads} thread(s), {'thread CPU' if cpu_time else 'wall'} time, "
        f"median of {rounds} interleaved rounds; quartiles of the ratio in brackets)"
    )
    rng = np.random.default_rng(0)
    for n, c, h, k in shapes:
        x = rng.standard_normal((n, c, h, h), dtype=np.float32)
        w = rng.standard_normal((k, c, 3, 3), dtype=np.float32)
        b = rng.standard_normal(k, dtype=np.float32)
        dy = rng.standard_normal((n, k, h, h), dtype=np.float32)
        tx, tw, tb, tdy = (torch.from_numpy(a) for a in (x, w, b, dy))
        for part in ("fwd", "dx", "dw"):
            calls = {a: _fastdl_call(cpu, a, part, x, w, b, dy) for a in ALGORITHMS}
            calls["torch"] = _torch_call(torch, part, tx, tw, tb, tdy)
            for f in calls.values():
                f(), f()
            times = {name: [] for name in calls}
            for _ in range(rounds):
                for name, f in calls.items():
                    if not cpu_time:
                        time.sleep(0.02)  # the other side's OpenMP threads stop spinning first
                    t = clock()
                    f()
                    times[name].append(clock() - t)
            peer = np.array(times["torch"])
            row = [f"torch {np.median(peer) * 1e3:.3f} ms"]
            for algorithm in ALGORITHMS:
                r = np.array(times[algorithm]) / peer
                row.append(
                    f"{algorithm} {np.median(r):.2f} "
                    f"[{np.percentile(r, 25):.2f}-{np.percentile(r, 75):.2f}]"
                )
            print(f"  {n}x{c}x{h}x{h} -> {k} {part}: " + " | ".join(row), flush=True)
    cpu.conv2d_algorithm = "auto"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.winograd", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument(
        "--cpu-time", action="store_true", help="1 thread each, timed by the thread's CPU time"
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--shapes", nargs="*", help="N,C,H,K (default: conv2 and a sweep)")
    args = parser.parse_args(argv)
    shapes = [tuple(map(int, s.split(","))) for s in args.shapes] if args.shapes else SHAPES
    accuracy(shapes if args.shapes else ACCURACY_SHAPES)
    timing(shapes, args.rounds, args.cpu_time)


if __name__ == "__main__":
    main()
