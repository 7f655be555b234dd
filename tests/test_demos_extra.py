"""`fastdl demo tabular` and `fastdl demo autoencoder`: small runs that check the files they
write, finite histories, sane figures, and one clear line for what is missing or misplaced."""

import importlib.util
import json
import math

import numpy as np
import pytest

import fastdl
from fastdl.cli import main

pytest.importorskip("safetensors")
pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


def run_demo(capsys, *args):
    status = main(["demo", *args])
    out, err = capsys.readouterr()
    return status, out, err


def check_files(out_dir, names):
    for name in names:
        assert (out_dir / name).is_file(), name
        if name.endswith(".png"):
            assert (out_dir / name).read_bytes()[:8] == PNG, name
    history = json.loads((out_dir / "history.json").read_text())
    for record in history["epochs"]:
        for key, value in record.items():
            assert isinstance(value, (int, float)) and math.isfinite(value), (key, value)
    return history


# ---------------------------------------------------------------- tabular


def needs_penguins():
    pytest.importorskip("pandas", reason="the tabular demo reads a pandas DataFrame")
    pytest.importorskip(
        "palmerpenguins", reason="the tabular demo's data: pip install palmerpenguins"
    )


def test_tabular_small_run_writes_its_files(tmp_path, capsys):
    needs_penguins()
    out_dir = tmp_path / "tab"
    status, out, err = run_demo(
        capsys, "tabular", "--epochs", "3", "--limit", "60", "--no-progress", "--out", str(out_dir)
    )
    assert status == 0, err
    assert "test accuracy:" in out and "RMSE" in out and "epoch 3/3" in out
    assert "missing in train, imputed: {'sex'" in out  # the penguins do lack values
    names = ["model.safetensors", "preprocessing.safetensors", "history.json", "curves.png",
             "predictions.png"]
    history = check_files(out_dir, names)
    assert len(history["epochs"]) == 3 and history["config"]["limit"] == 60
    assert 0.0 <= history["test_acc"] <= 1.0
    assert 0.0 < history["test_rmse_g"] < 5000.0
    # the weights load into the demo's model; the preprocessing state is what was fitted
    from fastdl.demos.tabular import penguin_net

    model = penguin_net(len(history["features"]), 3)
    model.load_state_dict(fastdl.load(out_dir / "model.safetensors"))
    prep = fastdl.load(out_dir / "preprocessing.safetensors")
    assert prep["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert prep["encoder"]["categories"][1] == ["female", "male"]


def test_tabular_learns_species_and_mass(tmp_path, capsys):
    needs_penguins()
    out_dir = tmp_path / "tab"
    status, out, err = run_demo(
        capsys, "tabular", "--epochs", "25", "--no-progress", "--out", str(out_dir)
    )
    assert status == 0, err
    history = json.loads((out_dir / "history.json").read_text())
    assert history["test_acc"] >= 0.9
    # well under always predicting the training mean (about 800 g), above a perfect fit
    assert 100.0 < history["test_rmse_g"] < 0.6 * history["test_rmse_g_mean_baseline"]


def test_tabular_is_deterministic(tmp_path, capsys):
    needs_penguins()
    runs = []
    for name in ("a", "b"):
        args = ["tabular", "--epochs", "2", "--no-progress", "--out", str(tmp_path / name)]
        assert run_demo(capsys, *args)[0] == 0
        runs.append(fastdl.load(tmp_path / name / "model.safetensors"))
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key].numpy(), runs[1][key].numpy())


def test_tabular_without_palmerpenguins_says_how_to_install(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    def find_spec(name, *args):
        return None if name == "palmerpenguins" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    status, out, err = run_demo(capsys, "tabular", "--out", str(tmp_path / "t"))
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "palmerpenguins" in lines[0] and "fastdl[demo]" in lines[0]
    assert "Traceback" not in err


# ---------------------------------------------------------------- autoencoder


def test_autoencoder_small_run_writes_its_files(tmp_path, capsys):
    pytest.importorskip("sklearn", reason="scikit-learn ships the digits")
    out_dir = tmp_path / "ae"
    status, out, err = run_demo(
        capsys, "autoencoder", "--epochs", "2", "--limit", "120", "--no-progress",
        "--out", str(out_dir),
    )
    assert status == 0, err
    assert "test reconstruction MSE" in out and "labels unused" in out
    names = ["model.safetensors", "history.json", "curves.png", "reconstructions.png",
             "embedding.png"]
    history = check_files(out_dir, names)
    assert len(history["epochs"]) == 2 and history["test_samples"] == 120
    # MSE per pixel of [0, 1] images: a sigmoid decoder cannot do worse than 1; a trained
    # one is far below, and the references are computed on the same test images
    assert 0.0 < history["test_loss"] < 0.2
    assert 0.0 < history["test_loss_pca"] < history["test_loss_mean_image"] < 0.2
    from fastdl.demos.autoencoder import autoencoder

    autoencoder(2).load_state_dict(fastdl.load(out_dir / "model.safetensors"))


def test_autoencoder_wider_code_skips_the_scatter(tmp_path, capsys):
    pytest.importorskip("sklearn", reason="scikit-learn ships the digits")
    out_dir = tmp_path / "ae"
    status, out, err = run_demo(
        capsys, "autoencoder", "--epochs", "1", "--limit", "40", "--code", "3", "--no-progress",
        "--out", str(out_dir),
    )
    assert status == 0, err
    assert "no embedding.png" in out and not (out_dir / "embedding.png").exists()


# ---------------------------------------------------------------- the command line


def test_options_before_the_demo_name_are_refused(capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--epochs", "3", "tabular"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "go after its name: fastdl demo tabular --epochs 3" in err


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["tabular", "--epochs", "0"], "--epochs: must be >= 1"),
        (["autoencoder", "--lr", "x"], "--lr: expected a number"),
        (["autoencoder", "--data", "mnist"], "unrecognized arguments"),
        (["regression"], "invalid choice"),
    ],
)
def test_bad_options_exit_2(args, fragment, capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", *args])
    assert info.value.code == 2
    assert fragment in capsys.readouterr().err


def test_bad_dropout_is_one_line(tmp_path, capsys):
    status, out, err = run_demo(capsys, "tabular", "--dropout", "1", "--out", str(tmp_path))
    assert status == 2 and err.strip() == "fastdl demo: error: --dropout must be in [0, 1), got 1.0"
