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


def run_backward(roots, grads, retain_graph=False):
    """Propagate `grads` (arrays, one per root tensor) back through the graph."""
    pending = {}  # id(node) -> list of summed output gradients
    for root, grad in zip(roots, grads):
        if root._node is None:
            _accumulate_leaf(root, grad)
        else:
            slots = pending.setdefault(id(root._node), [None] * root._node.n_outputs)
            i = root._out_idx
            slots[i] = grad if slots[i] is None else slots[i] + grad

    for node in _topological_order([r._node for r in roots if r._node is not None]):
        grads_out = pending.pop(id(node), None)
        if grads_out is None:
            continue
        if node.released:
            raise RuntimeError(
                "[backward] trying to backward through the graph a second time; its saved "
                "buffers were freed after the first backward. Pass retain_graph=True to the "
                "first backward() to keep them."
            )
        if node.saved_versions:
            _check_saved_versions(node)
        for i, t in node.retained.items():
            if grads_out[i] is not None:
                t.grad = type(t)._make(_own(grads_out[i], t._data.dtype))
        grads_in = node.backward_all(grads_out)
        edges = node.edges
        if not retain_graph:
            node.release()
        for edge, g in zip(edges, grads_in):
            if g is None or edge is None:
                continue
            target, i, dtype_or_leaf = edge
            if target is None:
                _accumulate_leaf(dtype_or_leaf, _cast(g, dtype_or_leaf._data.dtype))
            else:
                g = _cast(g, dtype_or_leaf)
                slots = pending.setdefault(id(target), [None] * target.n_outputs)
                slots[i] = g if slots[i] is None else slots[i] + g
