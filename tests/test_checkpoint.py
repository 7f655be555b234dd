"""Checkpoints: round trips of nested state dicts, bit-identical resumed training, atomic writes
under simulated crashes, and clear errors for truncated, corrupted or foreign files."""

import os
import pickle
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest

import fastdl
import fastdl.nn as nn
import fastdl.optim as optim
from fastdl.checkpoint import CheckpointError

pytest.importorskip("safetensors")


def small_model():
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def arrays_equal(a, b):
    return all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a.values(), b.values()))


# ---------------------------------------------------------------- round trips


def test_nested_roundtrip(tmp_path):
    obj = {
        # a 0-d tensor (NOTE: not fastdl.tensor(5.0), which currently has shape (1,))
        "weights": OrderedDict(
            w=fastdl.randn(3, 4), step=fastdl.from_numpy(np.array(5.0, np.float32))
        ),
        "arrays": [np.arange(6, dtype=np.int64).reshape(2, 3), np.zeros((0, 3), np.float32)],
        "flags": np.array([True, False]),
        "scalar": np.array(2.5),
        "small": {np.int64(0): np.array([1, 2], np.uint8), 7: np.float16(1.5)},
        "plain": (1, -2.5, "text", None, True, float("nan"), 10**18),
    }
    path = tmp_path / "ckpt.safetensors"
    fastdl.save(obj, path)
    back = fastdl.load(path)
    assert list(back) == ["weights", "arrays", "flags", "scalar", "small", "plain"]
    assert back["scalar"].shape == () and back["scalar"].dtype == np.float64
    assert isinstance(back["weights"]["w"], fastdl.Tensor)
    assert np.array_equal(back["weights"]["w"].numpy(), obj["weights"]["w"].numpy())
    assert back["weights"]["step"].shape == () and back["weights"]["step"].item() == 5.0
    assert isinstance(back["arrays"], list) and isinstance(back["arrays"][0], np.ndarray)
    assert back["arrays"][0].dtype == np.int64 and back["arrays"][1].shape == (0, 3)
    assert back["flags"].dtype == np.bool_ and back["flags"].tolist() == [True, False]
    assert list(back["small"]) == [0, 7] and back["small"][0].dtype == np.uint8
    assert back["small"][7] == 1.5
    plain = back["plain"]
    assert isinstance(plain, tuple) and plain[:5] == (1, -2.5, "text", None, True)
    assert np.isnan(plain[5]) and plain[6] == 10**18


def test_model_state_dict_keeps_its_keys_for_other_tools(tmp_path):
    from safetensors.numpy import load_file

    model = small_model()
    fastdl.save(model.state_dict(), tmp_path / "m.safetensors")
    assert sorted(load_file(tmp_path / "m.safetensors")) == sorted(model.state_dict())
    fresh = small_model()
    fresh.load_state_dict(fastdl.load(tmp_path / "m.safetensors"))
    assert arrays_equal(fresh.state_dict(), model.state_dict())


def test_plain_safetensors_file_loads_as_flat_dict(tmp_path):
    from safetensors.numpy import save_file

    save_file({"b": np.ones(2, np.float32), "a": np.zeros(3, np.int32)}, tmp_path / "p.safetensors")
    back = fastdl.load(tmp_path / "p.safetensors")
    assert set(back) == {"a", "b"} and isinstance(back["a"], fastdl.Tensor)


def test_identical_contents_give_identical_bytes(tmp_path):
    state = {"m": small_model().state_dict(), "epoch": 3, "lr": 0.1}
    fastdl.save(state, tmp_path / "a")
    fastdl.save(state, tmp_path / "b")
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda p: optim.Adam(p, lr=1e-2),
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        lambda p: optim.AdamW(p, lr=1e-2),
    ],
)
def test_resumed_training_is_bit_identical(tmp_path, make_optimizer):
    rng = np.random.default_rng(0)
    batches = [
        (
            fastdl.tensor(rng.standard_normal((16, 6)).astype(np.float32)),
            fastdl.tensor(rng.integers(0, 3, 16)),
        )
        for _ in range(6)
    ]

    def train(model, opt, steps):
        for x, y in steps:
            opt.zero_grad()
            nn.CrossEntropyLoss()(model(x), y).backward()
            opt.step()

    fastdl.manual_seed(1)
    straight = small_model()
    opt = make_optimizer(straight.parameters())
    train(straight, opt, batches)

    fastdl.manual_seed(1)
    first = small_model()
    opt1 = make_optimizer(first.parameters())
    train(first, opt1, batches[:3])
    path = tmp_path / "mid.safetensors"
    fastdl.save({"model": first.state_dict(), "optimizer": opt1.state_dict()}, path)
    del first, opt1

    ckpt = fastdl.load(path)
    resumed = small_model()  # fresh weights, overwritten by the checkpoint
    opt2 = make_optimizer(resumed.parameters())
    resumed.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    train(resumed, opt2, batches[3:])
    assert arrays_equal(resumed.state_dict(), straight.state_dict())


def test_founding_cnn_resume_is_bit_identical(tmp_path):
    from fastdl.models import CNN

    rng = np.random.default_rng(1)
    x = fastdl.tensor(rng.random((4, 1, 28, 28)).astype(np.float32))
    y = fastdl.tensor(rng.integers(0, 10, 4))

    def step(model, opt):
        opt.zero_grad()
        nn.CrossEntropyLoss()(model(x), y).backward()
        opt.step()

    fastdl.manual_seed(0)
    a = CNN()
    opt_a = optim.Adam(a.parameters())
    step(a, opt_a)
    fastdl.save({"model": a.state_dict(), "optimizer": opt_a.state_dict()}, tmp_path / "c")
    b, opt_b = CNN(), None
    opt_b = optim.Adam(b.parameters())
    ck = fastdl.load(tmp_path / "c")
    b.load_state_dict(ck["model"])
    opt_b.load_state_dict(ck["optimizer"])
    step(a, opt_a)
    step(b, opt_b)
    assert arrays_equal(a.state_dict(), b.state_dict())


# ---------------------------------------------------------------- atomicity


def test_crash_before_rename_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    fastdl.save({"version": 1, "w": np.ones(3)}, path)
    before = path.read_bytes()

    def crash(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        fastdl.save({"version": 2, "w": np.zeros(3)}, path)
    assert path.read_bytes() == before and fastdl.load(path)["version"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]  # temp file removed


def test_crash_during_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    fastdl.save({"version": 1}, path)
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(OSError, match="I/O error"):
        fastdl.save({"version": 2}, path)
    monkeypatch.undo()
    assert fastdl.load(path)["version"] == 1
    assert len(list(tmp_path.iterdir())) == 1


def test_killed_process_mid_save_leaves_previous_checkpoint(tmp_path):
    """A real crash: the process dies (os._exit, no cleanup) after writing the temporary file
    and before the rename."""
    path = tmp_path / "ckpt.safetensors"
    fastdl.save({"version": 1}, path)
    script = (
        "import os, sys, fastdl\n"
        "os.replace = lambda *a: os._exit(9)\n"
        f"fastdl.save({{'version': 2, 'big': fastdl.zeros(1000, 1000)}}, {str(path)!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == 9
    assert fastdl.load(path)["version"] == 1


def test_save_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder .* does not exist"):
        fastdl.save({"a": 1}, tmp_path / "missing" / "x.safetensors")
    with pytest.raises(
        TypeError, match="cannot store a Sequential at 'model'; save its state_dict"
    ):
        fastdl.save({"model": small_model()}, tmp_path / "x")
    with pytest.raises(TypeError, match="dict keys must be str or int"):
        fastdl.save({(1, 2): 3}, tmp_path / "x")
    with pytest.raises(TypeError, match="dtype object"):
        fastdl.save({"a": np.array(["x"], dtype=object)}, tmp_path / "x")
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- bad files


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.safetensors"
    fastdl.save({"model": small_model().state_dict(), "epoch": 2}, path)
    return path


def test_missing_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        fastdl.load(tmp_path / "nope.safetensors")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        fastdl.load(tmp_path)


@pytest.mark.parametrize("cut", [0, 5, 8, 40, -1, -100])
def test_truncated_file(good_file, cut):
    data = good_file.read_bytes()
    good_file.write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match="good.safetensors"):
        fastdl.load(good_file)


def test_corrupted_tensor_bytes_fail_the_checksum(good_file):
    data = bytearray(good_file.read_bytes())
    data[-3] ^= 0xFF
    good_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum does not match"):
        fastdl.load(good_file)


def test_corrupted_header(good_file):
    data = bytearray(good_file.read_bytes())
    at = data.index(b"epoch")
    data[at + 10 : at + 14] = b"\x00\xff{}"
    good_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        fastdl.load(good_file)


@pytest.mark.parametrize(
    "content",
    [
        b"just some text, not a checkpoint",
        b"\x89PNG\r\n\x1a\n" + bytes(100),
        pickle.dumps({"a": 1}),
        (20).to_bytes(8, "little") + b'{"a": [1, 2, 3]}    ',
    ],
)
def test_foreign_files_are_rejected_without_unpickling(tmp_path, content):
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="foreign.bin"):
        fastdl.load(path)


def test_map_location(good_file):
    assert fastdl.load(good_file, map_location="cpu")["epoch"] == 2
    with pytest.raises(RuntimeError, match="CPU only"):
        fastdl.load(good_file, map_location="cuda")
