"""The CUDA backend's plumbing that needs no GPU: the [cuda] extras, a plain install never
importing CuPy, fastdl.cuda's queries and their errors on each missing piece (a build without
CUDA, no GPU, no CuPy), Tensor.to("cuda") naming what is missing, DLPack exchange with PyTorch
and NumPy on the CPU (zero-copy both ways, outside autograd), load's map_location forms,
`fastdl info`'s CUDA line, the cuda backend's signatures and CuPy library's named functions,
and, in a FASTDL_CUDA=ON build, the _C.cuda bindings' argument checks (through fake
__cuda_array_interface__ objects; no kernel runs). tests/test_cuda_kernels.py holds the kernels
to the reference on a GPU.
"""

from __future__ import annotations

import inspect
import io
import subprocess
import sys
from pathlib import Path

import fastdl
import fastdl.cuda as fcuda
import numpy as np
import pytest
from fastdl import _C, _devices, nn

ROOT = Path(__file__).resolve().parents[1]
CUDA_BUILT = bool(_C.build_config["cuda_built"])
needs_no_gpu = pytest.mark.skipif(
    fastdl.cuda.is_available(), reason="checks the errors of a machine without CUDA tensors"
)


# ---------------------------------------------------------------- install and import


def test_cuda_extras_name_the_cupy_wheels():
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert extras["cuda"] == extras["cuda13"] == ["cupy-cuda13x>=14"]
    assert extras["cuda12"] == ["cupy-cuda12x>=14"]
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not any("cupy" in d for d in deps)


def test_plain_use_never_imports_cupy():
    code = (
        "import sys, fastdl, fastdl.backends.cuda as bc\n"
        "fastdl.cuda.is_available(); fastdl.cuda.device_count(); fastdl.cuda.synchronize()\n"
        "fastdl.cuda.memory_allocated(); fastdl.cuda.manual_seed_all(1)\n"
        "assert bc.matmul.allow_tf32 is False\n"
        "x = fastdl.randn(4, 3, requires_grad=True); (x.relu() @ fastdl.ones(3, 2)).sum().backward()\n"
        "if not fastdl.cuda.is_available():\n"
        "    fastdl.info()\n"
        "    try: x.to('cuda')\n"
        "    except RuntimeError: pass\n"
        "print('cupy' in sys.modules, 'cupyx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stdout + out.stderr


# ---------------------------------------------------------------- fastdl.cuda without CUDA


@needs_no_gpu
def test_queries_without_cuda_tensors():
    assert fcuda.is_available() is False
    why = fcuda.unavailable_reason()
    assert isinstance(why, str) and why
    assert fcuda.device_count() == _C.cuda_device_count() >= 0
    assert fcuda.memory_allocated() == 0
    assert fcuda.synchronize() is None and fcuda.empty_cache() is None
    assert fcuda.manual_seed(3) is None and fcuda.manual_seed_all(3) is None
    with pytest.raises(TypeError, match=r"^\[cuda.manual_seed_all\]"):
        fcuda.manual_seed_all("3")
    for query in (fcuda.get_device_name, fcuda.get_device_capability, fcuda.current_device):
        with pytest.raises(RuntimeError, match=r"^\[cuda\] CUDA tensors are not available: "):
            query()


def _missing(monkeypatch, piece):
    # Simulates one missing piece on this machine; returns the words its reason must hold.
    monkeypatch.delitem(_devices.DEVICE_TYPES, "cuda", raising=False)
    if piece == "build":
        monkeypatch.setitem(_C.build_config, "cuda_built", False)
        return "built without its CUDA kernels"
    monkeypatch.setitem(_C.build_config, "cuda_built", True)
    if piece == "gpu":
        monkeypatch.setattr(_C, "cuda_device_count", lambda: 0)
        return "no NVIDIA GPU answers"
    monkeypatch.setattr(_C, "cuda_device_count", lambda: 1)
    real = fcuda.importlib.util.find_spec
    monkeypatch.setattr(
        fcuda.importlib.util, "find_spec", lambda n, *a: None if n == "cupy" else real(n, *a)
    )
    return "CuPy is not installed"


@pytest.mark.parametrize("piece", ["build", "gpu", "cupy"])
def test_each_missing_piece_is_named(monkeypatch, piece):
    words = _missing(monkeypatch, piece)
    assert fcuda.is_available() is False
    assert words in fcuda.unavailable_reason()
    assert fastdl.info()["cuda"] == f"not available: {fcuda.unavailable_reason()}"
    t = fastdl.ones(2)
    for move in (
        lambda: t.to("cuda"),
        lambda: t.cuda(),
        lambda: t.to(fastdl.device("cuda", 0)),
        lambda: fastdl.zeros(2, device="cuda"),
        lambda: nn.Linear(2, 2).to("cuda"),
        lambda: fastdl.set_default_device("cuda"),
    ):
        with pytest.raises(RuntimeError, match=r"\[to\] device cuda(:0)? is not available") as e:
            move()
        assert words in str(e.value)
    assert fastdl.get_default_device() == fastdl.device("cpu")


@needs_no_gpu
def test_info_and_cli_say_why_there_is_no_gpu():
    line = fastdl.info()["cuda"]
    assert line == f"not available: {fcuda.unavailable_reason()}"
    out = subprocess.run(
        [sys.executable, "-m", "fastdl.cli", "info"], capture_output=True, text=True, check=True
    ).stdout
    assert f"cuda: {line}" in out


# ---------------------------------------------------------------- DLPack on the CPU


def test_dlpack_with_numpy_shares_memory():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = fastdl.from_dlpack(a)
    assert t.device == fastdl.device("cpu") and t.dtype == fastdl.float32 and not t.requires_grad
    t[0, 0] = 7.0
    assert a[0, 0] == 7.0
    assert t.__dlpack_device__() == (1, 0)
    b = np.from_dlpack(t)
    b[1, 2] = -1.0
    assert t[1, 2].item() == -1.0
    i = fastdl.from_dlpack(np.arange(3))
    assert i.dtype == fastdl.int64 and i.tolist() == [0, 1, 2]


def test_dlpack_with_torch_both_ways():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    src = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    t = fastdl.from_dlpack(src)  # torch -> fastdl
    assert t.shape == (3, 4) and t.dtype == fastdl.float32 and not t.requires_grad
    src.add_(1.0)  # memory shared: torch's in-place change shows in fastdl
    assert t.tolist() == src.tolist()
    view = fastdl.from_dlpack(src.t())  # a strided view keeps its strides
    assert view.tolist() == src.t().tolist()
    x = fastdl.arange(5, dtype=fastdl.float32)
    y = torch.from_dlpack(x)  # fastdl -> torch
    assert y.dtype == torch.float32 and not y.requires_grad
    y.mul_(2.0)
    assert x.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert torch.from_dlpack(fastdl.tensor([1, 2])).dtype == torch.int64


def test_dlpack_is_outside_autograd_as_in_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    w = fastdl.ones(3, requires_grad=True)
    with pytest.raises(BufferError, match=r"^\[__dlpack__\] .*requires grad.*detach"):
        torch.from_dlpack(w)
    with pytest.raises(BufferError):  # PyTorch's own rule, which fastdl's follows
        fastdl.from_dlpack(torch.ones(3, requires_grad=True))
    d = torch.from_dlpack(w.detach())
    d[0] = 5.0
    assert w[0].item() == 5.0 and w.grad is None


def test_from_dlpack_refuses_what_it_cannot_hold():
    with pytest.raises(TypeError, match=r"^\[from_dlpack\] expected an object with __dlpack__"):
        fastdl.from_dlpack([1.0, 2.0])
    with pytest.raises(TypeError, match=r"^\[dtype\] unsupported dtype"):
        fastdl.from_dlpack(np.zeros(2, dtype=np.float16))

    class Elsewhere:
        def __init__(self, kind):
            self.kind = kind

        def __dlpack__(self, **kwargs):
            raise AssertionError("never exported")

        def __dlpack_device__(self):
            return (self.kind, 0)

    with pytest.raises(RuntimeError, match=r"^\[from_dlpack\] DLPack device type 10 "):
        fastdl.from_dlpack(Elsewhere(10))
    if not fcuda.is_available():
        with pytest.raises(RuntimeError, match=r"^\[cuda\] CUDA tensors are not available: "):
            fastdl.from_dlpack(Elsewhere(2))


# ---------------------------------------------------------------- load(map_location=)


@pytest.fixture
def saved():
    buffer = io.BytesIO()
    fastdl.save({"w": fastdl.arange(4, dtype=fastdl.float32)}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "where",
    [
        None,
        "cpu",
        "cpu:0",
        fastdl.device("cpu"),
        {"cpu": "cpu"},
        {"cuda:0": "cpu"},
        lambda storage, location: storage,
    ],
    ids=["none", "cpu", "cpu:0", "device", "dict", "dict-from-cuda", "callable"],
)
def test_map_location_onto_the_cpu(saved, where):
    state = fastdl.load(io.BytesIO(saved), map_location=where)
    assert state["w"].device == fastdl.device("cpu") and state["w"].tolist() == [0, 1, 2, 3]


@needs_no_gpu
@pytest.mark.parametrize("where", ["cuda", "cuda:0", fastdl.device("cuda"), {"cpu": "cuda"}])
def test_map_location_onto_a_missing_gpu_says_why(saved, where):
    with pytest.raises(RuntimeError, match=r"^\[load\] map_location=.*CPU only") as e:
        fastdl.load(io.BytesIO(saved), map_location=where)
    assert fcuda.unavailable_reason() in str(e.value)


@pytest.mark.parametrize("where", [3, "gpu", object()], ids=["int", "unknown", "object"])
def test_map_location_refuses_what_names_no_device(saved, where):
    with pytest.raises(RuntimeError, match=r"^\[load\] map_location=.*\[device\] expected a "):
        fastdl.load(io.BytesIO(saved), map_location=where)


# ---------------------------------------------------------------- the backend and its library


def _contract():
    sys.path.insert(0, str(Path(__file__).parent))
    import test_backend_contract as contract

    return contract


def test_cuda_backend_is_a_subset_of_the_contract_with_the_same_signatures():
    from fastdl.backends import cuda, reference

    contract = _contract()
    kernels = contract._kernel_contract()
    exported = {n for n, v in vars(cuda).items() if inspect.isfunction(v) and not n.startswith("_")}
    assert exported <= set(kernels)
    # What runs on the reference through WithFallback until a CUDA kernel exists:
    assert set(kernels) - exported == {
        "norm_forward",
        "norm_backward",
        "avgpool2d_forward",
        "avgpool2d_backward",
        "adaptive_avgpool2d_forward",
        "adaptive_avgpool2d_backward",
        "adaptive_maxpool2d_forward",
        "embedding_backward",
        "bias_relu_",
        "relu_maxpool2x2_forward",
        "relu_maxpool2x2_backward",
        "conv2d_relu_maxpool2x2_forward",
        "conv2d_relu_maxpool2x2_backward",
        "lstm_cell_forward",
        "lstm_cell_backward",
        "gru_cell_forward",
        "gru_cell_backward",
        "rmsprop_step",
        "adagrad_step",
        "nadam_step",
    }
    for name in exported:
        assert contract._params(getattr(cuda, name)) == contract._params(
            getattr(reference, name)
        ), name
    assert cuda.name == "cuda" and cuda.matmul.allow_tf32 is False


def test_cupy_library_implements_every_named_function():
    from fastdl._cupy import CupyLibrary

    contract = _contract()
    base = _devices.ArrayLibrary
    missing = contract._named_methods(base) - contract._named_methods(CupyLibrary)
    assert missing == set(), f"CupyLibrary inherits NumPy's {sorted(missing)}"
    for name in contract._named_methods(base):
        assert contract._params(getattr(CupyLibrary, name), True) == contract._params(
            getattr(base, name), True
        ), name


# ---------------------------------------------------------------- _C.cuda's argument checks


class FakeDeviceArray:
    """An object with a __cuda_array_interface__ and no memory behind it: enough for the
    bindings' checks, which run before any kernel (a zero-size one reaches no CUDA call)."""

    def __init__(self, shape, typestr="<f4", strides=None, ptr=0, readonly=False):
        self.__cuda_array_interface__ = {
            "shape": tuple(shape),
            "typestr": typestr,
            "data": (ptr, readonly),
            "strides": strides,
            "version": 3,
        }


needs_cuda_build = pytest.mark.skipif(
    not CUDA_BUILT, reason="the _C.cuda bindings exist only in a FASTDL_CUDA=ON build"
)


def test_c_cuda_exists_only_in_a_cuda_build():
    assert hasattr(_C, "cuda") == CUDA_BUILT


@needs_cuda_build
def test_bindings_refuse_host_arrays_and_bad_layouts():
    C = _C.cuda
    F = FakeDeviceArray
    with pytest.raises(
        ValueError,
        match=r"^\[matmul\] a must be a CUDA array \(a CuPy array\), "
        r"got ndarray",
    ):
        C.matmul(
            np.zeros((2, 2), np.float32),
            np.zeros((2, 2), np.float32),
            np.zeros((2, 2), np.float32),
            False,
            False,
            False,
            0,
        )
    with pytest.raises(
        ValueError,
        match=r"^\[matmul\] a must be float32 \(typestr <f4\), got "
        r"typestr <f8",
    ):
        C.matmul(F((2, 2)), F((2, 2), "<f8"), F((2, 2)), False, False, False, 0)
    with pytest.raises(ValueError, match=r"^\[matmul\] inner sizes differ"):
        C.matmul(F((0, 0)), F((0, 3)), F((2, 0)), False, False, False, 0)
    with pytest.raises(ValueError, match=r"^\[matmul\] c must have shape \(2, 5\), got \(0, 4\)"):
        C.matmul(F((0, 4)), F((2, 0)), F((0, 5)), False, False, False, 0)
    with pytest.raises(ValueError, match=r"^\[conv2d_forward\] x must be C-contiguous"):
        C.conv2d_forward(
            F((1, 1, 3, 3)),
            F((1, 1, 3, 3), strides=(36, 36, 4, 12), ptr=64),
            F((1, 1, 1, 1)),
            None,
            (1, 1),
            (0, 0),
            0,
        )
    with pytest.raises(ValueError, match=r"^\[conv2d_forward\] expected input with 2 channels"):
        C.conv2d_forward(F((0, 0, 2, 2)), F((0, 3, 4, 4)), F((0, 2, 3, 3)), None, (1, 1), (0, 0), 0)
    with pytest.raises(ValueError, match=r"^\[conv2d_forward\] stride must be a pair of ints >= 1"):
        C.conv2d_forward(F((0, 0, 1, 1)), F((0, 1, 3, 3)), F((0, 1, 3, 3)), None, (0, 1), (0, 0), 0)
    with pytest.raises(ValueError, match=r"^\[maxpool2d_forward\] indices must be int64"):
        C.maxpool2d_forward(
            F((0, 1, 1, 1)), F((0, 1, 1, 1), "<i4"), F((0, 1, 2, 2)), (2, 2), (2, 2), (0, 0), 0
        )
    with pytest.raises(ValueError, match=r"^\[activation_forward\] y must be writeable"):
        C.activation_forward("relu", F((0,), readonly=True), F((0,)), 0)
    with pytest.raises(ValueError, match=r"^\[activation_forward\] expected 'relu', 'sigmoid'"):
        C.activation_forward("gelu", F((0,)), F((0,)), 0)
    with pytest.raises(ValueError, match=r"^\[cross_entropy_forward\] reduction must be one of"):
        C.cross_entropy_forward(
            F(()), F((0, 3)), F((0,)), F((0, 3)), F((0,), "<i8"), None, "avg", -100, 0
        )
    with pytest.raises(
        ValueError,
        match=r"^\[adam_step\] exp_avgs must have one entry per "
        r"parameter \(1\), got 0",
    ):
        C.adam_step(
            [F((0,))],
            [F((0,))],
            [],
            [F((0,))],
            None,
            1,
            1e-3,
            0.9,
            0.999,
            1e-8,
            0.0,
            False,
            False,
            0,
        )
    with pytest.raises(
        ValueError,
        match=r"^\[sgd_step\] params\[0\] is not in CUDA device "
        r"memory",
    ):
        C.sgd_step(
            [F((4,), ptr=4096)], [F((4,), ptr=8192)], [], 0.1, 0.0, 0.0, False, 0.0, False, False, 0
        )


@needs_cuda_build
def test_bindings_with_empty_arrays_launch_nothing():
    # Zero-size arrays pass every check and the launchers return before any CUDA call, so
    # this runs on a machine without a GPU or driver.
    C = _C.cuda
    F = FakeDeviceArray
    C.matmul(F((0, 0)), F((0, 3)), F((3, 0)), False, False, False, 0)
    C.matmul(F((0, 4, 4)), F((0, 0, 4)), F((0, 4, 0)), True, True, True, 0)
    C.activation_forward("tanh", F((0, 7)), F((0, 7)), 0)
    C.activation_backward("sigmoid", F((0,)), F((0,)), F((0,)), 0)
    C.conv2d_forward(F((0, 0, 3, 3)), F((0, 2, 5, 5)), F((0, 2, 3, 3)), F((0,)), (1, 1), (0, 0), 0)
    C.maxpool2d_forward(
        F((0, 3, 2, 2)), F((0, 3, 2, 2), "<i8"), F((0, 3, 4, 4)), (2, 2), (2, 2), (0, 0), 0
    )
    C.sgd_step([F((0,))], [F((0,))], [], 0.1, 0.0, 0.0, False, 0.0, False, False, 0)
