"""fastdl's benchmark suite: `python -m bench` from the repository root.

Every figure is a side-by-side comparison in one run on one machine (the goals it judges are in
bench/goals.py): fastdl's cpu backend against the NumPy reference, NumPy/OpenBLAS
(GEMM) and PyTorch, interleaved A B A B, medians and the median of per-round ratios.

Run it from the repository root (`python -m bench --help`); results go to
bench/results/latest.json, and bench/RESULTS.md records a full run.

Modules, by area:
    timing      interleaved A/B timing (warm-up, rounds, medians, per-round ratios)
    rows        a benchmark row (fastdl against its peers) and the run's context
    worker      a peer library in a subprocess that times itself (the two below)
    numpy_peer  NumPy/OpenBLAS in a subprocess (with or without the OPENBLAS_* variables)
    torch_peer  PyTorch in a subprocess with its own OpenMP settings (the training rows)
    model       the founding CNN for fastdl and PyTorch, and its training/inference steps
    kernels     backend kernels at the CNN's shapes and over size sweeps
    training    whole training steps and inference of the CNN
    system      machine facts, measured peak and copy bandwidth, per-op overhead,
                import time and memory, peak memory of a training run
    probe       what `system` runs in fresh subprocesses
    goals       the performance goals (G1-...) and how each row is judged against them
    report      the table, the JSON and the plots

This file imports nothing: `python -m bench.probe` measures `import fastdl` in a fresh process,
and anything imported here would be counted as already loaded.
"""
