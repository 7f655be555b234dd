"""`fastdl.distributed`: PyTorch's `torch.distributed` API on MPI, through mpi4py.

Install the `[mpi]` extra (`pip install "fastdl[mpi]"`: mpi4py and the `mpich` wheel), or
`pip install mpi4py` built against a cluster's own MPI. Launch one process per rank with
`mpiexec -n N python train.py` (or `srun` under Slurm); each calls `init_process_group()`:

    import fastdl.distributed as dist
    dist.init_process_group("mpi")
    t = fastdl.ones(4) * dist.get_rank()
    dist.all_reduce(t)                      # in place: the sum over ranks, on every rank

Collectives take CPU tensors and write in place where PyTorch's do. Each one is an MPI
non-blocking call (Iallreduce, Ibcast, ...) whose wait is watched against the process group's
timeout (`init_process_group(timeout=...)`, 30 minutes by default as in PyTorch) by a watchdog
thread: on expiry the whole job is aborted (MPI_Abort) with one line naming the op and the ranks
it was waiting on, so a rank that died or hangs never leaves the others waiting forever. An
uncaught exception on any rank aborts the job too, after its traceback. Importing this module
does not import mpi4py.
"""

from __future__ import annotations

import datetime
import enum
import importlib.util
import os
import sys
import threading
import time
import traceback
from typing import Any, List, Optional, Sequence

import numpy as np

from . import _devices
from ._tensor import Tensor

__all__ = [
    "ReduceOp", "Work", "ProcessGroup", "group", "GroupMember", "is_available", "is_mpi_available",
    "init_process_group", "destroy_process_group", "is_initialized", "get_backend", "get_rank",
    "get_world_size", "new_group", "barrier", "all_reduce", "broadcast", "all_gather",
    "all_gather_into_tensor", "reduce_scatter", "reduce_scatter_tensor", "gather",
]

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)  # PyTorch's default_pg_timeout


class ReduceOp(enum.Enum):
    """How all_reduce and reduce_scatter combine the ranks' values (AVG: floating point only)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


def _unavailable_reason() -> Optional[str]:
    """Why MPI collectives cannot run here, or None when mpi4py is installed."""
    try:
        found = importlib.util.find_spec("mpi4py") is not None
    except (ImportError, ValueError):  # a broken or blocked installation
        found = False
    if not found:
        return (
            "mpi4py is not installed: pip install 'fastdl[mpi]' (mpi4py and the mpich wheel), "
            "or pip install mpi4py against your system's MPI"
        )
    return None


def is_available() -> bool:
    """True when mpi4py is installed (without importing it); `fastdl info` says why not."""
    return _unavailable_reason() is None


is_mpi_available = is_available


# What MPI launchers tell each process of the job's size: MPICH/Intel MPI (hydra, and srun's
# PMI-2), Open MPI, MVAPICH.
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def launched_world_size() -> int:
    """How many processes the MPI launcher started (1 without one), read from the launcher's
    environment variables, so a program can tell `mpiexec -n 2` from a plain run without
    importing mpi4py."""
    for name in _LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def abort_job(code: int = 1) -> None:
    """End every rank of the job now, with exit status `code` (MPI_Abort)."""
    sys.stdout.flush()
    sys.stderr.flush()
    # The launcher forwards each rank's output asynchronously and drops what is still in
    # flight when it tears the job down: give the last lines (why we abort) time to get out.
    time.sleep(0.5)
    _mpi().COMM_WORLD.Abort(code)


def _mpi() -> Any:
    reason = _unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"[distributed] {reason}")
    from mpi4py import MPI  # initialises MPI (a one-process job when not launched by mpiexec)

    return MPI


def status() -> str:
    """One line for `fastdl info`: the MPI library (and mpi4py's version), or why there is none.
    Loads mpi4py (and so starts MPI, as a job of one process outside mpiexec)."""
    reason = _unavailable_reason()
    if reason is not None:
        return f"not available ({reason})"
    try:
        MPI = _mpi()
        import mpi4py

        library = " ".join(MPI.Get_library_version().split("\n")[0].split())
    except Exception as e:  # an mpi4py that cannot load its MPI library
        return f"not available (mpi4py fails to load MPI: {type(e).__name__}: {e})"
    return f"{library} through mpi4py {mpi4py.__version__}"


class ProcessGroup:
    """A set of ranks with its MPI communicator (None on a rank outside the group)."""

    def __init__(self, comm: Any, ranks: Sequence[int], timeout: float) -> None:
        self.comm, self.ranks, self.timeout = comm, list(ranks), timeout

    def rank(self) -> int:
        return self.comm.Get_rank() if self.comm is not None else -1

    def size(self) -> int:
        return len(self.ranks)

    def __repr__(self) -> str:
        return f"ProcessGroup(backend=mpi, ranks={self.ranks})"


class GroupMember:
    """PyTorch's markers: WORLD is the default group, NON_GROUP_MEMBER a rank outside one."""

    WORLD: Optional[ProcessGroup] = None
    NON_GROUP_MEMBER = -100


group = GroupMember  # torch.distributed.group.WORLD
_groups: List[ProcessGroup] = []  # those new_group made, freed by destroy_process_group
_previous_excepthook = None


def is_initialized() -> bool:
    return GroupMember.WORLD is not None


def _seconds(timeout: Any, op: str) -> float:
    if isinstance(timeout, datetime.timedelta):
        seconds = timeout.total_seconds()
    elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        seconds = float(timeout)
    else:
        raise TypeError(
            f"[{op}] expected timeout to be a datetime.timedelta (or seconds), got "
            f"{type(timeout).__name__}"
        )
    if not seconds > 0:
        raise ValueError(f"[{op}] timeout must be positive, got {seconds} s")
    return seconds


def init_process_group(
    backend: Optional[str] = None, init_method: Optional[str] = None, timeout: Any = None,
    world_size: int = -1, rank: int = -1, store: Any = None, group_name: str = "",
    pg_options: Any = None, device_id: Any = None,
) -> None:
    """Join the job that `mpiexec`/`srun` started: rank and world size come from MPI (as with
    PyTorch's MPI backend); `world_size`/`rank`, when given, must agree with them."""
    if backend not in (None, "mpi"):
        raise ValueError(
            f"[init_process_group] fastdl's only backend is 'mpi' (through mpi4py), got "
            f"{backend!r}"
        )
    if is_initialized():
        raise RuntimeError("[init_process_group] trying to initialize the default process group "
                           "twice!")
    seconds = _seconds(DEFAULT_TIMEOUT if timeout is None else timeout, "init_process_group")
    MPI = _mpi()
    comm = MPI.COMM_WORLD.Dup()
    for name, given, actual in (("world_size", world_size, comm.Get_size()),
                                ("rank", rank, comm.Get_rank())):
        if given != -1 and given != actual:
            comm.Free()
            raise ValueError(
                f"[init_process_group] {name}={given} disagrees with the MPI launcher's {actual}"
            )
    GroupMember.WORLD = ProcessGroup(comm, range(comm.Get_size()), seconds)
    if MPI.Query_thread() == MPI.THREAD_MULTIPLE:
        _watchdog.start()
    global _previous_excepthook
    if comm.Get_size() > 1 and _previous_excepthook is None:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _abort_on_exception


def _abort_on_exception(kind, value, tb) -> None:
    """An uncaught exception on one rank: print it, then end the whole job rather than leave
    the other ranks waiting in their next collective."""
    traceback.print_exception(kind, value, tb)
    sys.stderr.write(f"[distributed] rank {get_rank()}: uncaught {kind.__name__}; aborting the "
                     "job\n")
    abort_job(1)


def _world() -> ProcessGroup:
    if GroupMember.WORLD is None:
        raise RuntimeError(
            "[distributed] Default process group has not been initialized, please make sure to "
            "call init_process_group."
        )
    return GroupMember.WORLD


def _group(pg: Optional[ProcessGroup]) -> ProcessGroup:
    world = _world()
    if pg is None or pg is GroupMember.WORLD:
        return world
    if not isinstance(pg, ProcessGroup):
        raise TypeError(f"[distributed] group must be a ProcessGroup, got {type(pg).__name__}")
    return pg


def destroy_process_group(group: Optional[ProcessGroup] = None) -> None:
    """Free `group`'s communicator, or every group's and leave the job (None)."""
    global _previous_excepthook
    pg = _group(group)
    doomed = [pg] if pg is not GroupMember.WORLD else _groups + [pg]
    for g in doomed:
        if g.comm is not None:
            g.comm.Free()
            g.comm = None
        if g in _groups:
            _groups.remove(g)
    if pg is GroupMember.WORLD:
        GroupMember.WORLD = None
        if _previous_excepthook is not None:
            sys.excepthook, _previous_excepthook = _previous_excepthook, None


def get_backend(group: Optional[ProcessGroup] = None) -> str:
    _group(group)
    return "mpi"


def get_rank(group: Optional[ProcessGroup] = None) -> int:
    """This process's rank in `group` (the world by default); -1 outside the group."""
    return _group(group).rank()


def get_world_size(group: Optional[ProcessGroup] = None) -> int:
    """How many ranks `group` has (the world by default); -1 outside the group."""
    pg = _group(group)
    return pg.size() if pg.comm is not None else -1


def new_group(ranks: Optional[Sequence[int]] = None, timeout: Any = None, backend: Any = None,
              pg_options: Any = None, use_local_synchronization: bool = False,
              group_desc: Optional[str] = None) -> ProcessGroup:
    """A group of `ranks` (sorted; all ranks by default). Every rank of the world must call it,
    as in PyTorch, members or not."""
    world = _world()
    n = world.size()
    ranks = list(range(n)) if ranks is None else sorted(int(r) for r in ranks)
    if len(set(ranks)) != len(ranks) or any(not 0 <= r < n for r in ranks):
        raise ValueError(f"[new_group] ranks must be distinct ranks of 0..{n - 1}, got {ranks}")
    seconds = world.timeout if timeout is None else _seconds(timeout, "new_group")
    MPI = _mpi()
    members = world.comm.Get_group().Incl(ranks)
    comm = world.comm.Create(members)  # collective over the world, as new_group is
    members.Free()
    pg = ProcessGroup(None if comm == MPI.COMM_NULL else comm, ranks, seconds)
    _groups.append(pg)
    return pg


# ---------------------------------------------------------------- waiting with a deadline


def _abort_timed_out(op: str, pg: ProcessGroup) -> None:
    me = _world().rank()
    others = ", ".join(str(r) for r in pg.ranks if r != me)
    sys.stderr.write(
        f"[distributed] {op} timed out after {pg.timeout:g} s on rank {me}, waiting for ranks "
        f"{others}; aborting the job\n"
    )
    abort_job(1)


class _Watchdog:
    """PyTorch's design: the caller blocks in MPI_Wait (as fast as a blocking collective) while
    a daemon thread watches the deadline of the wait in progress and aborts the job past it.
    Needs MPI_THREAD_MULTIPLE (mpi4py asks for it); without it, waits poll MPI_Test instead."""

    def __init__(self) -> None:
        self.current = None  # (op, process group, deadline) of the wait in progress
        self.thread = None

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._watch, name="fastdl-mpi-watchdog",
                                           daemon=True)
            self.thread.start()

    def _watch(self) -> None:
        while True:
            current = self.current
            if current is not None and time.monotonic() > current[2]:
                _abort_timed_out(current[0], current[1])
            time.sleep(0.05 if current is None else min(0.5, max(current[1].timeout / 20, 1e-3)))


_watchdog = _Watchdog()


def wait_request(request: Any, op: str, pg: ProcessGroup) -> None:
    """Complete the MPI `request`, aborting the job if it takes longer than `pg.timeout`."""
    if request.Test():
        return
    deadline = time.monotonic() + pg.timeout
    if _watchdog.thread is not None:
        _watchdog.current = (op, pg, deadline)
        try:
            request.Wait()
        finally:
            _watchdog.current = None
        return
    while not request.Test():
        if time.monotonic() > deadline:
            _abort_timed_out(op, pg)


class Work:
    """A collective in flight (`async_op=True`): `wait()` completes it and writes its result
    into the tensors; `is_completed()` asks without waiting."""

    def __init__(self, request: Any, op: str, pg: ProcessGroup, finish=None) -> None:
        self._request, self._op, self._pg, self._finish = request, op, pg, finish
        self._done = False

    def is_completed(self) -> bool:
        if not self._done and self._request.Test():
            self._complete()
        return self._done

    def wait(self, timeout: Any = None) -> bool:
        if not self._done:
            wait_request(self._request, self._op, self._pg)
            self._complete()
        return True

    def _complete(self) -> None:
        self._done = True
        if self._finish is not None:
            self._finish()


def _run(request: Any, op: str, pg: ProcessGroup, async_op: bool, finish=None) -> Optional[Work]:
    work = Work(request, op, pg, finish)
    if async_op:
        return work
    work.wait()
    return None


# ---------------------------------------------------------------- tensors as MPI buffers


def _host(op: str, t: Any, what: str = "tensor") -> np.ndarray:
    """The NumPy array behind CPU tensor `t`, for MPI to read or write."""
    if not isinstance(t, Tensor):
        raise TypeError(f"[{op}] expected {what} to be a Tensor, got {type(t).__name__}")
    if _devices.device_type_of(t._data) is not _devices.CPU:
        raise NotImplementedError(
            f"[{op}] MPI collectives take CPU tensors; {what} is on {t.device} (move it with "
            ".cpu() first)"
        )
    return t._data


def _contiguous(a: np.ndarray) -> np.ndarray:
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _write(t: Tensor, buf: np.ndarray) -> None:
    """Store `buf` into `t` (a no-op copy when buf is t's own storage); bump its version."""
    if buf is not t._data:
        t._data[...] = buf.reshape(t._data.shape)
    t._vc[0] += 1


def _mpi_op(op: str, reduce_op: Any, dtype: np.dtype) -> Any:
    if not isinstance(reduce_op, ReduceOp):
        raise TypeError(f"[{op}] op must be a ReduceOp, got {reduce_op!r}")
    if reduce_op is ReduceOp.AVG and not np.issubdtype(dtype, np.floating):
        raise RuntimeError(f"[{op}] ReduceOp.AVG takes floating-point tensors, got {dtype}")
    MPI = _mpi()
    return {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
            ReduceOp.MIN: MPI.MIN, ReduceOp.MAX: MPI.MAX}[reduce_op]


def _group_rank(op: str, pg: ProcessGroup, rank: int, what: str) -> int:
    """The group rank of global rank `rank`."""
    if rank not in pg.ranks:
        raise ValueError(f"[{op}] {what}={rank} is not a rank of the group {pg.ranks}")
    return pg.ranks.index(rank)


def _check_blocks(op: str, what: str, whole: np.ndarray, block: np.ndarray, n: int) -> None:
    """`whole` (the argument `what`) must be n blocks of `block`'s dtype and size."""
    if whole.dtype != block.dtype or whole.size != block.size * n:
        raise ValueError(
            f"[{op}] {what} must be {block.dtype} with {n} x {block.size} elements, got "
            f"{whole.dtype} with {whole.size}"
        )


def _same_as(op: str, tensors: Sequence[Any], like: np.ndarray, n: int, what: str) -> list:
    tensors = list(tensors)
    if len(tensors) != n:
        raise ValueError(f"[{op}] {what} must hold one tensor per rank ({n}), got {len(tensors)}")
    arrays = [_host(op, t, what) for t in tensors]
    for a in arrays:
        if a.shape != like.shape or a.dtype != like.dtype:
            raise ValueError(
                f"[{op}] every tensor of {what} must be {like.dtype} of shape {like.shape}, got "
                f"{a.dtype} of shape {a.shape}"
            )
    return arrays


# ---------------------------------------------------------------- collectives


def barrier(group: Optional[ProcessGroup] = None, async_op: bool = False,
            device_ids: Any = None) -> Optional[Work]:
    """Wait until every rank of `group` has reached this call."""
    pg = _group(group)
    if pg.comm is None:
        return None
    return _run(pg.comm.Ibarrier(), "barrier", pg, async_op)


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group: Optional[ProcessGroup] = None,
               async_op: bool = False) -> Optional[Work]:
    """tensor <- op over the ranks' tensors, in place on every rank."""
    pg = _group(group)
    a = _host("all_reduce", tensor)
    mpi_op = _mpi_op("all_reduce", op, a.dtype)
    if pg.comm is None:
        return None
    buf = _contiguous(a)

    def finish() -> None:
        if op is ReduceOp.AVG:
            np.divide(buf, pg.size(), out=buf, casting="unsafe")
        _write(tensor, buf)

    request = pg.comm.Iallreduce(_mpi().IN_PLACE, buf, mpi_op)
    return _run(request, "all_reduce", pg, async_op, finish)


def broadcast(tensor: Tensor, src: int = 0, group: Optional[ProcessGroup] = None,
              async_op: bool = False, group_src: Optional[int] = None) -> Optional[Work]:
    """tensor <- rank `src`'s tensor (src is a global rank; group_src a rank of the group)."""
    pg = _group(group)
    a = _host("broadcast", tensor)
    if pg.comm is None:
        return None
    root = group_src if group_src is not None else _group_rank("broadcast", pg, src, "src")
    if not 0 <= root < pg.size():
        raise ValueError(f"[broadcast] group_src={root} is not a rank of 0..{pg.size() - 1}")
    buf = _contiguous(a)
    return _run(pg.comm.Ibcast(buf, root), "broadcast", pg, async_op,
                lambda: _write(tensor, buf))


def all_gather(tensor_list: List[Tensor], tensor: Tensor, group: Optional[ProcessGroup] = None,
               async_op: bool = False) -> Optional[Work]:
    """tensor_list[r] <- rank r's tensor, on every rank."""
    pg = _group(group)
    a = _host("all_gather", tensor)
    if pg.comm is None:
        return None
    _same_as("all_gather", tensor_list, a, pg.size(), "tensor_list")
    out = np.empty((pg.size(),) + a.shape, a.dtype)

    def finish() -> None:
        for t, part in zip(tensor_list, out):
            _write(t, part)

    return _run(pg.comm.Iallgather(_contiguous(a), out), "all_gather", pg, async_op, finish)


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor,
                           group: Optional[ProcessGroup] = None,
                           async_op: bool = False) -> Optional[Work]:
    """output_tensor <- the ranks' input tensors, concatenated along dim 0 or stacked."""
    pg = _group(group)
    a = _host("all_gather_into_tensor", input_tensor, "input_tensor")
    out = _host("all_gather_into_tensor", output_tensor, "output_tensor")
    if pg.comm is None:
        return None
    _check_blocks("all_gather_into_tensor", "output_tensor", out, a, pg.size())
    buf = _contiguous(out)
    return _run(pg.comm.Iallgather(_contiguous(a), buf), "all_gather_into_tensor", pg, async_op,
                lambda: _write(output_tensor, buf))


def reduce_scatter(output: Tensor, input_list: List[Tensor], op: ReduceOp = ReduceOp.SUM,
                   group: Optional[ProcessGroup] = None, async_op: bool = False) -> Optional[Work]:
    """output <- op over the ranks of their input_list[rank]."""
    pg = _group(group)
    out = _host("reduce_scatter", output, "output")
    mpi_op = _mpi_op("reduce_scatter", op, out.dtype)
    if pg.comm is None:
        return None
    parts = _same_as("reduce_scatter", input_list, out, pg.size(), "input_list")
    return _reduce_scatter("reduce_scatter", output, np.stack(parts), op, mpi_op, pg, async_op)


def reduce_scatter_tensor(output: Tensor, input: Tensor, op: ReduceOp = ReduceOp.SUM,
                          group: Optional[ProcessGroup] = None,
                          async_op: bool = False) -> Optional[Work]:
    """output <- op over the ranks of their input's rank-th block along dim 0."""
    pg = _group(group)
    out = _host("reduce_scatter_tensor", output, "output")
    a = _host("reduce_scatter_tensor", input, "input")
    mpi_op = _mpi_op("reduce_scatter_tensor", op, out.dtype)
    if pg.comm is None:
        return None
    _check_blocks("reduce_scatter_tensor", "input", a, out, pg.size())
    return _reduce_scatter("reduce_scatter_tensor", output, _contiguous(a), op, mpi_op, pg,
                           async_op)


def _reduce_scatter(name, output, send, op, mpi_op, pg, async_op):
    buf = _contiguous(output._data)

    def finish() -> None:
        if op is ReduceOp.AVG:
            np.divide(buf, pg.size(), out=buf, casting="unsafe")
        _write(output, buf)

    return _run(pg.comm.Ireduce_scatter_block(send, buf, mpi_op), name, pg, async_op, finish)


def gather(tensor: Tensor, gather_list: Optional[List[Tensor]] = None, dst: int = 0,
           group: Optional[ProcessGroup] = None, async_op: bool = False,
           group_dst: Optional[int] = None) -> Optional[Work]:
    """gather_list[r] <- rank r's tensor, on rank `dst` only (a global rank)."""
    pg = _group(group)
    a = _host("gather", tensor)
    if pg.comm is None:
        return None
    root = group_dst if group_dst is not None else _group_rank("gather", pg, dst, "dst")
    if pg.rank() == root:
        if gather_list is None:
            raise ValueError("[gather] gather_list must be given on the destination rank")
        _same_as("gather", gather_list, a, pg.size(), "gather_list")
        out = np.empty((pg.size(),) + a.shape, a.dtype)

        def finish() -> None:
            for t, part in zip(gather_list, out):
                _write(t, part)
    else:
        if gather_list:
            raise ValueError("[gather] Argument ``gather_list`` must NOT be specified on "
                             "non-destination ranks.")
        out, finish = None, None
    return _run(pg.comm.Igather(_contiguous(a), out, root), "gather", pg, async_op, finish)
