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
