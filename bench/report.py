"""The results: a table (markdown, printed), the JSON file, and PNG plots."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from .rows import MISMATCH

RATIO_NOTE = (
    "ratio = fastdl / peer (time per call, or bytes for memory), the median of "
    "per-round ratios: < 1 means fastdl is faster (smaller). 'of roof' is fastdl's "
    "GFLOP/s over the measured fp32 FMA peak (pk) or its GB/s over the measured copy "
    "bandwidth (bw). 'others' CPU' is the share of the machine's CPU time that "
    "other processes used while the row ran (0% = quiet machine)."
)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _roof(row: dict, peak: float | None, copy: float | None) -> str:
    rate = row["sides"].get("fastdl", {}).get("rate")
    if rate is None:
        return "-"
    if row["work_kind"] == "flop" and peak:
        return f"{rate / peak:.0%} pk"
    if row["work_kind"] == "byte" and copy:
        return f"{rate / copy:.0%} bw"
    return "-"


def _verdict(verdicts: list[dict]) -> str:
    if not verdicts:
        return ""
    values = []
    for v in verdicts:
        if v["value"] is None:
            values.append("?")
        elif v["check"].endswith(("pk", "bw")):
            values.append(f"{v['value']:.0%}")
        else:
            values.append(f"{v['value']:.2f}")
    met = [v["met"] for v in verdicts]
    word = "n/a" if any(m is None for m in met) else ("yes" if all(met) else "NO")
    return f"{word} ({'; '.join(values)})"


def _side_text(name: str, side: dict, ratio: float | None) -> str:
    if side.get("error"):
        return f"{name} error: {side['error']}"
    text = f"{name} {_num(side.get('value'))}"
    return text + (f" ({ratio:.2f})" if ratio is not None else "")


def table(rows: list[dict], peak: float | None, copy: float | None) -> str:
    """The markdown table: one line per row; peers beyond the main one go under 'others'."""
    head = [
        "what",
        "unit",
        "fastdl",
        "peer",
        "peer value",
        "ratio",
        "of roof",
        "goal",
        "met?",
        "other sides (value, ratio)",
        "others' CPU",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        sides, peer = row["sides"], row["peer"]
        fastdl = sides.get("fastdl", {})
        peer_side = sides.get(peer, {})
        if row["error"]:
            fastdl_text = f"ERROR: {row['error']}"
        else:
            fastdl_text = _num(fastdl.get("value"))
        if peer_side.get("error"):
            peer_value = f"error: {peer_side['error']}"
        else:
            peer_value = _num(peer_side.get("value"))
        ratio = row["ratios"].get(peer)
        others = [
            _side_text(name, side, row["ratios"].get(name))
            for name, side in sides.items()
            if name not in ("fastdl", peer)
        ]
        if (row.get("reference_error") or 0) > MISMATCH:
            others.insert(0, f"fastdl MISMATCH vs reference ({row['reference_error']:.2g})")
        cells = [
            row["what"],
            row["unit"],
            fastdl_text,
            peer or "-",
            peer_value,
            "-" if ratio is None else f"{ratio:.2f}",
            _roof(row, peak, copy),
            "; ".join(c.label() if hasattr(c, "label") else str(c) for c in row["checks"]),
            _verdict(row["verdicts"]),
            "; ".join(others),
            "-" if row.get("others_cpu") is None else f"{row['others_cpu']:.0%}",
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def goal_lines(summary: list[dict]) -> str:
    out = []
    for goal in summary:
        word = {True: "met", False: "NOT met", None: "not judged"}[goal["met"]]
        figures = ", ".join(
            f"{r['id']} {r['check'].split(' ', 1)[1]}: "
            + (
                "?"
                if r["value"] is None
                else f"{r['value']:.0%}"
                if r["check"].endswith(("pk", "bw"))
                else f"{r['value']:.2f}"
            )
            for r in goal["rows"]
        )
        out.append(
            f"- {goal['goal']} {word}: {goal['text']}" + (f" -- {figures}" if figures else "")
        )
    return "\n".join(out)


def _blas(worker: dict) -> str:
    libs = [b for b in worker.get("blas", []) if "internal_api" in b]
    if not libs:
        return worker.get("error", "kernel unknown")
    return ", ".join(
        f"{b['internal_api']} {b['version']} kernel {b['architecture']}, {b['num_threads']} threads"
        for b in libs
    )


def _peer_lines(meta: dict) -> list[str]:
    versions = meta.get("versions", {})
    unset = _blas(meta.get("numpy_worker", {}))
    default = _blas(meta.get("numpy_default_worker", {}))
    lines = [
        (
            f"- numpy: NumPy {versions.get('numpy')} in a subprocess with OPENBLAS_CORETYPE and "
            f"OPENBLAS_L2_SIZE unset ({unset})"
        ),
        f"- numpy-default: the same with the default environment ({default})",
    ]
    if versions.get("torch"):
        capability = versions.get("torch_cpu_capability")
        lines.append(
            f"- torch: PyTorch {versions['torch']} (CPU capability {capability}); the training "
            "and inference rows' PyTorch in a worker process of its own, with its default OpenMP "
            "wait policy (bench/torch_peer.py), the kernel rows' in fastdl's process"
        )
    lines.append("- reference: fastdl's NumPy reference backend (first rounds only)")
    return lines


def header(meta: dict, roofs: dict) -> str:
    cpu = meta.get("cpu", {})
    peak, copy = roofs.get("peak") or {}, roofs.get("copy") or {}
    openblas = roofs.get("openblas") or {}
    by_isa = ", ".join(f"{isa} {_num(v)}" for isa, v in (peak.get("by_isa") or {}).items())
    machine = f"{cpu.get('Model name', '?')}, {meta.get('cores')} cores, {meta.get('isa')}"
    theoretical = _num(meta.get("theoretical_peak_gflops"))
    versions = meta.get("versions", {})
    fastdl = f"fastdl {versions.get('fastdl')}, kernels {versions.get('fastdl_simd_level')}"
    lines = [
        f"machine: {machine}; load average at start {meta.get('loadavg_start')}",
        f"{fastdl}; {meta.get('settings', {}).get('threads')} threads for every library",
        (
            f"measured fp32 FMA peak (the roof, 'pk'): {_num(peak.get('gflops'))} GFLOP/s for the "
            f"{versions.get('fastdl_simd_level')} build ({peak.get('kernel', '?')}; "
            f"{peak.get('method', '?')}); every ISA: {by_isa or '-'}; "
            f"theoretical {theoretical} GFLOP/s ({meta.get('theoretical_peak_formula')})"
        ),
        (
            f"OpenBLAS sgemm (a peer, not the roof): {_num(openblas.get('gflops'))} GFLOP/s "
            f"({openblas.get('method', '?')})"
        ),
        (
            f"measured copy bandwidth: {_num(copy.get('gbps'))} GB/s "
            f"(1 thread {_num(copy.get('one_thread_gbps'))}, "
            f"2 threads {_num(copy.get('two_threads_gbps'))})"
        ),
        "peers:",
        *_peer_lines(meta),
        RATIO_NOTE,
    ]
    return "\n".join(lines)


def _jsonable(obj):
    if dataclasses.is_dataclass(obj):
        return obj.label()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_jsonable))
    os.replace(tmp, path)


# ---------------------------------------------------------------- plots

PLOT_LABELS = {
    "numpy": "numpy/OpenBLAS (OPENBLAS_* unset)",
    "numpy-default": "numpy/OpenBLAS (default env)",
    "reference": "fastdl reference",
}


def plots(
    directory: Path, rows: list[dict], peak: float | None, theoretical: float | None
) -> list[str]:
    """sgemm GFLOP/s vs n per library, and CNN step time per library per batch.
    Returns the files written ([] when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        path = directory / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))

    gemm = sorted(
        (r for r in rows if r["id"].startswith("sgemm.NN.")), key=lambda r: r["params"]["n"]
    )
    if gemm:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        names = [n for n in gemm[0]["sides"]]
        for name in names:
            points = [(r["params"]["n"], r["sides"].get(name, {}).get("value")) for r in gemm]
            points = [(n, v) for n, v in points if v is not None]
            if points:
                ax.plot(*zip(*points), marker="o", label=PLOT_LABELS.get(name, name))
        for value, label, style in (
            (peak, "measured peak", "--"),
            (theoretical, "theoretical", ":"),
        ):
            if value:
                ax.axhline(value, color="gray", linestyle=style, label=f"{label} {value:.0f}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("n (square sgemm, NN)")
        ax.set_ylabel("GFLOP/s")
        ax.set_title("sgemm, 2 threads")
        ax.legend(fontsize=8)
        save(fig, "sgemm.png")

    steps = [r for r in rows if r["section"] == "training" and r["id"].count(".") == 1]
    if steps:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
        for ax, kind in zip(axes, ("train", "infer")):
            chosen = sorted(
                (r for r in steps if r["params"]["kind"] == kind),
                key=lambda r: r["params"]["batch"],
            )
            libraries = ["fastdl", "torch"]
            reference = next((r for r in rows if r["id"] == "train.b64.reference"), None)
            width = 0.8 / (len(libraries) + (kind == "train" and reference is not None))
            for i, lib in enumerate(libraries):
                xs = [j + i * width for j in range(len(chosen))]
                ys = [r["sides"].get(lib, {}).get("value") or 0 for r in chosen]
                ax.bar(xs, ys, width, label=lib)
            if kind == "train" and reference is not None:
                value = reference["sides"].get("reference", {}).get("value")
                j = next((j for j, r in enumerate(chosen) if r["params"]["batch"] == 64), None)
                if value and j is not None:
                    ax.bar([j + len(libraries) * width], [value], width, label="fastdl reference")
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(chosen))])
            ax.set_xticklabels([f"batch {r['params']['batch']}" for r in chosen])
            ax.set_yscale("log")
            ax.set_ylabel("ms per step")
            ax.set_title("CNN train step" if kind == "train" else "CNN inference")
            ax.legend(fontsize=8)
        save(fig, "cnn_steps.png")
    return written
