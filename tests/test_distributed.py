"""fastdl.distributed, DistributedDataParallel and DistributedSampler.

The sampler is checked against PyTorch's in this process. The collectives and DDP run under
`mpiexec -n 2` and `-n 3` (oversubscribed on a small machine) as subprocesses with a timeout,
each rank running tests/mpi_worker.py CASE and checking its own results; they skip, saying why,
when mpi4py or mpiexec is missing (`pip install "fastdl[mpi]"`)."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastdl
import fastdl.distributed as dist
from fastdl.data import DistributedSampler
from fastdl.data.sampler import torch_randperm

HERE = Path(__file__).resolve().parent
WORKER = HERE / "mpi_worker.py"


def _mpiexec():
    """The mpiexec beside this Python (the mpich wheel installs one there), else on PATH."""
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else shutil.which("mpiexec")


needs_mpi = pytest.mark.skipif(
    not dist.is_available() or _mpiexec() is None,
    reason="needs mpi4py and mpiexec: pip install 'fastdl[mpi]'",
)


def mpirun(n, *args, timeout=180):
    """Run `mpiexec -n n python *args`; returns (exit code, stdout + stderr, seconds)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.monotonic()
    proc = subprocess.run(
        [_mpiexec(), "-n", str(n), sys.executable, *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=HERE.parent,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def run_case(n, case):
    code, out, _ = mpirun(n, WORKER, case)
    assert code == 0, out
    assert sorted(int(r) for r in re.findall(r"OK rank (\d+)", out)) == list(range(n)), out


# ---------------------------------------------------------------- without MPI


def test_torch_randperm_is_pytorchs():
    torch = pytest.importorskip("torch", reason="compares with PyTorch")
    for n in (0, 1, 2, 7, 100, 1293):
        for seed in (0, 1, 41, 2**32 + 3, -5):
            expected = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
            assert torch_randperm(n, seed).tolist() == expected.tolist(), (n, seed)


@pytest.mark.parametrize("n", [1, 5, 10, 13, 64])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("shuffle,drop_last", [(True, False), (False, False), (True, True),
                                               (False, True)])
def test_distributed_sampler_matches_torch_and_shards(n, replicas, shuffle, drop_last):
    torch = pytest.importorskip("torch", reason="compares with PyTorch")
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    data = list(range(n))
    shards = []
    for rank in range(replicas):
        ours = DistributedSampler(data, replicas, rank, shuffle=shuffle, seed=3,
                                  drop_last=drop_last)
        theirs = TorchSampler(data, replicas, rank, shuffle=shuffle, seed=3, drop_last=drop_last)
        for epoch in (0, 2):
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)
        shards.append(list(ours))
    assert len({len(s) for s in shards}) == 1  # every rank the same number of steps
    flat = [i for s in shards for i in s]
    if not drop_last:  # covering: every index on some rank (padding repeats only the start)
        assert set(flat) == set(data)
    if n % replicas == 0 or drop_last:  # disjoint: no index on two ranks
        assert len(flat) == len(set(flat))


def test_distributed_sampler_errors_and_paths():
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas"):
        DistributedSampler(range(4), num_replicas=0, rank=0)
    import fastdl.utils.data as tud
    import fastdl.utils.data.distributed as tudd

    assert tud.DistributedSampler is tudd.DistributedSampler is DistributedSampler


def test_collectives_need_a_process_group():
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="has not been initialized"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match="has not been initialized"):
        dist.all_reduce(fastdl.ones(2))
    with pytest.raises(ValueError, match="only backend is 'mpi'"):
        dist.init_process_group("nccl")


def test_plain_install_imports_no_mpi4py():
    """Without mpi4py: fastdl imports, is_available() is False and says why."""
    code = (
        "import sys; sys.modules['mpi4py'] = None\n"  # as if not installed
        "import fastdl, fastdl.nn, fastdl.distributed as d, fastdl.utils.data\n"
        "from fastdl.nn.parallel import DistributedDataParallel\n"
        "assert not d.is_available() and 'pip install' in d._unavailable_reason()\n"
        "try:\n    d.init_process_group('mpi')\nexcept RuntimeError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "mpi4py is not installed" in out.stdout
    # and with it installed, importing fastdl still does not load it
    code = "import sys, fastdl, fastdl.distributed, fastdl.nn.parallel; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "False", out.stderr


# ---------------------------------------------------------------- under mpiexec


@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_collectives_against_numpy(n):
    run_case(n, "collectives")


@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_ddp_equals_one_process_on_the_whole_batch(n):
    """5 SGD (momentum) and 5 Adam steps, one bucket and one bucket per parameter."""
    run_case(n, "ddp")


@needs_mpi
def test_no_sync_accumulation_equals_one_big_step():
    run_case(2, "no_sync")


@needs_mpi
def test_find_unused_parameters():
    run_case(2, "unused")


@needs_mpi
def test_mismatched_models_are_refused():
    run_case(2, "mismatch")


@needs_mpi
def test_collective_timeout_aborts_the_job_naming_op_and_ranks():
    code, out, seconds = mpirun(2, WORKER, "timeout", 3, timeout=60)
    assert code != 0
    assert "[distributed] all_reduce timed out after 3 s on rank 0, waiting for ranks 1" in out
    assert seconds < 40, seconds  # rank 1 sleeps for 60 s: the abort ended it


@needs_mpi
@pytest.mark.parametrize("how", ["kill", "raise"])
def test_a_rank_dying_mid_training_ends_the_job(how):
    code, out, seconds = mpirun(2, WORKER, how, 5, timeout=60)
    assert code != 0, out
    assert seconds < 40, seconds
    if how == "raise":
        assert "rank 1 fails on purpose" in out and "aborting the job" in out


# ---------------------------------------------------------------- the demo, data-parallel


def demo(tmp_path, name, *extra, n=2):
    """`mpiexec -n n fastdl demo` on 200 images per split, one thread per rank."""
    out = tmp_path / name
    code, text, _ = mpirun(n, "-m", "fastdl.cli", "demo", "--limit", "200", "--threads", "1",
                           "--no-progress", "--out", out, *extra)
    return code, text, out


@needs_mpi
def test_demo_data_parallel_and_resume(tmp_path):
    pytest.importorskip("sklearn", reason="the demo's digits come with scikit-learn")
    code, text, out = demo(tmp_path, "whole", "--epochs", "2")
    assert code == 0, text
    assert text.count("epoch 2/2:") == 1 and text.count("test accuracy") == 1  # rank 0 alone
    assert "2 ranks, 16 images each per batch" in text and "samples/s on 2 ranks" in text
    history = json.loads((out / "history.json").read_text())
    assert history["ranks"] == 2 and history["epochs"][0]["samples"] == 200  # both shards
    assert history["test_acc"] > 0.5
    # stopped after epoch 1 and resumed: the same weights as the run never interrupted
    code, text, first = demo(tmp_path, "first", "--epochs", "1")
    assert code == 0, text
    code, text, second = demo(tmp_path, "second", "--epochs", "2", "--resume",
                              first / "checkpoint.safetensors")
    assert code == 0 and "resumed from" in text, text
    whole, resumed = fastdl.load(out / "model.safetensors"), fastdl.load(second / "model.safetensors")
    for key in whole:
        np.testing.assert_array_equal(whole[key].numpy(), resumed[key].numpy())


@needs_mpi
def test_demo_error_on_rank_0_ends_the_job(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, text, _ = mpirun(2, "-m", "fastdl.cli", "demo", "--limit", "20", "--out",
                           blocker / "out", timeout=120)
    assert code != 0 and "fastdl demo: error: cannot write to --out" in text, text
