"""create_graph=True: the backward pass run on Tensors, so that the gradients it computes have a
history of their own (gradient penalties, Hessian-vector products).

Each op's array backward (in _functions.py) stays the fast path. Here, a set of ops gets its
chain rule again as Tensor operations: `tensor_backward(node, grads)` gives the input gradients
as tensors built by differentiable ops. A saved input array becomes a tensor with the history it
had when the op was recorded (its edge); a saved output, a tensor made by the node itself. Any
other op raises NotImplementedError naming it.
"""

from __future__ import annotations

from .grad_mode import enable_grad
from . import function

_FORMULAS = None  # op class -> formula(node, x, g) -> tuple of tensors; built on first use


def _tensor_of(node, k, array):
    """Input k of `node` (whose array forward saw as `array`) as a tensor with its history."""
    edge = node.edges[k] if k < len(node.edges) else None
    if edge is None:
        return function._make(array)
    target, i, leaf = edge
    if target is None:
        return leaf
    return function._make(array, target, i)


def _output(node):
    return function._make(node.y, node, 0)


def _unbroadcast(g, shape):
    """Sum tensor `g` down to `shape` (undo broadcasting)."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(dim=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(dim=axes, keepdim=True)
    return g


def _expand(g, node):
    """A reduction's gradient broadcast back to the input's shape."""
    if node.axes is not None and not node.keepdim:
        keep = list(node.shape)
        for a in node.axes:
            keep[a] = 1
        g = g.reshape(tuple(keep))
    return g.expand(tuple(node.shape))


def _matmul(node, g):
    a, b = _tensor_of(node, 0, node.a), _tensor_of(node, 1, node.b)
    if a.ndim < 2 or b.ndim != 2:
        raise NotImplementedError(
            "[backward] create_graph=True: MatMul is supported for (..., M, K) @ (K, N) only, "
            f"got {tuple(a.shape)} @ {tuple(b.shape)}"
        )
    need_a, need_b = node.needs_input_grad
    da = g @ b.t() if need_a else None
    db = a.reshape(-1, a.shape[-1]).t() @ g.reshape(-1, g.shape[-1]) if need_b else None
    return da, db


def _linear(node, g):
    x, w = _tensor_of(node, 0, node.x), _tensor_of(node, 1, node.w)
    need_x, need_w, need_b = node.needs_input_grad
    g2 = g.reshape(-1, g.shape[-1])
    dx = (g2 @ w).reshape(tuple(x.shape)) if need_x else None
    dw = g2.t() @ x.reshape(-1, x.shape[-1]) if need_w else None
    db = g2.sum(dim=0) if need_b else None
    return dx, dw, db


def _div(node, g):
    a, b = _tensor_of(node, 0, node.a), _tensor_of(node, 1, node.b)
    need_a, need_b = node.needs_input_grad
    da = _unbroadcast(g / b, a.shape) if need_a else None
    db = _unbroadcast(-g * a / (b * b), b.shape) if need_b else None
    return da, db


def _mul(node, g):
    a, b = _tensor_of(node, 0, node.a), _tensor_of(node, 1, node.b)
    need_a, need_b = node.needs_input_grad
    da = _unbroadcast(g * b, a.shape) if need_a else None
    db = _unbroadcast(g * a, b.shape) if need_b else None
    return da, db


def _formulas():
    from .. import _functions as fn

    x = _tensor_of
    return {
        fn.Neg: lambda n, g: (-g,),
        fn.Exp: lambda n, g: (g * _output(n),),
        fn.Log: lambda n, g: (g / x(n, 0, n.x),),
        fn.Sin: lambda n, g: (g * x(n, 0, n.x).cos(),),
        fn.Cos: lambda n, g: (-g * x(n, 0, n.x).sin(),),
        fn.Sqrt: lambda n, g: (g / (2 * _output(n)),),
        fn.PowScalar: lambda n, g: (
            g * n.exponent * x(n, 0, n.x) ** (n.exponent - 1),
        ),
        fn.ReLU: lambda n, g: (g * _output(n).sign(),),  # sign: 0 or 1, with a zero derivative
        fn.Sigmoid: lambda n, g: (g * _output(n) * (1 - _output(n)),),
        fn.Tanh: lambda n, g: (g * (1 - _output(n) * _output(n)),),
        fn.Add: lambda n, g: (_unbroadcast(g, n.shapes[0]), _unbroadcast(g, n.shapes[1])),
        fn.Sub: lambda n, g: (_unbroadcast(g, n.shapes[0]), _unbroadcast(-g, n.shapes[1])),
        fn.Mul: _mul,
        fn.Div: _div,
        fn.MatMul: _matmul,
        fn.Linear: _linear,
        fn.Sum: lambda n, g: (_expand(g, n),),
        fn.Mean: lambda n, g: (_expand(g / float(max(n.count, 1)), n),),
        fn.Reshape: lambda n, g: (g.reshape(tuple(n.shape)),),
        fn.Permute: lambda n, g: (g.permute(*n.inverse),),
        fn.Expand: lambda n, g: (_unbroadcast(g, n.shape),),
    }


def tensor_backward(node, grads_out):
    """The input gradients of `node` as tensors with a history, from its output gradients
    (tensors)."""
    global _FORMULAS
    if _FORMULAS is None:
        _FORMULAS = _formulas()
    formula = _FORMULAS.get(type(node))
    if formula is None or node.n_outputs != 1:
        raise NotImplementedError(
            f"[backward] create_graph=True is not supported through {type(node).__name__} yet "
            "(supported: " + ", ".join(sorted(c.__name__ for c in _FORMULAS)) + ")"
        )
    with enable_grad():
        return formula(node, grads_out[0])


def run_backward_graph(roots, grads, retain_graph, inputs=None):
    """engine.run_backward with tensors (`grads` are tensors): the gradients keep a history.
    Without `inputs`, leaves accumulate into .grad out of place (PyTorch's, under create_graph);
    with them, their gradients are returned (None where not reached)."""
    from .engine import (
        _check_saved_versions, _final_callbacks, _needed_nodes, _post_accumulate,
        _raise_released, _run_final_callbacks, _targets, _topological_order,
    )

    pending = {}
    leaves = {}
    results = leaf_ids = captured = needed = None
    captured_nodes = set()
    if inputs is not None:
        results, leaf_ids, captured, captured_nodes = _targets(inputs)

    def to_leaf(leaf, g):
        if results is None or id(leaf) in leaf_ids:
            entry = leaves.setdefault(id(leaf), [leaf, None])
            entry[1] = g if entry[1] is None else entry[1] + g

    # engine.run_backward's seeding and order again, on purpose: that loop is the hot path of
    # every plain backward (with its fast leaf accumulation) and stays free of this one's cases.
    for root, g in zip(roots, grads):
        if root._node is None:
            to_leaf(root, g)
        else:
            slots = pending.setdefault(id(root._node), [None] * root._node.n_outputs)
            i = root._out_idx
            slots[i] = g if slots[i] is None else slots[i] + g
    order = _topological_order([r._node for r in roots if r._node is not None])
    if inputs is not None:
        needed = _needed_nodes(order, leaf_ids, captured_nodes)
    for node in order:
        grads_out = pending.pop(id(node), None)
        if grads_out is None:
            continue
        if needed is not None and id(node) not in needed and id(node) not in captured_nodes:
            continue
        for i, hooks in node.hooks.items():
            if grads_out[i] is not None:
                for hook in list(hooks.values()):
                    result = hook(grads_out[i])
                    if result is not None:
                        grads_out[i] = result
        for i, t in node.retained.items():
            if grads_out[i] is not None:
                t.grad = grads_out[i]
        if id(node) in captured_nodes:
            for i, g in enumerate(grads_out):
                for k in captured.get((id(node), i), ()):
                    results[k] = g
        if needed is not None and id(node) not in needed:
            continue
        if node.released:
            _raise_released()
        if node.saved_versions:
            _check_saved_versions(node)
        grads_in = tensor_backward(node, grads_out)
        edges = node.edges
        for edge, g in zip(edges, grads_in):
            if g is None or edge is None:
                continue
            target, i, leaf = edge
            if target is None:
                to_leaf(leaf, g)
            else:
                slots = pending.setdefault(id(target), [None] * target.n_outputs)
                slots[i] = g if slots[i] is None else slots[i] + g
        if not retain_graph:
            node.release()
    for leaf, g in leaves.values():
        for hook in list((leaf._hooks or {}).values()):
            result = hook(g)
            if result is not None:
                g = result
        if results is None:
            leaf.grad = g if leaf.grad is None else leaf.grad + g
            if leaf._post_accumulate_hooks:
                _post_accumulate(leaf)
        else:
            for k in leaf_ids[id(leaf)]:
                results[k] = g
    if _final_callbacks:
        _run_final_callbacks()
    return results
