"""Graph nodes: `Op`, the base of fastdl's own differentiable ops (on NumPy arrays), and
`Function`, PyTorch's API for user-defined ops with their own backward (on Tensors)."""

from __future__ import annotations

import numpy as np

from .. import _devices
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

    Recording captures, per input, the edge its gradient flows along: the input's node (and
    which output of it) at this moment, or the leaf itself. An in-place op that later gives the
    input a new node does not reroute this op's gradient (PyTorch's graph is made of edges too).

    `saves` lists the inputs whose arrays forward keeps for backward and `saves_output` says
    whether it keeps its output; `saved_inputs` may narrow that by which inputs need gradients.
    Their versions are noted when recorded, and backward refuses to run if one was modified in
    place since (PyTorch's rule).
    """

    n_outputs = 1
    grad_outputs = (0,)  # the outputs a gradient flows back from (not integer indices)
    may_give_integers = False  # an op whose float input may give an integer output (a cast)
    # A function of the input arrays (and params) that gives the output, for the no-graph
    # path: no op object is made and nothing is saved (the inference and no_grad fast path).
    direct = None
    released = False
    retained = _EMPTY
    hooks = _EMPTY  # output index -> {handle id: tensor hook} (Tensor.register_hook)
    needs_input_grad: tuple = ()
    edges: tuple = ()
    saves: tuple = ()
    saves_output = False
    saved_versions: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Whether recording must ask saved_inputs (skipped for ops that save no input).
        own_rule = cls.saved_inputs.__func__ is not Op.saved_inputs.__func__
        cls.saves_some = bool(cls.saves) or own_rule
        # One float output: apply's common case, decided once per class.
        cls.plain_output = cls.n_outputs == 1 and not cls.may_give_integers

    saves_some = False
    plain_output = True

    @classmethod
    def saved_inputs(cls, needs):
        """The inputs forward saved, given which inputs need gradients."""
        return cls.saves

    @classmethod
    def apply(cls, *inputs, **params):
        """The op on `inputs` (tensors or None): one output tensor, or a tuple of `n_outputs`."""
        # NOTE: this runs for every op; it is written for low overhead, not elegance.
        record = False
        if _enabled.get():
            for t in inputs:
                if t is not None and (t._requires_grad or t._base is not None):
                    record = True
                    break
        arrays = [None if t is None else t._data for t in inputs]
        if record:
            op = cls()
            record = prepare_record(op, inputs)
            out = op.forward(*arrays, **params) if params else op.forward(*arrays)
        else:
            direct = cls.direct
            if direct is None:
                direct = cls().forward
            out = direct(*arrays, **params) if params else direct(*arrays)
        if not cls.plain_output:
            if cls.n_outputs != 1:
                return cls._outputs(op if record else None, out)
            if _devices.np_dtype(out).kind != "f":
                record = False  # an integer or bool result (a cast): no gradient (PyTorch's)
        if not record:
            return _make(out)
        result = _make(out, op)
        if cls.saves_output:
            op.saved_versions += ((result._vc, 0, out),)
        return result

    @classmethod
    def _outputs(cls, op, out):
        """The tensors of a multi-output op's arrays (recorded by `op`, when not None)."""
        if op is None:
            return tuple([_make(o) for o in out])
        results = tuple(
            [_make(o, op, i) if i in cls.grad_outputs else _make(o) for i, o in enumerate(out)]
        )
        if cls.saves_output:
            op.saved_versions += ((results[0]._vc, 0, out[0]),)
        return results

    def backward_all(self, grads_out):
        return self.backward(grads_out[0])

    def release(self):
        """Drop what forward saved; keep the graph's shape (edges) to report a second backward."""
        edges = self.edges
        self.__dict__.clear()
        self.edges = edges
        self.released = True

    def retain(self, index, tensor):
        if self.retained is _EMPTY:
            self.retained = {}
        self.retained[index] = tensor


def edge_of(t):
    """Where a gradient for tensor `t` goes now: (node, output index, dtype) for a tensor made by
    an op, (None, 0, t) for a leaf (the gradient accumulates into t.grad), None without grad.
    Only leaves are held, so an intermediate tensor is freed once nothing else holds it."""
    if t is None or not t._requires_grad:
        return None
    node = t._node
    if node is None:
        return (None, 0, t)
    return (node, t._out_idx, t._data.dtype)


def prepare_record(op, inputs) -> bool:
    """Fill op's edges, needs_input_grad and saved versions; False if nothing needs a gradient.
    A view whose base gained a new history since the view was made is brought up to date first."""
    needs, edges = [], []
    for t in inputs:  # NOTE: edge_of inlined; this runs for every recorded op
        if t is None:
            needs.append(False)
            edges.append(None)
            continue
        if t._base is not None:
            refresh(t)
        if t._requires_grad:
            needs.append(True)
            node = t._node
            edges.append((None, 0, t) if node is None else (node, t._out_idx, t._data.dtype))
        else:
            needs.append(False)
            edges.append(None)
    if True not in needs:
        return False
    op.needs_input_grad = needs = tuple(needs)
    op.edges = tuple(edges)
    saved = op.saved_inputs(needs) if op.saves_some else ()
    if saved:
        op.saved_versions = tuple(
            [(t._vc, t._vc[0], t._data) for t in (inputs[i] for i in saved) if t is not None]
        )
    return True


# fastdl._tensor injects the view refresher here (it needs the view ops; avoids an import cycle).
refresh_view = None


def refresh(view):
    """refresh_view(view); a retain_grad() on the view follows it to its new history, as
    PyTorch's does (hooks stay with the old one)."""
    old, idx = view._node, view._out_idx
    refresh_view(view)
    if old is not None and view._node is not old and old.retained.get(idx) is view:
        del old.retained[idx]
        view._node.retain(view._out_idx, view)


class RemovableHandle:
    """Returned by `Tensor.register_hook`; `handle.remove()` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict, hook):
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1
        hooks[self.id] = hook

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


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
        for g, shape, dtype, device in zip(
            grads_out, self.out_shapes, self.out_dtypes, self.out_devices
        ):
            if g is None and self._materialize:
                g = np.zeros(shape, dtype) if device is None else device[0].zeros(
                    shape, dtype=dtype, device=device[1]
                )
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
                arrays.append(np.asarray(g))  # NOTE: a NumPy array from a user's backward
        for shape, g in zip(self.in_shapes, arrays):
            if g is not None and g.shape != shape:
                raise RuntimeError(
                    f"[{self.fn_cls.__name__}.backward] gradient has shape {g.shape}, "
                    f"expected {shape}"
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
        for t in tensors:
            if t._base is not None:
                refresh(t)
        node.edges = tuple(edge_of(t) for t in tensors)
        node.in_shapes = [t._data.shape for t in tensors]
        node.saved_versions = tuple(
            (t._vc, t._vc[0], t._data) for t in getattr(node, "_saved", ()) if isinstance(t, Tensor)
        )
        node.n_outputs = len(outs)
        node.out_shapes = [o._data.shape for o in outs]
        node.out_dtypes = [o._data.dtype for o in outs]
        # (array namespace, device) of each output off the CPU, for its zero gradient
        node.out_devices = [
            None if type(o._data) is np.ndarray else (_devices.namespace(o._data), o._data.device)
            for o in outs
        ]
        non_diff = getattr(node, "_non_diff", set())
        results = []
        for i, o in enumerate(outs):
            if id(o) in non_diff or _devices.np_dtype(o._data).kind != "f":
                r = Tensor._make(o._data)
            else:
                r = Tensor._make(o._data, node, i)
            r._vc = o._vc  # an output saved with save_for_backward keeps its version counter
            results.append(r)
        return results[0] if single else tuple(results)
