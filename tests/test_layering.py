"""The layers of DESIGN.md, checked on the source: nn and optim never call the C++ kernels
(`_C`) directly, and no module outside backends/ (and the array-namespace helper, _devices.py)
does tensor math with NumPy. Each NumPy name a core module may use is listed here with its
reason; a new use fails this test until it goes through the device's array namespace
(`_devices.namespace`), its named functions (`_devices.library`) or its kernels
(`_devices.kernels`), or is added here with a reason."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "fastdl"

# NumPy's types and dtypes: naming them is no math.
TYPES = {
    "ndarray", "generic", "integer", "floating", "number", "dtype", "bool_", "float16",
    "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "random.Generator",
}
# Reading the caller's data or the host random generator, and building the host values that
# then move to a tensor's device (PyTorch reads these on the CPU too).
HOST_INPUT = {"asarray", "array"}

ALLOWED = {
    "_functions.py": set(),  # every op goes through its arrays' namespace
    "autograd/grad_mode.py": set(),
    "autograd/engine.py": {"broadcast_to", "array"},  # CPU branch of _own (type-checked)
    "autograd/function.py": {"zeros", "asarray"},  # CPU zero gradient; a user's NumPy gradient
    "nn/functional.py": HOST_INPUT,
    "nn/init.py": {"clip", "sqrt", "log", "empty_like"} | HOST_INPUT,  # host random draws
    "nn/loss.py": set(),
    "nn/module.py": HOST_INPUT,
    "nn/modules.py": set(),
    "nn/parameter.py": {"zeros", "require"},  # Parameter() of nothing; a CPU array's layout
    "nn/utils.py": set(),
    # MPI moves host memory: DDP's gradient buckets are flat NumPy arrays (a parameter off the
    # CPU is refused with NotImplementedError at construction).
    "nn/parallel/distributed.py": {"zeros", "concatenate", "cumsum", "copyto", "array"},
    "optim/optimizer.py": HOST_INPUT,  # load_state_dict reads saved values
    "optim/adam.py": {"zeros"},  # the step count: a CPU scalar, as PyTorch's
    "optim/sgd.py": set(),
    # The tensor layer reads the caller's data and shapes on the host, and keeps CPU fast paths
    # that call NumPy's ufuncs straight into the storage; each is behind `type(data) is
    # _NDARRAY`, and every other device takes the namespace path (the strict-device suites
    # prove that path). Printing formats a host copy.
    "_tensor.py": HOST_INPUT | {
        "broadcast_shapes", "broadcast_to", "prod", "shape", "result_type", "zeros", "ones",
        "full", "ascontiguousarray",  # shapes, dtypes and host values
        "copyto", "add", "subtract", "multiply", "true_divide", "floor_divide", "remainder",
        "mod", "power", "bitwise_and", "bitwise_or", "bitwise_xor", "maximum", "negative",
        "abs", "clip", "add.at", "any", "may_share_memory", "shares_memory",  # CPU fast paths
        "array2string", "isfinite", "round", "all",  # printing (a host copy)
    },
    # Creation functions build the caller's values on the host, then move them to the device.
    "_creation.py": HOST_INPUT | {
        "zeros", "ones", "full", "arange", "linspace", "eye", "broadcast_shapes",
        "from_dlpack",  # a CPU producer's memory, shared (fastdl.from_dlpack)
    },
}


def _numpy_names(path: Path) -> set:
    """The attributes of NumPy (imported under any name) that `path` uses, dotted
    (np.add.at -> "add.at")."""
    tree = ast.parse(path.read_text())
    aliases = {
        a.asname or a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for a in node.names
        if a.name == "numpy"
    }
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            parts, inner = [], node
            while isinstance(inner, ast.Attribute):
                parts.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id in aliases:
                names.add(".".join(reversed(parts)))
    # keep the outermost chains only (np.random.Generator, not np.random as well)
    return {n for n in names if not any(m != n and m.startswith(n + ".") for m in names)}


CORE = sorted(
    {
        str(p.relative_to(PACKAGE))
        for folder in ("autograd", "nn", "nn/parallel", "optim", "ops")
        for p in (PACKAGE / folder).glob("*.py")
    }
    | {"_functions.py", "_tensor.py", "_creation.py"}
)


@pytest.mark.parametrize("module", CORE)
def test_core_modules_do_no_tensor_math_with_numpy(module):
    """A module not listed in ALLOWED may name NumPy's types only."""
    used = _numpy_names(PACKAGE / module)
    extra = used - TYPES - ALLOWED.get(module, set())
    assert not extra, (
        f"{module} uses NumPy's {sorted(extra)}: go through the array's namespace or a named "
        "function of its library (fastdl._devices), or list it in tests/test_layering.py "
        "with the reason"
    )


def test_the_allowed_list_names_existing_modules():
    assert set(ALLOWED) <= set(CORE)


@pytest.mark.parametrize("folder", ["nn", "optim", "ops"])
def test_nn_and_optim_never_call_the_kernels_directly(folder):
    for path in (PACKAGE / folder).glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = {a.name for a in node.names}
                assert node.module not in ("_C", "fastdl._C") and "_C" not in names, path.name
            if isinstance(node, ast.Import):
                assert all(a.name != "fastdl._C" for a in node.names), path.name


def test_the_repository_stands_alone():
    """Nothing in the repository refers to a path of the machine it was written on."""
    import subprocess

    root = PACKAGE.parent.parent
    try:
        files = subprocess.run(
            ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    needles = ("/work/", "../shared")
    me = Path(__file__).resolve()
    offenders = []
    for name in files:
        path = root / name
        if path.resolve() == me or path.suffix in (".png", ".gz", ".so", ".whl"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        offenders += [f"{name}: {n}" for n in needles if n in text]
    assert not offenders, offenders
