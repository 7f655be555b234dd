"""Graph nodes: `Op`, the base of fastdl's own differentiable ops (on NumPy arrays), and
`Function`, PyTorch's API for user-defined ops with their own backward (on Tensors)."""

from __future__ import annotations

import numpy as np

from .grad_mode import _enabled, is_grad_enabled, no_grad

_EMPTY: dict = {}
_make = None  # fastdl._tensor injects its tensor constructor here (avoids an import cycle)


class Op:
    """One differentiable op. Subclasses define

        forward(self, *arrays, **params) -> array    (saves on self only what backward needs)
        backward(self, grad) -> tuple of arrays or None, one per input

    `apply(*tensors, **params)` runs forward on the tensors' arrays and, when any input needs a
    gradient and grad mode is on, records the op as the output's node. Inputs may be None
    (an absent bias); they get no gradient.
    """

    n_outputs = 1
    ufunc = None  # binary ops that are one NumPy ufunc name it, for the no-graph fast path
    released = False
    retained = _EMPTY
    needs_input_grad: tuple = ()
    inputs: tuple = ()

    @classmethod
    def apply(cls, *inputs, **params):
        # NOTE: this runs for every op; it is written for low overhead, not elegance.
        op = cls()
        record = False
        if _enabled.get():
            for t in inputs:
                if t is not None and t._requires_grad:
                    record = True
                    op.needs_input_grad = tuple([t is not None and t._requires_grad for t in inputs])
                    break
        arrays = [None if t is None else t._data for t in inputs]
        out = op.forward(*arrays, **params) if params else op.forward(*arrays)
        if not record:
            return _make(out)
        op.inputs = inputs
        return _make(out, op)

    def backward_all(self, grads_out):
        return self.backward(grads_out[0])

    def release(self):
        """Drop what forward saved; keep the graph's shape (inputs) for error reporting."""
        inputs = self.inputs
        self.__dict__.clear()
        self.inputs = inputs
        self.released = True

    def retain(self, index, tensor):
        if self.retained is _EMPTY:
            self.retained = {}
        self.retained[index] = tensor


class FunctionCtx:
    """The `ctx` a user Function's forward and backward share."""

    def save_for_backward(self, *tensors):
        self._saved = tensors

    @property
    def saved_tensors(self):
        if self.released:
            raise RuntimeError("[backward] saved tensors were freed after the first backward")
        return getattr(self, "_saved", ())

    def mark_non_differentiable(self, *tensors):
        self._non_diff = {id(t) for t in tensors}

    def set_materialize_grads(self, value: bool):
        self._materialize = bool(value)


class _FunctionNode(Op, FunctionCtx):
    """The graph node of one call of a user Function; also its ctx."""

    def __init__(self, fn_cls, arg_is_tensor):
        self.fn_cls = fn_cls
        self.arg_is_tensor = arg_is_tensor
        self._materialize = True

    def backward_all(self, grads_out):
        from .._tensor import Tensor

        grads = []
        for g, shape, dtype in zip(grads_out, self.out_shapes, self.out_dtypes):
            if g is None and self._materialize:
                g = np.zeros(shape, dtype)
            grads.append(None if g is None else Tensor._make(g))
        with no_grad():
            result = self.fn_cls.backward(self, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        n_args = len(self.arg_is_tensor)
        if len(result) < n_args:
            raise RuntimeError(
                f"[{self.fn_cls.__name__}.backward] returned {len(result)} gradients, "
                f"expected {n_args} (one per forward argument)"
            )
        arrays = []
        for is_tensor, g in zip(self.arg_is_tensor, result):
            if not is_tensor:
                continue
            if g is None:
                arrays.append(None)
            elif isinstance(g, Tensor):
                arrays.append(g._data)
            else:
                arrays.append(np.asarray(g))
        for t, g in zip(self.inputs, arrays):
            if g is not None and g.shape != t._data.shape:
                raise RuntimeError(
                    f"[{self.fn_cls.__name__}.backward] gradient has shape {g.shape}, "
                    f"expected {t._data.shape}"
                )
        return arrays

    def release(self):
        self._saved = ()
        self.released = True


class Function:
    """A user-defined differentiable op, as in PyTorch.

    >>> import fastdl
    >>> class Square(fastdl.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, grad):
    ...         (x,) = ctx.saved_tensors
    ...         return 2 * x * grad
    >>> x = fastdl.tensor([3.0], requires_grad=True)
    >>> Square.apply(x).sum().backward()
    >>> x.grad
    tensor([6.])
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define forward(ctx, *args)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a Function subclass must define backward(ctx, *grads)")

    @classmethod
    def apply(cls, *args, **kwargs):
        from .._tensor import Tensor

        arg_is_tensor = tuple(isinstance(a, Tensor) for a in args)
        tensors = tuple(a for a in args if isinstance(a, Tensor))
        node = _FunctionNode(cls, arg_is_tensor)
        node.needs_input_grad = tuple(isinstance(a, Tensor) and a._requires_grad for a in args)
        with no_grad():
            out = cls.forward(node, *args, **kwargs)
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        for o in outs:
            if not isinstance(o, Tensor):
                raise TypeError(
                    f"[{cls.__name__}.forward] must return Tensors, got {type(o).__name__}"
                )
        record = is_grad_enabled() and any(t._requires_grad for t in tensors)
        if not record:
            return out
        node.inputs = tensors
        node.n_outputs = len(outs)
        node.out_shapes = [o._data.shape for o in outs]
        node.out_dtypes = [o._data.dtype for o in outs]
        non_diff = getattr(node, "_non_diff", set())
        results = []
        for i, o in enumerate(outs):
            if id(o) in non_diff or o._data.dtype.kind != "f":
                results.append(Tensor._make(o._data))
            else:
                results.append(Tensor._make(o._data, node, i))
        return results[0] if single else tuple(results)
