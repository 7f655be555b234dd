"""What each rank runs for tests/test_distributed.py: `mpiexec -n N python tests/mpi_worker.py
CASE`. Every rank checks its own results (against NumPy, or against one process training on the
whole batch) and prints "OK rank R" at the end; a failed check raises, which aborts the job."""

import os
import signal
import sys
import time

import numpy as np

import fastdl
import fastdl.distributed as dist
import fastdl.nn as nn
import fastdl.nn.functional as F
from fastdl.nn.parallel import DistributedDataParallel as DDP


def data(rank, shape, dtype=np.float32, seed=0):
    """Rank `rank`'s input: every rank can make every rank's, to compute the expected result."""
    rng = np.random.default_rng((seed, rank))
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-5, 6, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def close(ours, expected, atol=1e-5, rtol=1e-5):
    ours = ours.numpy() if isinstance(ours, fastdl.Tensor) else ours
    np.testing.assert_allclose(ours, expected, atol=atol, rtol=rtol)


def expect_error(kind, match, call):
    try:
        call()
    except kind as e:
        assert match in str(e), f"{match!r} not in {e}"
        return
    raise AssertionError(f"{call} did not raise {kind.__name__}")


# ---------------------------------------------------------------- collectives against NumPy


def case_collectives(rank, n):
    shape = (3, 5)
    for dtype in (np.float32, np.float64, np.int64):
        every = [data(r, shape, dtype) for r in range(n)]
        ops = {dist.ReduceOp.SUM: np.sum, dist.ReduceOp.MAX: np.max, dist.ReduceOp.MIN: np.min,
               dist.ReduceOp.PRODUCT: np.prod}
        if dtype != np.int64:
            ops[dist.ReduceOp.AVG] = np.mean
        for op, ref in ops.items():
            t = fastdl.from_numpy(every[rank].copy())
            dist.all_reduce(t, op=op)
            close(t, ref(np.stack(every), axis=0).astype(dtype), atol=1e-4)
        # in place through a non-contiguous view: the base sees the result
        base = fastdl.from_numpy(every[rank].copy())
        view = base.t()
        dist.all_reduce(view)
        close(base, np.sum(every, axis=0))
        # broadcast from the last rank, asynchronously
        t = fastdl.from_numpy(every[rank].copy())
        work = dist.broadcast(t, src=n - 1, async_op=True)
        assert work.wait() and work.is_completed()
        close(t, every[n - 1])
        # all_gather, all_gather_into_tensor
        out = [fastdl.zeros(*shape, dtype=t.dtype) for _ in range(n)]
        dist.all_gather(out, fastdl.from_numpy(every[rank]))
        for r in range(n):
            close(out[r], every[r])
        flat = fastdl.zeros(n * 3, 5, dtype=t.dtype)
        dist.all_gather_into_tensor(flat, fastdl.from_numpy(every[rank]))
        close(flat, np.concatenate(every))
        # reduce_scatter: rank r gets the sum over ranks of their r-th input
        inputs = [data(r, (n,) + shape, dtype, seed=1) for r in range(n)]
        out = fastdl.zeros(*shape, dtype=t.dtype)
        dist.reduce_scatter(out, list(fastdl.from_numpy(inputs[rank]).unbind(0)))
        close(out, np.sum([x[rank] for x in inputs], axis=0))
        out = fastdl.zeros(*shape, dtype=t.dtype)
        dist.reduce_scatter_tensor(out, fastdl.from_numpy(inputs[rank].reshape(n * 3, 5)),
                                   op=dist.ReduceOp.MAX)
        close(out, np.max([x[rank] for x in inputs], axis=0))
        # gather to the last rank
        dst = n - 1
        gl = [fastdl.zeros(*shape, dtype=t.dtype) for _ in range(n)] if rank == dst else None
        dist.gather(fastdl.from_numpy(every[rank]), gl, dst=dst)
        if rank == dst:
            for r in range(n):
                close(gl[r], every[r])
    dist.barrier()
    # errors raised the same way on every rank, before any communication
    expect_error(ValueError, "one tensor per rank",
                 lambda: dist.all_gather([fastdl.zeros(2)], fastdl.zeros(2)))
    expect_error(RuntimeError, "AVG takes floating-point",
                 lambda: dist.all_reduce(fastdl.zeros(2, dtype=fastdl.int64), dist.ReduceOp.AVG))
    expect_error(ValueError, "not a rank of the group",
                 lambda: dist.broadcast(fastdl.zeros(2), src=n))
    expect_error(TypeError, "must be a ReduceOp",
                 lambda: dist.all_reduce(fastdl.zeros(2), op="sum"))
    expect_error(RuntimeError, "twice", lambda: dist.init_process_group("mpi"))
    # a subgroup of the even ranks; the others are outside it
    evens = list(range(0, n, 2))
    g = dist.new_group(evens)
    t = fastdl.from_numpy(data(rank, shape))
    dist.all_reduce(t, group=g)
    if rank in evens:
        assert dist.get_rank(g) == evens.index(rank) and dist.get_world_size(g) == len(evens)
        close(t, np.sum([data(r, shape) for r in evens], axis=0))
    else:
        assert dist.get_rank(g) == -1 and dist.get_world_size(g) == -1
        close(t, data(rank, shape))  # untouched
        expect_error(ValueError, "not a member", lambda: DDP(Net(), process_group=g))
    if rank in evens:
        DDP(Net(), process_group=g)  # a DDP over the subgroup only
    dist.destroy_process_group(g)
    assert dist.get_backend() == "mpi" and dist.group.WORLD is not None


# ---------------------------------------------------------------- DDP equals one process


class Net(nn.Module):
    def __init__(self, extra=False):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc1 = nn.Linear(4 * 6 * 6, 16)
        self.fc2 = nn.Linear(16, 3)
        if extra:
            self.unused = nn.Linear(3, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(F.relu(self.conv(x)).flatten(1))))


def whole_batch(n, per_rank, step):
    x = data(100 + step, (n * per_rank, 1, 8, 8))
    y = np.random.default_rng(step).integers(0, 3, n * per_rank)
    return x, y


def train_both(rank, n, make_opt, steps=5, **ddp_kwargs):
    """The same training on a DDP model (rank's shard) and on one model (the whole batch)."""
    fastdl.manual_seed(0)
    ref = Net(extra=ddp_kwargs.get("find_unused_parameters", False))
    fastdl.manual_seed(0 if rank == 0 else 100 + rank)  # other ranks differ: DDP broadcasts
    model = DDP(Net(extra=ddp_kwargs.get("find_unused_parameters", False)), **ddp_kwargs)
    if rank == 0:
        for (_, a), (_, b) in zip(model.module.state_dict().items(), ref.state_dict().items()):
            close(a, b.numpy(), atol=0, rtol=0)
    opt, ref_opt = make_opt(model.parameters()), make_opt(ref.parameters())
    per_rank = 4
    for step in range(steps):
        x, y = whole_batch(n, per_rank, step)
        shard = slice(rank * per_rank, (rank + 1) * per_rank)
        opt.zero_grad()
        F.cross_entropy(model(fastdl.from_numpy(x[shard])), fastdl.from_numpy(y[shard])).backward()
        opt.step()
        ref_opt.zero_grad()
        F.cross_entropy(ref(fastdl.from_numpy(x)), fastdl.from_numpy(y)).backward()
        ref_opt.step()
    return model, ref


def case_ddp(rank, n):
    import fastdl.optim as optim

    for kwargs in ({}, {"bucket_cap_mb": 1e-6}):  # the default (one bucket), one per parameter
        for make_opt in (lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
                         lambda p: optim.Adam(p, lr=1e-2)):
            model, ref = train_both(rank, n, make_opt, **kwargs)
            for (name, a), (_, b) in zip(model.module.named_parameters(), ref.named_parameters()):
                close(a.detach(), b.detach().numpy(), atol=2e-5, rtol=1e-4)
    assert list(model.state_dict())[0] == "module.conv.weight"  # PyTorch's prefix
    bn = nn.BatchNorm1d(3)
    bn.running_mean.fill_(float(rank))
    DDP(bn)  # buffers too: rank 0's running statistics everywhere
    close(bn.running_mean, np.zeros(3, np.float32))
    # overlap: the later layers' buckets are in flight before the first layer's gradient exists
    launched = []
    model.module.conv.weight.register_hook(lambda g: launched.append(model._next_bucket))
    model(fastdl.from_numpy(data(rank, (2, 1, 8, 8)))).sum().backward()
    assert launched == [4], launched  # fc2 and fc1's weights and biases: 4 buckets of 6
    assert len(DDP(Net())._buckets) == 1 and len(DDP(Net(), bucket_cap_mb=1e-6)._buckets) == 6


def case_no_sync(rank, n):
    """Two micro-batches, the first under no_sync: the same as one step on both."""
    import fastdl.optim as optim

    fastdl.manual_seed(0)
    ref = Net()
    fastdl.manual_seed(0)
    model = DDP(Net())
    opt, ref_opt = optim.SGD(model.parameters(), lr=0.1), optim.SGD(ref.parameters(), lr=0.1)
    per_rank = 3
    shard = slice(rank * per_rank, (rank + 1) * per_rank)
    for micro in range(2):
        x, y = whole_batch(n, per_rank, micro)
        xs, ys = fastdl.from_numpy(x[shard]), fastdl.from_numpy(y[shard])
        if micro == 0:
            with model.no_sync():
                F.cross_entropy(model(xs), ys).backward()
            local = model.module.fc2.weight.grad.numpy().copy()
        else:
            F.cross_entropy(model(xs), ys).backward()
        F.cross_entropy(ref(fastdl.from_numpy(x)), fastdl.from_numpy(y)).backward()
    # the no_sync backward left this rank's own gradient, not an average
    fastdl.manual_seed(0)
    alone = Net()
    x, y = whole_batch(n, per_rank, 0)
    F.cross_entropy(alone(fastdl.from_numpy(x[shard])), fastdl.from_numpy(y[shard])).backward()
    close(local, alone.fc2.weight.grad.numpy())
    opt.step()
    ref_opt.step()
    for (_, a), (_, b) in zip(model.module.named_parameters(), ref.named_parameters()):
        close(a.detach(), b.detach().numpy(), atol=2e-5, rtol=1e-4)


def case_unused(rank, n):
    import fastdl.optim as optim

    model, ref = train_both(rank, n, lambda p: optim.SGD(p, lr=0.1), steps=2,
                            find_unused_parameters=True)
    assert model.module.unused.weight.grad is None  # unused everywhere: left alone
    for (_, a), (_, b) in zip(model.module.named_parameters(), ref.named_parameters()):
        close(a.detach(), b.detach().numpy(), atol=2e-5, rtol=1e-4)
    fastdl.manual_seed(0)
    model = DDP(Net(extra=True))
    loss = model(fastdl.from_numpy(data(rank, (2, 1, 8, 8)))).sum()
    expect_error(RuntimeError, "find_unused_parameters=True", loss.backward)
    dist.barrier()


def case_mismatch(rank, n):
    width = 2 if rank == 0 else 3
    expect_error(RuntimeError, "rank 0 has weight (2, 4) float32 where rank 1 has weight (3, 4)",
                 lambda: DDP(nn.Linear(4, width)))


def case_timeout(rank, n):
    """Rank 1 never joins the all_reduce: rank 0 must abort the job after the timeout."""
    if rank == 1:
        time.sleep(60)
    dist.all_reduce(fastdl.ones(4))


def case_die(rank, n, how):
    """Training, until rank 1 dies (SIGKILL) or raises at step 3."""
    import fastdl.optim as optim

    model = DDP(Net())
    opt = optim.SGD(model.parameters(), lr=0.1)
    for step in range(1000):
        if rank == 1 and step == 3:
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("rank 1 fails on purpose")
        x, y = whole_batch(1, 4, step)
        opt.zero_grad()
        F.cross_entropy(model(fastdl.from_numpy(x)), fastdl.from_numpy(y)).backward()
        opt.step()


def main():
    case = sys.argv[1]
    fastdl.set_num_threads(1)  # several ranks share the cores
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    dist.init_process_group("mpi", timeout=timeout)
    rank, n = dist.get_rank(), dist.get_world_size()
    if case in ("kill", "raise"):
        case_die(rank, n, case)
    else:
        globals()[f"case_{case}"](rank, n)
    dist.destroy_process_group()
    sys.stdout.write(f"OK rank {rank}\n")  # one write: the ranks share the pipe
    sys.stdout.flush()


if __name__ == "__main__":
    main()
