"""`python -m bench [--quick] [--only kernels|training|system] [--rounds N] [--match TEXT]
[--out FILE] [--plots DIR] [--threads N] [--wait-quiet SECONDS]`

Runs the suite, prints the table and which goals of bench/goals.py are met, writes the JSON
(bench/results/latest.json by default) and, with --plots, PNG plots.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import distributed, goals, kernels, report, system, training
from .numpy_peer import NumpyPeer
from .torch_peer import TorchPeer
from .rows import Context
from .timing import Settings, error_text

SECTIONS = {
    "kernels": kernels.run, "training": training.run, "system": system.run,
    "distributed": distributed.run,
}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few rounds and a small sweep: a smoke run of every section in a minute or two",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SECTIONS),
        help="run only this section (repeatable); default: all",
    )
    parser.add_argument(
        "--match",
        help="run only rows whose id contains one of these comma-separated texts, "
        "e.g. conv2,sgemm.NN",
    )
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds per row (default 10, quick 3)"
    )
    parser.add_argument("--threads", type=int, default=2, help="threads for every library")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON file to write")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        metavar="SECONDS",
        help="before each row, wait up to SECONDS for other processes to leave the CPU "
        "mostly idle (a shared machine)",
    )
    parser.add_argument("--plots", type=Path, metavar="DIR", help="write PNG plots to DIR")
    return parser.parse_args(argv)


_thread_limits: list = []


def set_threads(threads: int):
    """Every library in this process uses `threads` threads; returns (torch or None, notes)."""
    notes = []
    try:
        import fastdl

        fastdl.set_num_threads(threads)
    except Exception as exc:  # noqa: BLE001 (every fastdl row will show the error)
        notes.append(f"fastdl: {error_text(exc)}")
    try:
        from threadpoolctl import threadpool_limits

        _thread_limits.append(threadpool_limits(limits=threads))  # held for the process's life
    except ImportError:
        notes.append("threadpoolctl not installed: NumPy's threads are not limited")
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        torch = None
        notes.append("torch not installed: PyTorch columns are empty, their goals not judged")
    return torch, notes


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    rounds = args.rounds or (3 if args.quick else 10)
    if args.quick:
        settings = Settings(
            rounds=rounds, min_sample_s=0.005, warmup_s=0.01, settle_max_s=0.2, settle_window_s=0.01
        )
    else:
        settings = Settings(rounds=rounds)
    torch, notes = set_threads(args.threads)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)

    meta = system.machine_info()
    meta.update(
        versions=system.library_versions(torch),
        notes=notes,
        settings={
            "rounds": settings.rounds,
            "min_sample_s": settings.min_sample_s,
            "warmup_s": settings.warmup_s,
            "threads": args.threads,
            "quick": args.quick,
            "only": args.only,
            "match": args.match,
            "wait_quiet": args.wait_quiet,
        },
    )
    peers = {}
    for name, unset in (("numpy", True), ("numpy_default", False)):
        try:
            peers[name] = NumpyPeer(unset_env=unset, threads=args.threads)
            meta[f"{name}_worker"] = peers[name].info()
        except Exception as exc:  # noqa: BLE001
            peers[name] = None
            meta[f"{name}_worker"] = {"error": error_text(exc)}
    torch_peer = None
    if torch is not None:
        try:
            torch_peer = TorchPeer(threads=args.threads)
            meta["torch_worker"] = torch_peer.info()
        except Exception as exc:  # noqa: BLE001
            meta["torch_worker"] = {"error": error_text(exc)}
    ctx = Context(
        settings, args.quick, args.threads, torch=torch, match=args.match,
        torch_peer=torch_peer, **peers,
    )
    ctx.quiet_wait_s = args.wait_quiet

    try:
        roofs = system.measure_roofs(ctx)
        for name in args.only or SECTIONS:
            print(f"[{name}]", file=sys.stderr, flush=True)
            try:
                SECTIONS[name](ctx)
            except Exception as exc:  # noqa: BLE001 (keep what the other sections measured)
                print(f"  [{name}] section failed: {error_text(exc)}", file=sys.stderr)
                meta.setdefault("section_errors", {})[name] = error_text(exc)
        if not args.quick:
            roofs = system.measure_roofs(ctx, roofs)  # again at the end: the best run counts
    finally:
        for peer in (*peers.values(), torch_peer):
            if peer is not None:
                peer.close()

    for row in ctx.rows:
        row["verdicts"] = [
            goals.judge(row, c, ctx.peak_gflops, ctx.copy_gbps) for c in row["checks"]
        ]
    summary = goals.summarize(ctx.rows)
    meta["loadavg_end"] = system.loadavg()
    meta["baseline_rss_bytes"] = ctx.baseline_rss
    meta["elapsed_s"] = time.perf_counter() - started

    text = "\n\n".join(
        [
            report.header(meta, roofs),
            report.table(ctx.rows, ctx.peak_gflops, ctx.copy_gbps),
            "Goals (bench/goals.py):\n" + report.goal_lines(summary),
        ]
    )
    print(text)
    report.write_json(
        args.out,
        {"meta": meta, "roofs": roofs, "rows": ctx.rows, "goals": summary, "table_markdown": text},
    )
    print(f"\nwrote {args.out}", file=sys.stderr)
    if args.plots:
        written = report.plots(
            args.plots, ctx.rows, ctx.peak_gflops, meta.get("theoretical_peak_gflops")
        )
        print(
            "plots: " + (", ".join(written) if written else "none (matplotlib missing?)"),
            file=sys.stderr,
        )
    print(f"done in {meta['elapsed_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
