"""fastdl.explain.saliency: input gradients of the target class score."""

import numpy as np
import pytest

import fastdl
import fastdl.nn as nn
from fastdl.explain import saliency
from fastdl.models import CNN


def test_saliency_of_a_linear_model_is_its_weights():
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    x = fastdl.randn(2, 1, 2, 3)
    maps = saliency(model, x, target=[2, 0])
    w = model[1].weight.detach().numpy()
    assert maps.shape == (2, 2, 3)
    np.testing.assert_allclose(maps.numpy()[0], np.abs(w[2]).reshape(2, 3), rtol=1e-6)
    np.testing.assert_allclose(maps.numpy()[1], np.abs(w[0]).reshape(2, 3), rtol=1e-6)


def test_saliency_max_over_channels_and_default_target():
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 2 * 2, 2))
    x = fastdl.randn(1, 2, 2, 2)
    with fastdl.no_grad():
        predicted = int(model(x).numpy().argmax())
    maps = saliency(model, x).numpy()
    w = np.abs(model[1].weight.detach().numpy()[predicted]).reshape(2, 2, 2)
    np.testing.assert_allclose(maps[0], w.max(axis=0), rtol=1e-6)


def test_saliency_leaves_the_model_untouched():
    model = CNN()
    model.train()
    x = fastdl.rand(2, 1, 28, 28)
    maps = saliency(model, x, target=3)
    assert maps.shape == (2, 28, 28) and (maps.numpy() >= 0).all() and maps.numpy().max() > 0
    assert model.training
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_saliency_errors():
    model = CNN()
    with pytest.raises(ValueError, match=r"targets must be in \[0, 10\)"):
        saliency(model, fastdl.zeros(1, 1, 28, 28), target=10)
    with pytest.raises(ValueError, match="one target per sample"):
        saliency(model, fastdl.zeros(2, 1, 28, 28), target=[1, 2, 3])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        saliency(model, fastdl.zeros(28, 28))
    with pytest.raises(TypeError, match="integer class indices"):
        saliency(model, fastdl.zeros(1, 1, 28, 28), target=1.5)
