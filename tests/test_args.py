"""fastdl._args: the one place where the public API normalises and checks its arguments."""

import numpy as np
import pytest

import fastdl
from fastdl import nn
from fastdl._args import check_reduction, float_arg, ntuple, pair, single, tensor_arg


def test_ints_and_sequences_of_ints():
    assert pair(3, "op", "k") == (3, 3)
    assert pair((1, np.int64(2)), "op", "k") == (1, 2)
    assert single((4,), "op", "k") == 4
    assert ntuple([1, 2, 3], 3, "op", "k") == (1, 2, 3)


@pytest.mark.parametrize("bad", [True, 1.0, (1,), (1, 2, 3), "2", None, (1, True)])
def test_bad_values_name_the_op_and_the_value(bad):
    with pytest.raises(TypeError, match=r"\[conv2d\] stride must be an int or a pair of ints"):
        pair(bad, "conv2d", "stride")


def test_reductions_and_tensor_arguments():
    assert check_reduction("sum", "l1_loss") == "sum"
    with pytest.raises(ValueError, match=r"\[l1_loss\] reduction must be one of"):
        check_reduction("avg", "l1_loss")
    with pytest.raises(TypeError, match=r"\[relu\] input must be a Tensor, got list"):
        tensor_arg([1.0], "relu", "input")
    with pytest.raises(TypeError, match="must be a floating point tensor, got fastdl.int64"):
        float_arg(fastdl.tensor([1]), "relu", "input")


def test_layers_and_functions_share_the_checks():
    for make in (lambda: nn.Conv2d(1, 1, (3, 3, 3)), lambda: nn.MaxPool2d(2, stride=(1, 1, 1)),
                 lambda: nn.AvgPool1d((2, 2)), lambda: nn.Conv1d(1, 1, 2, stride=1.5)):
        with pytest.raises(TypeError, match="must be an int or"):
            make()
    with pytest.raises(ValueError, match=r"\[MSELoss\] reduction must be one of"):
        nn.MSELoss(reduction="avg")
    assert nn.AvgPool1d(2).kernel_size == (2,)


def test_layer_signatures_are_pytorchs():
    # Every nn class that PyTorch also has takes the same parameters, in the same order, with
    # the same defaults (positional calls mean the same thing). Module, Sigmoid and Tanh take
    # no arguments here; PyTorch's accept *args, **kwargs only to pass them to Module.
    import inspect

    torch = pytest.importorskip("torch")
    checked = 0
    for name in nn.__all__:
        ours, theirs = getattr(nn, name), getattr(torch.nn, name, None)
        if not inspect.isclass(theirs) or name in ("Module", "Sigmoid", "Tanh"):
            continue
        expected = [(p.name, p.default) for p in inspect.signature(theirs).parameters.values()]
        got = [(p.name, p.default) for p in inspect.signature(ours).parameters.values()]
        assert got == expected, name
        checked += 1
    assert checked > 50
