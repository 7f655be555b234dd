"""The performance goals G1-G14, and how a row is judged against them. They are the project's
targets for its benchmark on a 2-core machine (README's "Benchmarks" lists them), each one
inequality on figures measured side by side in one run.

A row carries checks; each check is one inequality on one figure of that row:
    ratio  fastdl / peer (time, or memory) <= limit      (median of per-round ratios)
    peak   fastdl GFLOP/s / measured fp32 peak >= limit
    copy   fastdl GB/s / measured copy bandwidth >= limit
    quiet  fastdl's time / its time in the quiet row of the same run <= limit (row["quiet_ratio"])
A goal is met when every check of every row mapped to it is met.

NOTE: "% of peak" is against the FMA peak measured in the same run by a register-resident
multiply-add loop of the ISA build in use (bench/system.py fma_peak), whatever the processor;
a library's sgemm is a peer, never the roof.
"""

from __future__ import annotations

from dataclasses import dataclass

GOALS = {
    "G1": "CNN train step, batch 64, time / PyTorch eager (eager or fastdl.compile) <= 0.35 "
    "(stretch 0.3)",
    "G2": "CNN train step, batch 1 and 256, time / PyTorch <= 0.35 and <= 0.4",
    "G3": "CNN inference, batch 1 and 64, time / PyTorch < 1.0 and <= 0.3",
    "G4": "sgemm n = 512-2048, every transpose: time / OpenBLAS <= 0.91, and >= 80% of peak",
    "G5": "sgemm n = 64 and 128, time / OpenBLAS, Python call to Python call <= 0.8",
    "G6": "conv2 forward and input grad (Winograd where it pays), weight grad: time / PyTorch "
    "<= 0.5, <= 0.5, <= 0.8",
    "G7": "conv1 + ReLU + maxpool forward and its backward: time / PyTorch eager (eager or "
    "fastdl.compile) <= 0.3",
    "G8": "Adam.step() over the CNN's parameters: time / PyTorch Adam(fused=True) <= 0.5",
    "G9": "ReLU, sigmoid, tanh, maxpool, softmax-CE on wide rows: GB/s / measured copy "
    "bandwidth >= 0.8",
    "G10": "per-op Python overhead on a tiny tensor: time / PyTorch <= 1.0",
    "G11": "import fastdl: time and resident memory / import torch <= 0.25",
    "G12": "peak memory of the batch-64 training run / PyTorch's <= 0.5",
    "G13": "batch-64 step while another process keeps one core busy: time / PyTorch's under the "
    "same load <= 1.0, and <= 2.5x fastdl's quiet time",
    "G14": "data-parallel (MPI) CNN step on 2 ranks: samples/s / 1 rank's, allreduce GB/s / copy "
    "bandwidth: reported; scaling efficiency >= 0.8 where cores allow",
}


@dataclass(frozen=True)
class Check:
    goal: str
    kind: str  # "ratio", "peak", "copy" or "quiet"
    limit: float
    peer: str | None = None  # for "ratio": which peer; None means the row's main peer

    def label(self) -> str:
        if self.kind == "ratio":
            return f"{self.goal} <={self.limit:g}"
        if self.kind == "quiet":
            return f"{self.goal} <={self.limit:g}x quiet"
        roof = "pk" if self.kind == "peak" else "bw"
        return f"{self.goal} >={self.limit:.0%} {roof}"


def ratio(goal: str, limit: float, peer: str | None = None) -> Check:
    return Check(goal, "ratio", limit, peer)


def of_peak(goal: str, limit: float) -> Check:
    return Check(goal, "peak", limit)


def of_copy(goal: str, limit: float) -> Check:
    return Check(goal, "copy", limit)


def of_quiet(goal: str, limit: float) -> Check:
    return Check(goal, "quiet", limit)


def judge(row: dict, check: Check, peak_gflops: float | None, copy_gbps: float | None) -> dict:
    """{"goal", "check", "value", "met"}; value and met are None when it cannot be judged."""
    value = None
    if row.get("error"):
        pass  # a failing row judges nothing, whatever it measured before failing
    elif check.kind == "ratio":
        value = row.get("ratios", {}).get(check.peer or row.get("peer"))
    elif check.kind == "quiet":
        value = row.get("quiet_ratio")
    else:
        fastdl = row.get("sides", {}).get("fastdl", {}).get("rate")
        roof = peak_gflops if check.kind == "peak" else copy_gbps
        if fastdl is not None and roof:
            value = fastdl / roof
    met = None
    if value is not None:
        met = value <= check.limit if check.kind in ("ratio", "quiet") else value >= check.limit
    return {"goal": check.goal, "check": check.label(), "value": value, "met": met}


def _all_met(values: list) -> bool | None:
    if any(m is None for m in values):
        return False if any(m is False for m in values) else None
    return all(values)


def summarize(rows: list[dict]) -> list[dict]:
    """One entry per goal: met (True/False/None when nothing judged it) and its judged rows. A
    goal judged on both eager rows and fastdl.compile'd ones (ids ending ".compiled": G1-G3 and
    G7) is met when either path meets all of its checks."""
    out = []
    for goal, text in GOALS.items():
        judged = [(row, v) for row in rows for v in row.get("verdicts", []) if v["goal"] == goal]
        paths: dict = {}
        for row, v in judged:
            paths.setdefault(row["id"].endswith(".compiled"), []).append(v["met"])
        verdicts = [_all_met(values) for values in paths.values()]
        if not verdicts:
            met = None
        elif True in verdicts:
            met = True
        else:
            met = False if False in verdicts else None
        out.append(
            {
                "goal": goal,
                "text": text,
                "met": met,
                "rows": [
                    {"id": row["id"], "check": v["check"], "value": v["value"], "met": v["met"]}
                    for row, v in judged
                ],
            }
        )
    return out
