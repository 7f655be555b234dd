"""The `fastdl` command: a short demo smoke run that checks the files it writes, determinism
and resume, `info`, `selftest`, and one clear line (exit 2, no traceback) for bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

import fastdl
import fastdl.nn as nn
import fastdl.optim as optim
from fastdl.cli import main
from fastdl.datasets import write_idx
from fastdl.models import CNN

pytest.importorskip("safetensors")
pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"
QUICK = ["--epochs", "1", "--limit", "120", "--batch-size", "32", "--no-progress"]


def run_demo(capsys, *args):
    status = main(["demo", *args])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *fragments):
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastdl demo: error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def write_mnist(root, labels_max=9, n=40):
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        write_idx(
            root / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        )
        labels = np.arange(n) % 10
        labels[-1] = labels_max
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8))


# ---------------------------------------------------------------- the demo


def test_demo_smoke_writes_its_files(tmp_path, capsys):
    pytest.importorskip("sklearn")
    out_dir = tmp_path / "out"
    status, out, err = run_demo(
        capsys,
        *QUICK,
        "--out",
        str(out_dir),
        "--saliency",
        "--grad-norms",
        "--clip-grad",
        "5",
        "--l1",
        "1e-6",
        "--weight-decay",
        "1e-4",
    )
    assert status == 0, err
    assert "Total params: 421,642" in out and "test accuracy:" in out
    assert "gradient norms" in out and "conv1.weight" in out
    for name in (
        "model.safetensors",
        "checkpoint.safetensors",
        "history.json",
        "curves.png",
        "saliency.png",
    ):
        assert (out_dir / name).is_file(), name
    assert (out_dir / "curves.png").read_bytes()[:8] == PNG
    assert (out_dir / "saliency.png").read_bytes()[:8] == PNG
    model = CNN()
    model.load_state_dict(fastdl.load(out_dir / "model.safetensors"))
    history = json.loads((out_dir / "history.json").read_text())
    assert len(history["epochs"]) == 1 and 0.0 <= history["test_acc"] <= 1.0
    assert set(history["epochs"][0]) >= {
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "grad_norms",
    }
    assert history["config"]["limit"] == 120
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [
            "model.safetensors",
            "checkpoint.safetensors",
            "history.json",
            "curves.png",
            "saliency.png",
        ]
    )


def test_demo_is_deterministic_and_resume_is_bit_identical(tmp_path, capsys):
    pytest.importorskip("sklearn")
    args = ["--limit", "100", "--no-progress"]
    assert run_demo(capsys, *args, "--epochs", "2", "--out", str(tmp_path / "a"))[0] == 0
    assert run_demo(capsys, *args, "--epochs", "2", "--out", str(tmp_path / "b"))[0] == 0
    weights = (tmp_path / "a" / "model.safetensors").read_bytes()
    assert (tmp_path / "b" / "model.safetensors").read_bytes() == weights
    assert run_demo(capsys, *args, "--epochs", "1", "--out", str(tmp_path / "c"))[0] == 0
    status, out, _ = run_demo(
        capsys,
        *args,
        "--epochs",
        "2",
        "--out",
        str(tmp_path / "c"),
        "--resume",
        str(tmp_path / "c" / "checkpoint.safetensors"),
    )
    assert status == 0 and "resumed from" in out and "epoch 2/2" in out and "epoch 1/2" not in out
    assert (tmp_path / "c" / "model.safetensors").read_bytes() == weights


@pytest.mark.skipif(
    fastdl.cuda.is_available(), reason="a GPU answers here: the cuda run is tested, not refused"
)
def test_demo_on_cuda_without_a_gpu_says_why(tmp_path, capsys):
    status, _, err = run_demo(capsys, *QUICK, "--device", "cuda", "--out", str(tmp_path / "o"))
    assert_one_line_error(status, err, "--device cuda", fastdl.cuda.unavailable_reason())
    assert not (tmp_path / "o").exists()


def test_demo_on_an_unknown_device(tmp_path, capsys):
    status, _, err = run_demo(capsys, *QUICK, "--device", "tpu", "--out", str(tmp_path / "o"))
    assert_one_line_error(status, err, "--device 'tpu'")


def test_demo_on_another_device_trains_as_on_the_cpu(tmp_path, capsys):
    """--device moves the model, every batch and the evaluation there; the strict test device
    (array_api_strict arrays, reference kernels) stands in for a GPU: its run must give the
    CPU's reference-backend run's numbers, its checkpoint must resume on the CPU, and its
    weights come back to the CPU for the files."""
    pytest.importorskip("sklearn")
    strict_device = pytest.importorskip("strict_device", reason="needs array-api-strict")
    args = ["--limit", "60", "--epochs", "2", "--backend", "reference", "--no-progress"]
    with strict_device.registered() as name:
        status, out, err = run_demo(capsys, *args, "--device", name, "--out", str(tmp_path / "s"))
    assert status == 0, err
    assert f"device {name}" in out
    assert run_demo(capsys, *args, "--out", str(tmp_path / "c"))[0] == 0
    on_device, on_cpu = (
        json.loads((tmp_path / d / "history.json").read_text()) for d in ("s", "c")
    )
    for a, b in zip(on_device["epochs"], on_cpu["epochs"], strict=True):
        for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
            assert a[key] == pytest.approx(b[key], rel=1e-5), key
    assert on_device["test_acc"] == on_cpu["test_acc"]
    state = fastdl.load(tmp_path / "s" / "model.safetensors")
    assert all(t.device.type == "cpu" for t in state.values())
    resumed = run_demo(
        capsys, *args[:2], "--epochs", "3", "--no-progress", "--out", str(tmp_path / "s"),
        "--resume", str(tmp_path / "s" / "checkpoint.safetensors"),
    )
    assert resumed[0] == 0 and "epoch 3/3" in resumed[1]


def test_demo_refuses_a_non_cpu_device_with_several_ranks(tmp_path, monkeypatch):
    # fastdl.distributed reduces NumPy arrays: a job of several ranks trains on the CPU only.
    strict_device = pytest.importorskip("strict_device", reason="needs array-api-strict")
    from fastdl import demo as demo_module

    monkeypatch.setattr(demo_module, "_join_job", lambda cfg: (0, 2))  # as rank 0 of 2
    with strict_device.registered() as name:
        cfg = demo_module.DemoConfig(device=name, out=str(tmp_path / "o"), limit=20, epochs=1)
        with pytest.raises(demo_module.DemoError, match=f"--device {name} with 2 ranks"):
            demo_module.run(cfg, log=lambda line: None)
    assert not (tmp_path / "o").exists()


def test_demo_on_mnist_files(tmp_path, capsys):
    write_mnist(tmp_path)
    status, out, err = run_demo(
        capsys,
        *QUICK,
        "--data",
        "mnist",
        "--root",
        str(tmp_path),
        "--out",
        str(tmp_path / "out"),
        "--patience",
        "1",
    )
    assert status == 0, err
    assert "data: mnist, 36 train / 4 validation / 40 test images" in out


# ---------------------------------------------------------------- bad input


def test_missing_data_directory(tmp_path, capsys):
    status, _, err = run_demo(
        capsys,
        "--data",
        "mnist",
        "--root",
        str(tmp_path / "nowhere"),
        *QUICK,
        "--out",
        str(tmp_path / "out"),
    )
    assert_one_line_error(status, err, "nowhere", "does not exist")


def test_mnist_without_root(capsys, tmp_path):
    status, _, err = run_demo(capsys, "--data", "mnist", "--out", str(tmp_path))
    assert_one_line_error(status, err, "--root")


def test_missing_and_malformed_idx_files(tmp_path, capsys):
    write_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    status, _, err = run_demo(
        capsys, "--data", "mnist", "--root", str(tmp_path), *QUICK, "--out", str(tmp_path / "o")
    )
    assert_one_line_error(status, err, "missing file t10k-images-idx3-ubyte")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00\x00")
    status, _, err = run_demo(
        capsys, "--data", "mnist", "--root", str(tmp_path), *QUICK, "--out", str(tmp_path / "o")
    )
    assert_one_line_error(status, err, "t10k-images-idx3-ubyte", "truncated header")


def test_labels_outside_the_class_range(tmp_path, capsys):
    write_mnist(tmp_path, labels_max=12)
    status, _, err = run_demo(
        capsys, "--data", "mnist", "--root", str(tmp_path), *QUICK, "--out", str(tmp_path / "o")
    )
    assert_one_line_error(status, err, "labels must be in [0, 10), got 12")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--batch-size", "0"], "--batch-size: must be >= 1, got 0"),
        (["--epochs", "-2"], "--epochs: must be >= 1"),
        (["--lr", "abc"], "--lr: expected a number"),
        (["--data", "cifar"], "invalid choice"),
    ],
)
def test_bad_options_exit_2_with_usage(args, fragment, capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def demo_checkpoint(model, optimizer):
    return {
        "kind": "fastdl-demo-cnn",
        "epoch": 1,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "normalize": {"type": "Normalize", "mean": [0.0], "std": [1.0]},
        "history": [],
        "best": {"val_loss": 1.0, "epoch": 1, "bad_epochs": 0, "state": None},
    }


def test_resume_from_a_different_model_loses_nothing(tmp_path, capsys):
    pytest.importorskip("sklearn")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "model.safetensors").write_bytes(b"earlier weights")
    other = nn.Sequential(nn.Linear(4, 2))
    path = out_dir / "checkpoint.safetensors"
    fastdl.save(demo_checkpoint(other, optim.Adam(other.parameters())), path)
    saved = path.read_bytes()
    status, _, err = run_demo(capsys, *QUICK, "--out", str(out_dir), "--resume", str(path))
    assert_one_line_error(status, err, "does not fit the founding CNN", "Missing key(s)")
    assert (
        path.read_bytes() == saved
        and (out_dir / "model.safetensors").read_bytes() == b"earlier weights"
    )


def test_resume_from_foreign_or_missing_files(tmp_path, capsys):
    pytest.importorskip("sklearn")
    fastdl.save(CNN().state_dict(), tmp_path / "weights.safetensors")
    status, _, err = run_demo(
        capsys,
        *QUICK,
        "--out",
        str(tmp_path / "o"),
        "--resume",
        str(tmp_path / "weights.safetensors"),
    )
    assert_one_line_error(status, err, "is not a `fastdl demo` checkpoint")
    (tmp_path / "junk").write_bytes(b"not a checkpoint at all")
    status, _, err = run_demo(
        capsys, *QUICK, "--out", str(tmp_path / "o"), "--resume", str(tmp_path / "junk")
    )
    assert_one_line_error(status, err, "--resume", "is not a safetensors checkpoint")
    status, _, err = run_demo(
        capsys, *QUICK, "--out", str(tmp_path / "o"), "--resume", str(tmp_path / "none")
    )
    assert_one_line_error(status, err, "no checkpoint at")


def test_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    status, _, err = run_demo(capsys, *QUICK, "--out", str(blocker / "sub"))
    assert_one_line_error(status, err, "cannot write to --out")
    assert blocker.read_text() == "keep me"


def test_command_line_error_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastdl.cli",
            "demo",
            "--data",
            "mnist",
            "--root",
            str(tmp_path / "none"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "does not exist" in proc.stderr


# ---------------------------------------------------------------- info and selftest


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for key in ("version", "simd", "threads", "cuda_built", "mpi"):
        assert key in out


def test_selftest_passes(capsys):
    assert main(["selftest"]) == 0
    out = capsys.readouterr().out
    for name in (
        "matmul",
        "conv2d_backward",
        "maxpool2d_forward",
        "cross_entropy_backward",
        "adam_step",
    ):
        assert name in out
    assert "match the reference" in out


def test_selftest_reports_a_mismatch(monkeypatch, capsys):
    from fastdl.backends import cpu

    real = cpu.tanh_forward
    monkeypatch.setattr(cpu, "tanh_forward", lambda x: real(x) * np.float32(1.001))
    assert main(["selftest"]) == 1
    out = capsys.readouterr().out
    assert "tanh_forward" in out and "MISMATCH" in out and "FAILED: 1 of" in out
