"""DistributedDataParallel: one model replica per rank, gradients averaged during backward.

At construction rank 0's parameters and buffers are broadcast to every rank, after a check that
every rank holds the same parameter names, shapes and dtypes. The parameters are split into
buckets in reverse registration order (the order backward produces their gradients): the first
of about 1 MiB, the rest of `bucket_cap_mb` (25 MiB; an explicit cap applies to the first
too), as PyTorch's reducer does. Each parameter has a post-accumulate-grad hook that copies
its finished .grad into its bucket; when a bucket's last gradient is in, its non-blocking
allreduce (MPI Iallreduce) starts, in bucket order on every rank, and the rest of backward runs
while it is in flight. When backward ends, a final callback
waits for what is still in flight and writes the averages back into the .grad tensors, so
`optimizer.step()` sees averaged gradients, as with PyTorch's DDP.
"""

from __future__ import annotations

import contextlib
import zlib
from typing import Any, Iterator, List, Optional

import numpy as np

from ... import _devices
from ... import distributed as dist
from ..._tensor import Tensor
from ...autograd import engine
from ...autograd.grad_mode import is_grad_enabled, no_grad
from ..module import Module

FIRST_BUCKET_BYTES = 1024 * 1024  # PyTorch's _DEFAULT_FIRST_BUCKET_BYTES: the first overlaps soon


class _Bucket:
    """Consecutive parameters (in backward order) of one dtype and their flat gradient buffer."""

    def __init__(self, index: int, params: list) -> None:
        self.index, self.params = index, params
        sizes = [p._data.size for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        self.flat = np.zeros(self.offsets[-1], params[0]._data.dtype)
        self.pending, self.request = len(params), None

    def view(self, k: int) -> np.ndarray:
        p = self.params[k]
        return self.flat[self.offsets[k] : self.offsets[k + 1]].reshape(p._data.shape)


def _bucket_assignment(params: list, cap_bytes: int, first_bytes: int) -> List[list]:
    """Params (in backward order) into buckets: one dtype each, closed once past the cap (the
    first bucket's cap is `first_bytes`)."""
    buckets, open_ = [], {}  # dtype -> [params, bytes]
    for p in params:
        entry = open_.setdefault(p._data.dtype, [[], 0])
        entry[0].append(p)
        entry[1] += p._data.nbytes
        if entry[1] >= (first_bytes if not buckets else cap_bytes):
            buckets.append(entry[0])
            del open_[p._data.dtype]
    buckets.extend(entry[0] for entry in open_.values())
    return buckets


def _tensors_in(obj: Any) -> Iterator[Tensor]:
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors_in(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors_in(item)


def _leaves_reached(outputs: Any) -> set:
    """ids of the leaf tensors the autograd graph of `outputs` leads to."""
    leaves, seen = set(), set()
    stack = [t._node for t in _tensors_in(outputs) if t._node is not None]
    leaves.update(id(t) for t in _tensors_in(outputs) if t._node is None)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for edge in node.edges:
            if edge is None:
                continue
            if edge[0] is None:
                leaves.add(id(edge[2]))
            else:
                stack.append(edge[0])
    return leaves


class DistributedDataParallel(Module):
    """Data parallelism across the ranks of a `fastdl.distributed` process group.

    Each rank runs the same model on its own part of the batch; backward averages the gradients
    over the ranks, so after `optimizer.step()` every replica holds the same weights.

    >>> import fastdl.distributed as dist                        # doctest: +SKIP
    >>> dist.init_process_group("mpi")                           # doctest: +SKIP
    >>> model = DistributedDataParallel(CNN())                   # doctest: +SKIP
    >>> loss_fn(model(x_shard), y_shard).backward()              # doctest: +SKIP

    NOTE: as in PyTorch, `state_dict()` keys carry a `module.` prefix (the wrapped model is the
    submodule `module`); save `model.module.state_dict()` to load it into an unwrapped model.
    """

    def __init__(
        self, module: Module, device_ids: Any = None, output_device: Any = None, dim: int = 0,
        broadcast_buffers: bool = True, process_group: Optional[dist.ProcessGroup] = None,
        bucket_cap_mb: Optional[float] = None, find_unused_parameters: bool = False,
        check_reduction: bool = False, gradient_as_bucket_view: bool = False,
        static_graph: bool = False,
    ) -> None:
        super().__init__()
        op = "DistributedDataParallel"
        if not isinstance(module, Module):
            raise TypeError(f"[{op}] expected an nn.Module, got {type(module).__name__}")
        if device_ids is not None or output_device is not None:
            raise ValueError(
                f"[{op}] device_ids and output_device only apply to GPU modules; got device_ids "
                f"{device_ids}, output_device {output_device} for a CPU module"
            )
        cap = 25.0 if bucket_cap_mb is None else float(bucket_cap_mb)
        if not cap > 0:
            raise ValueError(f"[{op}] bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module = module
        self.process_group = dist._group(process_group)
        if self.process_group.comm is None:
            raise ValueError(f"[{op}] this rank is not a member of process_group")
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.require_backward_grad_sync = True
        self._named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        for name, p in [*module.named_parameters(), *module.named_buffers()]:
            if _devices.device_type_of(p._data) is not _devices.CPU:
                raise NotImplementedError(
                    f"[{op}] MPI data parallelism takes CPU parameters; {name} is on {p.device}"
                )
        self._check_same_model()
        self._broadcast([p for _, p in module.named_parameters()] + list(module.buffers()))
        params = [p for _, p in reversed(self._named)]
        cap_bytes = int(cap * 2**20)
        first = FIRST_BUCKET_BYTES if bucket_cap_mb is None else cap_bytes  # PyTorch's choice
        self._buckets = [
            _Bucket(i, b) for i, b in enumerate(_bucket_assignment(params, cap_bytes, first))
        ]
        self._where = {id(p): (b, k) for b in self._buckets for k, p in enumerate(b.params)}
        self._iteration, self._armed = 0, False
        self._ready: set = set()
        self._next_bucket = 0
        self._locally_used: Optional[np.ndarray] = None
        self._grad_hooks = [
            p.register_post_accumulate_grad_hook(self._grad_ready) for _, p in self._named
        ]

    # ---------------------------------------------------------------- construction

    def _check_same_model(self) -> None:
        """Every rank must hold the same parameter names, shapes and dtypes."""
        pg = self.process_group
        sig = [f"{n} {tuple(p._data.shape)} {p._data.dtype}" for n, p in self._named]
        mine = Tensor._make(np.array([len(sig), zlib.crc32("\n".join(sig).encode())], np.int64))
        everyone = [Tensor._make(np.zeros(2, np.int64)) for _ in range(pg.size())]
        dist.all_gather(everyone, mine, group=pg)
        if all(t.numpy().tolist() == mine.numpy().tolist() for t in everyone):
            return
        sigs = pg.comm.allgather(sig)  # every rank answered above: this cannot hang
        first = sigs[0]
        for r, other in enumerate(sigs[1:], 1):
            if other == first:
                continue
            if len(other) != len(first):
                detail = (f"rank {pg.ranks[0]} has {len(first)} parameters, rank {pg.ranks[r]} "
                          f"has {len(other)}")
            else:
                a, b = next((a, b) for a, b in zip(first, other) if a != b)
                detail = f"rank {pg.ranks[0]} has {a} where rank {pg.ranks[r]} has {b}"
            raise RuntimeError(
                f"[DistributedDataParallel] the model differs across ranks: {detail} (name, "
                "shape, dtype); every rank must build the same model"
            )

    def _broadcast(self, tensors: list) -> None:
        """Rank 0's values of `tensors` to every rank: one broadcast per dtype."""
        by_dtype: dict = {}
        for t in tensors:
            by_dtype.setdefault(t._data.dtype, []).append(t)
        for group in by_dtype.values():
            flat = Tensor._make(np.concatenate([t._data.reshape(-1) for t in group]))
            dist.broadcast(flat, self.process_group.ranks[0], group=self.process_group)
            offset = 0
            with no_grad():
                for t in group:
                    n = t._data.size
                    t._data[...] = flat._data[offset : offset + n].reshape(t._data.shape)
                    t._vc[0] += 1
                    offset += n

    # ---------------------------------------------------------------- forward

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        buffers = list(self.module.buffers()) if self.broadcast_buffers else []
        if buffers and is_grad_enabled() and self.process_group.size() > 1:
            self._broadcast(buffers)  # rank 0's running statistics, as PyTorch's DDP
        output = self.module(*inputs, **kwargs)
        self._armed = is_grad_enabled() and self.require_backward_grad_sync
        if self._armed:
            self._prepare(output)
        return output

    def _prepare(self, output: Any) -> None:
        """A fresh reduction for the coming backward (and, with find_unused_parameters, the
        parameters this forward did not use marked ready now, with zero gradients)."""
        self._iteration += 1
        self._ready = set()
        self._next_bucket = 0
        for b in self._buckets:
            b.pending, b.request = len(b.params), None
        if self.find_unused_parameters:
            used = _leaves_reached(output)
            self._locally_used = np.array([id(p) in used for _, p in self._named], np.int32)
            for _, p in self._named:
                if id(p) not in used:
                    self._mark_ready(p, None)

    # ---------------------------------------------------------------- backward

    def _grad_ready(self, p: Tensor) -> None:
        if self._armed:
            self._mark_ready(p, p.grad)

    def _mark_ready(self, p: Tensor, grad: Optional[Tensor]) -> None:
        if id(p) in self._ready:
            raise RuntimeError(
                "[DistributedDataParallel] Expected to mark a variable ready only once: a "
                "parameter got its gradient twice in one iteration (backward twice after one "
                "forward?)"
            )
        if not self._ready:
            engine.queue_callback(lambda it=self._iteration: self._finish(it))
        self._ready.add(id(p))
        b, k = self._where[id(p)]
        view = b.view(k)
        if grad is None:
            view[...] = 0
        else:
            np.copyto(view, dist._host("DistributedDataParallel", grad, "a gradient"))
        b.pending -= 1
        while self._next_bucket < len(self._buckets):  # same order on every rank
            nxt = self._buckets[self._next_bucket]
            if nxt.pending:
                break
            pg = self.process_group
            nxt.request = pg.comm.Iallreduce(dist._mpi().IN_PLACE, nxt.flat, dist._mpi().SUM)
            self._next_bucket += 1
        for other in self._buckets[: self._next_bucket]:
            other.request.Test()  # MPI progresses requests only inside its calls

    def _finish(self, iteration: int) -> None:
        """End of backward: wait for the buckets, write the averages into .grad."""
        if iteration != self._iteration or not self._armed:
            return  # a backward that raised before its end left this callback behind
        self._armed = False
        pg = self.process_group
        if self._next_bucket < len(self._buckets):
            for b in self._buckets[: self._next_bucket]:  # leave no request in flight
                dist.wait_request(b.request, f"all_reduce (DDP gradient bucket {b.index})", pg)
            missing = [n for n, p in self._named if id(p) not in self._ready]
            raise RuntimeError(
                "[DistributedDataParallel] Expected to have finished reduction in this "
                f"iteration: parameters {missing} got no gradient (not used in producing the "
                "loss). Pass find_unused_parameters=True to DistributedDataParallel, or make "
                "sure every parameter takes part in the loss"
            )
        used = None
        if self.find_unused_parameters:
            used = Tensor._make(self._locally_used.copy())
            dist.all_reduce(used, group=pg)
            used = used._data
        position = {id(p): i for i, (_, p) in enumerate(self._named)}
        for b in self._buckets:
            dist.wait_request(b.request, f"all_reduce (DDP gradient bucket {b.index})", pg)
            for k, p in enumerate(b.params):
                i = position[id(p)]
                if used is not None and not used[i]:
                    continue  # unused on every rank: .grad left as it was, as in PyTorch
                mean = b.view(k) / pg.size()
                if p.grad is None:
                    p.grad = Tensor._make(mean)
                else:
                    p.grad._data[...] = mean
                    p.grad._vc[0] += 1

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Inside, backward accumulates gradients locally without communicating; the first
        backward after it averages the accumulated gradients (gradient accumulation)."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous
