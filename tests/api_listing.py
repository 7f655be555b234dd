"""The list of what fastdl offers, generated from the code, for the README's "Use it like
PyTorch" section (between the `<!-- api:begin -->` and `<!-- api:end -->` markers);
tests/test_api_listing.py fails when the README's copy is stale.

    python tests/api_listing.py --write README.md     # regenerate the README's list
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

BEGIN, END = "<!-- api:begin -->", "<!-- api:end -->"


def _names(items) -> str:
    return ", ".join(f"`{n}`" for n in sorted(set(items), key=lambda n: (n.lower(), n)))


def listing() -> str:
    """The generated Markdown list."""
    import fastdl
    import fastdl.nn as nn
    import fastdl.nn.functional as F
    import fastdl.optim as optim

    members = {}  # Tensor's own and inherited methods (the in-place ones live in _inplace.py)
    for cls in reversed(fastdl.Tensor.__mro__[:-1]):
        members.update(vars(cls))
    tensor_methods = [
        n for n, v in members.items()
        if not n.startswith("_") and (callable(v) or isinstance(v, property))
    ]
    functions = [
        n for n in dir(fastdl)
        if not n.startswith("_") and inspect.isfunction(getattr(fastdl, n))
    ]
    layers = [
        n for n in nn.__all__
        if inspect.isclass(getattr(nn, n)) and issubclass(getattr(nn, n), nn.Module)
        and not n.endswith("Loss")
    ]
    losses = [n for n in nn.__all__ if n.endswith("Loss")]
    optimizers = [
        n for n in optim.__all__
        if inspect.isclass(getattr(optim, n)) and issubclass(getattr(optim, n), optim.Optimizer)
    ]
    lines = [
        f"- **Tensor methods and properties:** {_names(tensor_methods)}.",
        f"- **`fastdl` functions:** {_names(functions)}.",
        f"- **`nn` layers and containers:** {_names(layers)}.",
        f"- **`nn` losses:** {_names(losses)}.",
        f"- **`nn.functional`:** {_names(F.__all__)}.",
        f"- **`optim`:** {_names(optimizers)}.",
    ]
    scheduler = getattr(optim, "lr_scheduler", None)
    if scheduler is not None:
        names = [
            n for n in getattr(scheduler, "__all__", dir(scheduler))
            if not n.startswith("_") and inspect.isclass(getattr(scheduler, n))
        ]
        lines.append(f"- **`optim.lr_scheduler`:** {_names(names)}.")
    import fastdl.distributed as dist
    import fastdl.utils.data as tud

    lines.append(f"- **`utils.data`:** {_names(tud.__all__)}.")
    lines.append(
        "- **`distributed`** (on MPI through mpi4py, the `[mpi]` extra; CPU tensors): "
        f"{_names(dist.__all__)}; **`nn.parallel`:** {_names(nn.parallel.__all__)}."
    )
    if hasattr(fastdl, "autograd"):
        names = [n for n in ("grad", "Function", "backward") if hasattr(fastdl.autograd, n)]
        lines.append(f"- **`autograd`:** {_names(names)}.")
    return "\n".join(lines)


def readme_block(text: str) -> str | None:
    match = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    return match.group(1).rstrip("\n") if match else None


def write(path: Path) -> None:
    text = path.read_text()
    if readme_block(text) is None:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} block")
    new = re.sub(
        re.escape(BEGIN) + r"\n.*?" + re.escape(END),
        lambda _: f"{BEGIN}\n{listing()}\n{END}",
        text,
        flags=re.S,
    )
    path.write_text(new)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        write(Path(sys.argv[2]))
    else:
        print(listing())
