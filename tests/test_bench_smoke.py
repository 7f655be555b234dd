"""Smoke test of the benchmark suite: a tiny subset of `python -m bench` runs in a subprocess
and writes JSON with the expected keys. No timing is judged here (goals live in bench/)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    command = [
        sys.executable,
        "-m",
        "bench",
        "--quick",
        "--rounds",
        "2",
        "--only",
        "system",
        "--match",
        "overhead.add,import.time",
        "--out",
        str(out),
    ]
    done = subprocess.run(
        command, check=False, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| what |" in done.stdout  # the table was printed
    return json.loads(out.read_text())


def test_top_level_and_meta(results):
    assert {"meta", "roofs", "rows", "goals", "table_markdown"} <= results.keys()
    meta = results["meta"]
    for key in (
        "date",
        "command",
        "cpu",
        "isa",
        "isa_flags",
        "cores",
        "versions",
        "settings",
        "numpy_worker",
        "numpy_default_worker",
        "loadavg_start",
        "loadavg_end",
    ):
        assert key in meta, key
    # The fair GEMM peer ran without the OPENBLAS_* variables, and says which kernel it used.
    assert meta["numpy_worker"]["env"] == {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None}
    assert "blas" in meta["numpy_worker"]


def test_roofs(results):
    # The roof is fastdl's own FMA loop for the ISA in use; OpenBLAS's sgemm is a peer's figure.
    from fastdl import _C

    peak = results["roofs"]["peak"]
    assert peak["gflops"] > 0 and peak["isa"] == _C.simd_level()
    assert set(peak["by_isa"]) == set(_C.supported_isas())
    assert peak["gflops"] == peak["by_isa"][peak["isa"]]
    assert results["roofs"]["openblas"]["gflops"] > 0
    assert results["roofs"]["copy"]["gbps"] > 0


def test_rows_and_goals(results):
    rows = {row["id"]: row for row in results["rows"]}
    assert {"overhead.add", "overhead.add_grad", "import.time"} <= rows.keys()
    for row in rows.values():
        for key in ("what", "unit", "sides", "ratios", "verdicts", "error", "others_cpu"):
            assert key in row, key
        assert row["error"] is None, row["error"]
        assert row["sides"]["fastdl"]["value"] > 0
    assert [g["goal"] for g in results["goals"]] == [f"G{i}" for i in range(1, 15)]


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed: no PyTorch side to check")
def test_torch_side(results):
    row = next(r for r in results["rows"] if r["id"] == "overhead.add")
    assert row["sides"]["torch"]["value"] > 0
    assert row["ratios"]["torch"] > 0
    assert row["verdicts"][0]["goal"] == "G10"
    assert results["meta"]["versions"]["torch"]


def test_a_goal_is_met_by_the_eager_or_the_compiled_rows():
    from bench import goals

    def row(id_, met):
        return {"id": id_, "verdicts": [{"goal": "G1", "check": "G1 <=0.35", "value": 0.5, "met": met}]}

    def g1(rows):
        return next(g for g in goals.summarize(rows) if g["goal"] == "G1")["met"]

    assert g1([row("train.b64", False), row("train.b64.compiled", True)]) is True
    assert g1([row("train.b64", False), row("train.b64.compiled", False)]) is False
    assert g1([row("train.b64", None), row("train.b64.compiled", None)]) is None
    assert g1([]) is None


def test_readme_lists_the_goals():
    from bench.goals import GOALS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    listed = [line for line in readme.splitlines() if line.startswith("- **G")]
    assert listed == [f"- **{goal}**: {text}" for goal, text in GOALS.items()]


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed: no PyTorch worker to start")
def test_torch_worker_runs_pytorch_with_its_own_openmp_policy(monkeypatch):
    # The training rows time PyTorch in a worker that imports torch first, so fastdl's passive
    # OpenMP wait (set when fastdl loads libgomp) does not slow PyTorch there.
    monkeypatch.syspath_prepend(str(REPO))
    from bench.torch_peer import TorchPeer

    peer = TorchPeer(threads=1)
    try:
        info = peer.info()
        assert info["threads"] == 1 and info["torch"]
        assert info["openmp_wait_policy"].startswith("libgomp's default")
        side = peer.model_side("torch", "infer", 2)
        assert side.run(1) > 0 and side.run(3) > 0
        with pytest.raises(RuntimeError, match="unknown op"):
            peer.request(op="nonsense")
    finally:
        peer.close()
