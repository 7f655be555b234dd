"""fastdl.summary: the torchinfo-style table of layers, output shapes and parameter counts."""

import numpy as np
import pytest

import fastdl
import fastdl.nn as nn
from fastdl.models import CNN


def test_founding_cnn_summary():
    model = CNN()
    s = fastdl.summary(model, (1, 1, 28, 28))
    rows = [(r.kind, r.name, r.output_shape, r.num_params) for r in s.layers]
    assert rows[0] == ("CNN", "", [1, 10], 0)
    assert rows[1] == ("Conv2d", "conv1", [1, 32, 28, 28], 320)
    assert rows[4] == ("Conv2d", "conv2", [1, 64, 14, 14], 18_496)
    assert rows[6] == ("MaxPool2d", "max_pool", [1, 64, 7, 7], 0)
    assert rows[8] == ("Linear", "fc1", [1, 128], 401_536)
    assert rows[-1] == ("Linear", "fc2", [1, 10], 1_290)
    assert len(rows) == 11  # relu and max_pool are called twice and listed per call
    assert s.total_params == s.trainable_params == 421_642
    text = str(s)
    for expected in (
        "Layer (type)",
        "Output Shape",
        "Param #",
        "├─Conv2d: conv1",
        "[1, 64, 14, 14]",
        "401,536",
        "Total params: 421,642",
        "Trainable params: 421,642",
        "Non-trainable params: 0",
        "Params size (MB): 1.69",
    ):
        assert expected in text


def test_summary_matches_torch_parameter_counts():
    torch = pytest.importorskip("torch")

    reference = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(3136, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )
    assert fastdl.summary(CNN(), (2, 1, 28, 28)).total_params == sum(
        p.numel() for p in reference.parameters()
    )


def test_summary_leaves_mode_and_random_state_alone():
    model = CNN()
    model.train()
    fastdl.manual_seed(3)
    expected = fastdl.randn(3).numpy().copy()
    fastdl.manual_seed(3)
    fastdl.summary(model, (1, 1, 28, 28))
    assert model.training and np.array_equal(fastdl.randn(3).numpy(), expected)
    model.eval()
    fastdl.summary(model, (1, 1, 28, 28))
    assert not model.training


def test_nested_depth_and_frozen_parameters():
    model = nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 2)))
    model[0].weight.requires_grad_(False)
    s = fastdl.summary(model, (5, 4))
    assert [(r.depth, r.kind) for r in s.layers] == [
        (0, "Sequential"),
        (1, "Linear"),
        (1, "Sequential"),
        (2, "ReLU"),
        (2, "Linear"),
    ]
    assert s.total_params == 23 and s.trainable_params == 11
    assert "│ ├─Linear: 1" in str(s) and "Non-trainable params: 12" in str(s)
    folded = fastdl.summary(model, (5, 4), depth=1)
    assert [(r.kind, r.num_params) for r in folded.layers] == [
        ("Sequential", 0),
        ("Linear", 15),
        ("Sequential", 8),
    ]


def test_shared_module_counted_once():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    s = fastdl.summary(model, (1, 3))
    assert s.total_params == 12
    assert [r.repeated for r in s.layers] == [False, False, False, True]
    assert "(shared)" in str(s)


def test_summary_errors():
    with pytest.raises(ValueError, match="input_size must be a shape of positive ints"):
        fastdl.summary(CNN(), (1, 0, 28, 28))
    with pytest.raises(RuntimeError, match=r"CNN failed on an input of size \(1, 1, 20, 20\)"):
        fastdl.summary(CNN(), (1, 1, 20, 20))
