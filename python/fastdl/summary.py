"""`fastdl.summary(model, input_size)`: a torchinfo-style table of layers, output shapes and
parameter counts, found by running one forward pass (no gradients, eval mode) with hooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ._creation import zeros
from ._tensor import Tensor

WIDTHS = (44, 26, 16)


@dataclass
class LayerInfo:
    """One row: a module call, in the order the forward pass entered it."""

    name: str  # attribute path in the model ("" for the model itself)
    kind: str  # class name
    depth: int
    num_params: int  # the module's own parameters (recursive ones for collapsed rows)
    output_shape: Optional[list] = None
    repeated: bool = False  # a module called again (shared): its parameters were counted
    is_leaf: bool = True  # no child modules, or its children are folded into it


def _shape_of(output: Any) -> Optional[list]:
    if isinstance(output, Tensor):
        return list(output.shape)
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return list(output[0].shape)
    return None


def _count(module: Any, recurse: bool) -> int:
    return sum(int(p.numel()) for p in module.parameters(recurse=recurse))


class ModelSummary:
    """What `summary` returns; `str()` (or `print`) gives the table.

    >>> import fastdl, fastdl.nn as nn
    >>> s = fastdl.summary(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), (2, 4))
    >>> s.total_params, s.layers[1].output_shape
    (15, [2, 3])
    """

    def __init__(self, model: Any, layers: list, input_size: list, dtype: np.dtype) -> None:
        self.model_name = type(model).__name__
        self.layers = layers
        self.input_size = input_size
        params = list(model.parameters())
        self.total_params = sum(int(p.numel()) for p in params)
        self.trainable_params = sum(int(p.numel()) for p in params if p.requires_grad)
        self.itemsize = np.dtype(dtype).itemsize
        leaf_outputs = sum(
            int(np.prod(row.output_shape))
            for row in layers
            if row.output_shape is not None and row.is_leaf and row.depth > 0
        )
        self.input_bytes = int(np.prod([int(np.prod(s)) for s in input_size])) * self.itemsize
        self.activation_bytes = 2 * leaf_outputs * self.itemsize  # forward values + gradients
        self.param_bytes = self.total_params * self.itemsize

    def __str__(self) -> str:
        line, thick = "-" * sum(WIDTHS), "=" * sum(WIDTHS)
        rows = [thick, _row("Layer (type)", "Output Shape", "Param #"), thick]
        for row in self.layers:
            if row.depth == 0:
                label = row.kind
            else:
                label = "│ " * (row.depth - 1) + "├─" + f"{row.kind}: {row.name.split('.')[-1]}"
            shape = "--" if row.output_shape is None else str(row.output_shape)
            if row.repeated:
                count = "(shared)" if row.num_params else "--"
            else:
                count = f"{row.num_params:,}" if row.num_params else "--"
            rows.append(_row(label, shape, count))
        mb = 1e6
        total = self.input_bytes + self.activation_bytes + self.param_bytes
        rows += [
            thick,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.total_params - self.trainable_params:,}",
            line,
            f"Input size (MB): {self.input_bytes / mb:.2f}",
            f"Forward/backward pass size (MB): {self.activation_bytes / mb:.2f}",
            f"Params size (MB): {self.param_bytes / mb:.2f}",
            f"Estimated Total Size (MB): {total / mb:.2f}",
            thick,
        ]
        return "\n".join(rows)

    __repr__ = __str__


def _row(a: str, b: str, c: str) -> str:
    return f"{a:<{WIDTHS[0]}}{b:<{WIDTHS[1]}}{c:>{WIDTHS[2]}}".rstrip()


def _sizes(input_size: Any) -> list:
    """One shape, or a list of shapes for a model with several inputs."""
    if (
        isinstance(input_size, (tuple, list))
        and input_size
        and all(isinstance(s, (tuple, list)) for s in input_size)
    ):
        shapes = [list(s) for s in input_size]
    else:
        shapes = [list(input_size)]
    for s in shapes:
        if not s or any(not isinstance(d, (int, np.integer)) or d < 1 for d in s):
            raise ValueError(
                f"[summary] input_size must be a shape of positive ints including the batch "
                f"dimension, e.g. (1, 1, 28, 28); got {input_size!r}"
            )
    return shapes


def summary(
    model: Any,
    input_size: Sequence[int] | Sequence[Sequence[int]],
    *,
    dtype: Any = np.float32,
    depth: int = 3,
) -> ModelSummary:
    """Run `model` once on zeros of `input_size` (batch dimension included) and tabulate every
    layer it calls: output shape and parameter count, with totals and memory estimates.
    Layers deeper than `depth` are folded into their parent's row. The model's train/eval mode
    and the global random generator are left as they were.

    >>> import fastdl, fastdl.nn as nn
    >>> print(fastdl.summary(nn.Linear(3136, 128), (1, 3136)))   # doctest: +SKIP
    """
    shapes = _sizes(input_size)
    layers: list = []
    open_rows: dict = {}
    seen: set = set()
    handles = []

    def pre_hook(module: Any, inputs: Any, name: str) -> None:
        d = 0 if name == "" else name.count(".") + 1
        if d > depth:
            open_rows.setdefault(id(module), []).append(None)
            return
        collapsed = d == depth
        row = LayerInfo(name, type(module).__name__, d, _count(module, recurse=collapsed))
        row.repeated = id(module) in seen
        row.is_leaf = collapsed or next(module.children(), None) is None
        seen.add(id(module))
        layers.append(row)
        open_rows.setdefault(id(module), []).append(row)

    def post_hook(module: Any, inputs: Any, output: Any) -> None:
        row = open_rows[id(module)].pop()
        if row is not None:
            row.output_shape = _shape_of(output)

    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(lambda m, i, n=name: pre_hook(m, i, n)))
        handles.append(module.register_forward_hook(post_hook))
    was_training = model.training
    from .autograd import no_grad

    try:
        model.eval()
        # NOTE: the inputs go where the model's parameters are (the default device if none).
        first = next(model.parameters(), None)
        device = None if first is None else first.device
        inputs = [zeros(*s, dtype=np.dtype(dtype), device=device) for s in shapes]
        with no_grad():
            try:
                model(*inputs)
            except Exception as e:
                raise RuntimeError(
                    f"[summary] {type(model).__name__} failed on an input of size {input_size}: {e}"
                ) from e
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return ModelSummary(model, layers, shapes, np.dtype(dtype))
