"""PyTorch as a peer, in a subprocess of its own (bench/worker.py), with its own OpenMP settings.

fastdl's kernels run with libgomp's passive wait policy (python/fastdl/_openmp.py). A process
has one libgomp, so a PyTorch measured in fastdl's process waits passively too: each parallel
region then pays a sleeping thread's wake-up (~50 us on the 2-core VMs here), and PyTorch's
training steps ran 1.2-1.8x slower than in a process of their own. The fair peer is PyTorch as
its users run it: this worker imports torch before anything else, so libgomp loads with its
default policy, and fastdl, imported after it for the one definition of the model
(bench/model.py), leaves that policy alone.

    python -m bench.torch_peer THREADS     # the worker (started by TorchPeer)
"""

from __future__ import annotations

import os
import sys

from .timing import Side
from .worker import Worker, serve


class TorchPeer(Worker):
    """A running worker, PyTorch on `threads` threads."""

    def __init__(self, threads: int) -> None:
        # (fastdl's passive policy never reaches the environment: _openmp.py removes it once
        # libgomp has loaded; a policy the user set reaches both libraries alike.)
        super().__init__([sys.executable, "-m", "bench.torch_peer", str(threads)])

    def model_side(self, name: str, kind: str, batch: int, compiled: bool = False) -> Side:
        """The founding CNN's training step (kind "train") or inference ("infer") at `batch`,
        through torch.compile if `compiled` (its first, cold call compiles)."""
        return self.side(name, kind=kind, batch=batch, compiled=compiled)


def _serve(threads: int) -> None:
    import torch  # first: see the module's docstring

    torch.set_num_threads(threads)
    from .model import build

    def setup(req: dict):
        workload = build("torch", req["batch"], compiled=req["compiled"])
        return workload.train_step if req["kind"] == "train" else workload.infer

    def handle(req: dict) -> dict:
        if req["op"] == "info":
            import fastdl._openmp

            return {
                "torch": torch.__version__,
                "pid": os.getpid(),
                "threads": torch.get_num_threads(),
                "openmp_wait_policy": fastdl._openmp.wait_policy,
            }
        raise ValueError(f"unknown op {req['op']!r}")

    serve(setup, handle)


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
