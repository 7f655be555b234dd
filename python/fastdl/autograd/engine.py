"""The backward pass: one walk over the graph in reverse topological order.

Every op that needs gradients records a node (an `Op` instance) on its output tensor. A node
holds its input tensors and whatever its backward needs. `backward()` sorts the nodes reachable
from the roots (iteratively, so a 10,000-op chain is fine), then visits each node once, after
every node that consumes its output: the gradients arriving at a node are summed first (diamonds,
reused tensors), then its backward runs and hands gradients to its inputs. Leaves accumulate into
`.grad`. Unless `retain_graph`, each node frees what it saved once its backward has run.
"""

from __future__ import annotations

import numpy as np

from .. import _devices
from .._errors import torch_type_name
from . import function, higher_order


def _own(grad, dtype, shape=None):
    """A C-contiguous copy of `grad` of `dtype` (broadcast to `shape`), on grad's device: a
    leaf's .grad owns its memory (grad may alias another gradient or a saved buffer)."""
    if type(grad) is np.ndarray or isinstance(grad, np.generic):
        if shape is not None:
            grad = np.broadcast_to(grad, shape)
        return np.array(grad, dtype=dtype, order="C")
    xp = _devices.namespace(grad)
    if shape is not None:
        grad = xp.broadcast_to(grad, shape)
    return xp.asarray(xp.astype(grad, dtype), copy=True)


def _cast(g, dtype):
    """`g` as `dtype` (the dtype of the array the gradient is for)."""
    if g.dtype == dtype:
        return g
    if type(g) is np.ndarray or isinstance(g, np.generic):
        return g.astype(dtype)
    return _devices.namespace(g).astype(g, dtype)


def _topological_order(root_nodes):
    """Nodes reachable from root_nodes, each after every node that consumes its output
    (roots first). Iterative depth-first search with an explicit stack."""
    post_order, visited = [], set()
    stack = [(node, False) for node in root_nodes]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            post_order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for edge in node.edges:
            if edge is not None and edge[0] is not None and id(edge[0]) not in visited:
                stack.append((edge[0], False))
    post_order.reverse()
    return post_order


def _accumulate_leaf(tensor, grad):
    data = tensor._data
    if tensor.grad is None:
        shape = None if grad.shape == data.shape else data.shape
        tensor.grad = type(tensor)._make(_own(grad, data.dtype, shape))
    else:
        tensor.grad._data += grad


# Set by the first Tensor.register_post_accumulate_grad_hook: until then backward does not look
# for those hooks at all.
post_accumulate_hooks_seen = False


# Callbacks to run once when the backward pass now running ends (DDP waits for its buckets).
_final_callbacks = []


def queue_callback(callback):
    """Run `callback()` when the backward pass now running ends (PyTorch's
    `Variable._execution_engine.queue_callback`)."""
    _final_callbacks.append(callback)


def _run_final_callbacks():
    while _final_callbacks:
        _final_callbacks.pop(0)()


def _post_accumulate(leaf):
    """Run `leaf`'s post-accumulate-grad hooks (its .grad now holds this backward's gradient)."""
    for hook in list(leaf._post_accumulate_hooks.values()):
        hook(leaf)


def _finish_leaf(leaf, grad):
    """A leaf's whole gradient for this backward: its tensor hooks, .grad, then its
    post-accumulate hooks."""
    if leaf._hooks:
        grad = _run_hooks(leaf._hooks, grad)
    _accumulate_leaf(leaf, grad)
    if leaf._post_accumulate_hooks:
        _post_accumulate(leaf)


def _edges_to_watched_leaves(order):
    """id(leaf) -> how many edges of the nodes in `order` lead to it, for the leaves with
    post-accumulate hooks: when all have been passed, the leaf's gradient is complete."""
    waiting = {}
    for node in order:
        for edge in node.edges:
            if edge is not None and edge[0] is None and edge[2]._post_accumulate_hooks:
                waiting[id(edge[2])] = waiting.get(id(edge[2]), 0) + 1
    return waiting


def _settle(node, waiting, leaves):
    """`node` is done (run or skipped): finish each watched leaf it held the last edge to, so
    its post-accumulate hooks run while the rest of backward goes on (DDP's buckets)."""
    for edge in node.edges:
        if edge is not None and edge[0] is None and id(edge[2]) in waiting:
            key = id(edge[2])
            waiting[key] -= 1
            if waiting[key] == 0:
                del waiting[key]
                entry = leaves.pop(key, None)
                if entry is not None:
                    _finish_leaf(*entry)


def _raise_released():
    """PyTorch's error for a second backward through a graph whose buffers were freed."""
    raise RuntimeError(
        "[backward] trying to backward through the graph a second time; its saved "
        "buffers were freed after the first backward. Pass retain_graph=True to the "
        "first backward() to keep them."
    )


def _check_saved_versions(node):
    """PyTorch's rule: a tensor saved for backward must not have been modified in place since."""
    for counter, version, array in node.saved_versions:
        if counter[0] != version:
            dtype = array.dtype if isinstance(array, (np.ndarray, np.generic)) else (
                _devices.np_dtype(array)
            )
            kind = torch_type_name(dtype)
            raise RuntimeError(
                "[backward] one of the variables needed for gradient computation has been "
                f"modified by an inplace operation: [fastdl.{kind}Tensor {list(array.shape)}], "
                f"which is saved by {type(node).__name__}Backward, is at version {counter[0]}; "
                f"expected version {version} instead. Hint: clone() the tensor before modifying "
                "it in place, or modify it out of place."
            )


def _needed_nodes(order, leaf_ids, captured_nodes):
    """The ids of the nodes (of `order`, roots first) whose backward leads to an input: a leaf
    in leaf_ids or an output of a node in captured_nodes."""
    needed = set()
    for node in reversed(order):
        for edge in node.edges:
            if edge is None:
                continue
            target = edge[0]
            if (id(edge[2]) in leaf_ids) if target is None else (
                id(target) in needed or id(target) in captured_nodes
            ):
                needed.add(id(node))
                break
    return needed


def _run_hooks(hooks, grad):
    """Tensor hooks on `grad` (an array): each sees the gradient as a tensor and may return a
    replacement."""
    for hook in list(hooks.values()):
        result = hook(function._make(grad))
        if result is not None:
            grad = result._data
    return grad


def _targets(inputs):
    """Where autograd.grad's `inputs` sit in the graph: (results, one None per input; leaf id
    -> positions in inputs; (node id, output index) -> positions; the ids of those nodes)."""
    leaf_ids, captured = {}, {}
    for k, t in enumerate(inputs):
        if t._node is None:
            leaf_ids.setdefault(id(t), []).append(k)
        else:
            captured.setdefault((id(t._node), t._out_idx), []).append(k)
    return [None] * len(inputs), leaf_ids, captured, {node_id for node_id, _ in captured}


def run_backward(roots, grads, retain_graph=False, inputs=None):
    """Propagate `grads` (arrays, one per root tensor) back through the graph.

    Without `inputs`, every leaf reached accumulates its gradient into .grad. With `inputs` (a
    sequence of tensors), only the part of the graph that leads to them runs, no leaf's .grad
    changes, and the gradients for them are returned (a list, None for an input not reached).
    A leaf with hooks (or a leaf input) gets its gradients summed first: its hooks see the total.
    """
    pending = {}  # id(node) -> list of summed output gradients
    leaves = {}  # id(leaf) -> [leaf, summed gradient]: leaves whose gradients wait for the end
    results = leaf_ids = captured = needed = None
    captured_nodes = set()
    if inputs is not None:
        results, leaf_ids, captured, captured_nodes = _targets(inputs)
    for root, grad in zip(roots, grads):
        if root._node is None:
            if results is None and not root._hooks and not root._post_accumulate_hooks:
                _accumulate_leaf(root, grad)
            elif results is None or id(root) in leaf_ids:
                entry = leaves.setdefault(id(root), [root, None])
                entry[1] = grad if entry[1] is None else entry[1] + grad
        else:
            slots = pending.setdefault(id(root._node), [None] * root._node.n_outputs)
            i = root._out_idx
            slots[i] = grad if slots[i] is None else slots[i] + grad

    order = _topological_order([r._node for r in roots if r._node is not None])
    if inputs is not None:
        needed = _needed_nodes(order, leaf_ids, captured_nodes)
    waiting = None
    if post_accumulate_hooks_seen and results is None:
        waiting = _edges_to_watched_leaves(order) or None
    for node in order:
        grads_out = pending.pop(id(node), None)
        if grads_out is None:
            if waiting:
                _settle(node, waiting, leaves)
            continue
        if needed is not None and id(node) not in needed and id(node) not in captured_nodes:
            continue
        if node.hooks:
            for i, hooks in node.hooks.items():
                if grads_out[i] is not None:
                    grads_out[i] = _run_hooks(hooks, grads_out[i])
        for i, t in node.retained.items():
            if grads_out[i] is not None:
                t.grad = type(t)._make(_own(grads_out[i], t._data.dtype))
        if needed is not None:
            if id(node) in captured_nodes:
                for i, g in enumerate(grads_out):
                    for k in captured.get((id(node), i), ()):
                        results[k] = g
            if id(node) not in needed:
                continue
        if node.released:
            _raise_released()
        if node.saved_versions:
            _check_saved_versions(node)
        grads_in = node.backward_all(grads_out)
        edges = node.edges
        if not retain_graph:
            node.release()
        for edge, g in zip(edges, grads_in):
            if g is None or edge is None:
                continue
            target, i, dtype_or_leaf = edge
            # The roots' seeding above, inlined again on purpose: this runs once per edge of
            # every backward, where a shared helper would add a call per edge.
            if target is None:
                leaf = dtype_or_leaf
                g = _cast(g, leaf._data.dtype)
                if results is None and not leaf._hooks and not leaf._post_accumulate_hooks:
                    _accumulate_leaf(leaf, g)
                elif results is None or id(leaf) in leaf_ids:
                    entry = leaves.setdefault(id(leaf), [leaf, None])
                    entry[1] = g if entry[1] is None else entry[1] + g
            else:
                g = _cast(g, dtype_or_leaf)
                slots = pending.setdefault(id(target), [None] * target.n_outputs)
                slots[i] = g if slots[i] is None else slots[i] + g
        if waiting:
            _settle(node, waiting, leaves)

    for leaf, g in leaves.values():
        if results is None:
            _finish_leaf(leaf, g)
        else:
            if leaf._hooks:
                g = _run_hooks(leaf._hooks, g)
            for k in leaf_ids[id(leaf)]:
                results[k] = g
    if _final_callbacks:
        _run_final_callbacks()
    return results


# ---------------------------------------------------------------- the API


def _tensors(name, value, what):
    """`value` (a Tensor or a sequence of them) as a list."""
    from .._tensor import Tensor

    if isinstance(value, Tensor):
        return [value]
    value = list(value)
    for v in value:
        if not isinstance(v, Tensor):
            raise TypeError(f"[{name}] expected {what} to be Tensors, got {type(v).__name__}")
    return value


def _root_grads(name, roots, grad_tensors):
    """The gradient arrays the backward pass starts from: ones for a scalar root without one."""
    from .. import _tensor
    from .._tensor import Tensor

    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * (1 if grad_tensors is not None else len(roots))
    grad_tensors = list(grad_tensors)
    if len(grad_tensors) != len(roots):
        raise RuntimeError(
            f"[{name}] got {len(grad_tensors)} gradients for {len(roots)} tensors; expected one "
            "per tensor"
        )
    arrays = []
    for k, (root, gradient) in enumerate(zip(roots, grad_tensors)):
        if root._base is not None:
            function.refresh(root)
        if not root._requires_grad:
            raise RuntimeError(
                f"[{name}] element {k} of tensors does not require grad and does not have a "
                "grad_fn"
            )
        data = root._data
        if gradient is None:
            if data.size != 1:
                raise RuntimeError(
                    f"[{name}] grad can be implicitly created only for scalar outputs; "
                    f"this tensor has shape {tuple(data.shape)}: pass a gradient"
                )
            grad = _devices.namespace(data).ones(data.shape, dtype=data.dtype, device=data.device)
        else:
            if not isinstance(gradient, Tensor):
                gradient = Tensor._make(root._on_my_device(_tensor._from_data(gradient)))
            _tensor._same_device(name, root, gradient)
            grad = gradient.detach().to(root.dtype)._data
            if grad.shape != data.shape:
                raise RuntimeError(
                    f"[{name}] gradient has shape {grad.shape}, expected {data.shape}"
                )
        arrays.append(grad)
    return arrays


def _inputs(name, inputs):
    """The tensors gradients are asked for (views brought up to date); each must require grad."""
    if inputs is None:
        return None
    inputs = _tensors(name, inputs, "inputs")
    if not inputs:
        raise RuntimeError(f"[{name}] 'inputs' cannot be empty")
    for t in inputs:
        if t._base is not None:
            function.refresh(t)
        if not t._requires_grad:
            raise RuntimeError(f"[{name}] One of the differentiated Tensors does not require grad")
    return inputs


def backward(
    tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None,
    inputs=None,
):
    """Compute the gradients of `tensors` (a Tensor or a sequence) and accumulate them into the
    .grad of the leaves (or only of `inputs`, leaves or not, when given), as PyTorch's."""
    if grad_tensors is None:
        grad_tensors = grad_variables
    roots = _tensors("backward", tensors, "tensors")
    grads = _root_grads("backward", roots, grad_tensors)
    inputs = _inputs("backward", inputs)
    if retain_graph is None:
        retain_graph = create_graph
    if create_graph:
        grads = [function._make(g) for g in grads]
        results = higher_order.run_backward_graph(roots, grads, bool(retain_graph), inputs)
    else:
        results = run_backward(roots, grads, bool(retain_graph), inputs)
    if inputs is not None:
        done = set()
        for t, g in zip(inputs, results):
            if g is not None and id(t) not in done:
                done.add(id(t))
                if create_graph:
                    t.grad = g if t.grad is None else t.grad + g
                else:
                    _accumulate_leaf(t, g)
                if t._node is None and t._post_accumulate_hooks:
                    _post_accumulate(t)


def grad(
    outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
    allow_unused=None, is_grads_batched=False, materialize_grads=False,
):
    """The gradients of `outputs` with respect to `inputs`, as a tuple (PyTorch's
    torch.autograd.grad); the .grad of the leaves is left alone.

    >>> import fastdl
    >>> x = fastdl.tensor([1.0, 2.0], requires_grad=True)
    >>> fastdl.autograd.grad((x * x).sum(), x)
    (tensor([2., 4.]),)
    """
    from .._tensor import Tensor
    if is_grads_batched:
        raise NotImplementedError("[grad] is_grads_batched=True is not supported")
    if materialize_grads and allow_unused is False:
        raise ValueError(
            "[grad] Expected allow_unused to be True or not passed when materialize_grads=True, "
            "but got: allow_unused=False."
        )
    if allow_unused is None:
        allow_unused = materialize_grads
    if retain_graph is None:
        retain_graph = create_graph
    roots = _tensors("grad", outputs, "outputs")
    grads = _root_grads("grad", roots, grad_outputs)
    inputs = _inputs("grad", inputs)
    if create_graph:
        grads = [function._make(g) for g in grads]
        results = higher_order.run_backward_graph(roots, grads, bool(retain_graph), inputs)
    else:
        results = run_backward(roots, grads, bool(retain_graph), inputs)
    out = []
    for t, g in zip(inputs, results):
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    "[grad] One of the differentiated Tensors appears to not have been used in "
                    "the graph. Set allow_unused=True if this is the desired behavior."
                )
            if materialize_grads:
                data = t._data
                xp = _devices.namespace(data)
                out.append(Tensor._make(xp.zeros(data.shape, dtype=data.dtype, device=data.device)))
                continue
            out.append(None)
        else:
            out.append(g if create_graph else Tensor._make(g))
    return tuple(out)
