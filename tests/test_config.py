"""fastdl.info() / show_config(): what a user checks an install with."""

import os
import platform
import subprocess
import sys

import pytest

import fastdl


def test_info_reports_the_build():
    info = fastdl.info()
    assert info["version"] == fastdl.__version__
    assert info["threads"] == fastdl.get_num_threads()
    assert info["simd"] in info["simd_supported"].split(", ")
    assert info["cuda_built"] in (True, False)


def test_show_config_prints_every_item(capsys):
    fastdl.show_config()
    out = capsys.readouterr().out
    for key in fastdl.info():
        assert key in out


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc tuning is glibc-only")
def test_malloc_tuning_is_on_by_default_and_can_be_turned_off():
    assert fastdl.info()["malloc_tuning"] is True
    env = dict(os.environ, FASTDL_MALLOC_TUNING="0")
    out = subprocess.run(
        [sys.executable, "-c", "import fastdl; print(fastdl.info()['malloc_tuning'])"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    assert out.strip() == "False"


# fastdl's OpenMP threads sleep between parallel regions (fastdl/_openmp.py): the CPU time the
# process uses while its main thread sleeps right after a 2-thread GEMM. Spinning threads burn
# milliseconds of it (tens with OMP_WAIT_POLICY=active); sleeping ones almost none.
IDLE_BURN = """
import os, time, numpy as np, fastdl
from fastdl.backends import cpu
fastdl.set_num_threads(2)
a = np.ones((512, 512), np.float32)
burn = 0.0
for _ in range(5):
    cpu.matmul(a, a, False, False)
    t = time.process_time(); time.sleep(0.05); burn += time.process_time() - t
print(fastdl.info()["omp_wait_policy"], "|", os.environ.get("OMP_WAIT_POLICY"), "|", burn)
"""


def _idle_burn(**env):
    full = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    full.update(env)
    out = subprocess.run(
        [sys.executable, "-c", IDLE_BURN], env=full, capture_output=True, text=True, check=True
    ).stdout
    policy, variable, burn = (part.strip() for part in out.split("|"))
    return policy, variable, float(burn)


@pytest.mark.skipif(fastdl.info()["openmp"] is None, reason="built without OpenMP")
def test_openmp_threads_wait_passively_unless_the_user_chose():
    policy, variable, burn = _idle_burn()
    assert policy == "passive (fastdl's default)"
    assert variable == "None"  # not left in the environment for child processes
    assert burn < 0.005, f"{burn * 1e3:.1f} ms of CPU while idle for 250 ms"
    policy, variable, _ = _idle_burn(OMP_WAIT_POLICY="active")
    assert policy == "set by the user (OMP_WAIT_POLICY=active)" and variable == "active"
    policy, _, _ = _idle_burn(GOMP_SPINCOUNT="1000")
    assert policy == "set by the user (GOMP_SPINCOUNT=1000)"


def test_openmp_policy_left_alone_when_libgomp_is_already_loaded():
    torch = pytest.importorskip("torch")  # loads libgomp before fastdl in a fresh process
    del torch
    code = "import torch, fastdl; print(fastdl.info()['omp_wait_policy'])"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "libgomp's default (libgomp was loaded before fastdl)"
