"""Kernels: the backend functions at the founding CNN's shapes and over size sweeps.

fastdl's cpu backend (fastdl.backends.cpu, called directly on pre-allocated NumPy arrays)
against NumPy/OpenBLAS (GEMM, in a subprocess: numpy_peer), PyTorch's own kernels (aten ops,
no autograd) and the NumPy reference (a few rounds only; it is slow). Every side gets its own
copy of the inputs, so no side runs on caches the other warmed.
"""

from __future__ import annotations

import contextlib

import numpy as np

from . import goals
from .model import PARAMETERS
from .rows import Context, new_row
from .timing import local

SECTION = "kernels"
CNN_PARAM_SHAPES = [
    (32, 1, 3, 3),
    (32,),
    (64, 32, 3, 3),
    (64,),
    (128, 3136),
    (128,),
    (10, 128),
    (10,),
]


def _cpu():
    from fastdl.backends import cpu

    return cpu


def _ref():
    from fastdl.backends import reference

    return reference


def _randn(*shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def _reference_rounds(ctx: Context) -> int:
    # The reference is slow; it joins only the first few rounds.
    return 1 if ctx.quick else 3


def _add_backend_row(ctx: Context, row, backend_call, torch, max_reference_rounds: int = 3):
    """Adds `row` with three sides: fastdl's CPU backend and the reference, each timing what
    backend_call(backend) returns, and `torch` (a function returning torch's call)."""
    rounds = min(max_reference_rounds, _reference_rounds(ctx))
    ctx.add(
        row,
        {
            "fastdl": lambda: backend_call(_cpu()),
            "torch": torch,
            "reference": lambda: local("", backend_call(_ref()), rounds=rounds),
        },
    )


def run(ctx: Context) -> None:
    sgemm(ctx)
    conv2d(ctx)
    conv1_block(ctx)
    maxpool2d(ctx)
    pool(ctx)
    activations(ctx)
    cross_entropy(ctx)
    adam(ctx)
    recurrent(ctx)


# ---------------------------------------------------------------- gemm


def sgemm(ctx: Context) -> None:
    sweep = (64, 256) if ctx.quick else (64, 128, 256, 512, 1024, 2048)
    transposed_at = (128,) if ctx.quick else (256, 1024)
    transposes = [(True, False), (False, True), (True, True)]
    for n in sweep:
        _sgemm_row(ctx, n, False, False)
    for n in transposed_at:
        for trans_a, trans_b in transposes[1:2] if ctx.quick else transposes:
            _sgemm_row(ctx, n, trans_a, trans_b)


def _sgemm_row(ctx: Context, n: int, trans_a: bool, trans_b: bool) -> None:
    op = ("T" if trans_a else "N") + ("T" if trans_b else "N")
    checks = ()
    if n in (64, 128):
        checks = (goals.ratio("G5", 0.8),)
    elif 512 <= n <= 2048:
        checks = (goals.ratio("G4", 0.91), goals.of_peak("G4", 0.8))
    row = new_row(
        SECTION,
        f"sgemm.{op}.{n}",
        f"sgemm {op} n={n}",
        "GFLOP/s",
        peer="numpy",
        work=2.0 * n**3,
        work_kind="flop",
        checks=checks,
        params={"n": n, "op": op},
    )

    def operands():
        a = _randn(n, n, seed=1)  # stored (K, M) when trans_a: square, so the shape is the same
        b = _randn(n, n, seed=2)
        return a, b

    def fastdl():
        cpu, (a, b) = _cpu(), operands()
        return lambda: cpu.matmul(a, b, trans_a, trans_b)

    def torch():
        torch = ctx.need_torch()
        a, b = (torch.from_numpy(m) for m in operands())
        a, b = (a.t() if trans_a else a), (b.t() if trans_b else b)  # views: no copy
        return lambda: torch.mm(a, b)

    def numpy_peer(peer):
        def factory():
            if peer is None:
                raise RuntimeError("the NumPy worker did not start")
            return peer.gemm_side("", n, n, n, trans_a, trans_b)

        return factory

    def reference():
        ref, (a, b) = _ref(), operands()
        return local("", lambda: ref.matmul(a, b, trans_a, trans_b), rounds=_reference_rounds(ctx))

    sides = {"fastdl": fastdl, "numpy": numpy_peer(ctx.numpy), "torch": torch}
    if op == "NN":  # the default environment's OpenBLAS, for reference, on the NN sweep only
        sides["numpy-default"] = numpy_peer(ctx.numpy_default)
    sides["reference"] = reference
    ctx.add(row, sides)
    for peer in (ctx.numpy, ctx.numpy_default):
        if peer is not None:
            with contextlib.suppress(Exception):  # a dead worker already shows in the rows
                peer.free()


# ---------------------------------------------------------------- conv2d

# The CNN's two layers: x (N,C,H,W), w (K,C,R,S); stride 1, padding 1, so P = H and Q = W.
CONV_LAYERS = {
    "conv1": ((64, 1, 28, 28), (32, 1, 3, 3)),
    "conv2": ((64, 32, 14, 14), (64, 32, 3, 3)),
}


def conv2d(ctx: Context) -> None:
    for layer, (x_shape, w_shape) in CONV_LAYERS.items():
        for part in ("forward", "input grad", "weight grad"):
            _conv_row(ctx, layer, x_shape, w_shape, part)


def _conv_row(ctx: Context, layer: str, x_shape, w_shape, part: str) -> None:
    (n, c, h, w), (k, _, r, s) = x_shape, w_shape
    flop = 2.0 * n * k * c * r * s * h * w
    checks = ()
    if layer == "conv2":
        checks = (goals.ratio("G6", 0.8 if part == "weight grad" else 0.5),)
    tag = {"forward": "fwd", "input grad": "dx", "weight grad": "dw"}[part]
    row = new_row(
        SECTION,
        f"conv2d.{layer}.{tag}",
        f"{layer} {part} x{x_shape}",
        "GFLOP/s",
        peer="torch",
        work=flop,
        work_kind="flop",
        checks=checks,
        params={"layer": layer, "part": part},
    )
    need_dx, need_dw = part == "input grad", part == "weight grad"

    def arrays():
        return (
            _randn(*x_shape, seed=1),
            _randn(*w_shape, seed=2),
            _randn(k, seed=3),
            _randn(n, k, h, w, seed=4),
        )

    def backend_call(backend):
        x, wt, b, dy = arrays()
        if part == "forward":
            return lambda: backend.conv2d_forward(x, wt, b, (1, 1), (1, 1))
        return lambda: backend.conv2d_backward(
            dy, x, wt, (1, 1), (1, 1), need_dx=need_dx, need_dw=need_dw, need_db=False
        )

    def torch():
        torch = ctx.need_torch()
        x, wt, b, dy = (torch.from_numpy(a) for a in arrays())
        if part == "forward":
            return lambda: torch.nn.functional.conv2d(x, wt, b, 1, 1)
        backward = torch.ops.aten.convolution_backward
        mask = [need_dx, need_dw, False]
        return lambda: backward(dy, x, wt, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)

    _add_backend_row(ctx, row, backend_call, torch)


def conv1_block(ctx: Context) -> None:
    """G7: conv1 + ReLU + maxpool as the user runs it (nn modules, autograd), so that any fusion
    fastdl does at any layer counts. Forward under no_grad; forward + backward as in training.
    Then the same block through fastdl.compile (one fused kernel call each way), against the
    same eager PyTorch (G7 is met by either path, as G1-G3)."""
    for compiled in (False, True):
        for mode in ("forward", "forward+backward"):
            _conv1_block_row(ctx, mode, compiled)


def _conv1_block_row(ctx: Context, mode: str, compiled: bool) -> None:
    row = new_row(
        SECTION,
        f"conv1_block.{'fwd' if mode == 'forward' else 'fwdbwd'}"
        + (".compiled" if compiled else ""),
        f"conv1+relu+pool {mode} b64 ({'fastdl.compile' if compiled else 'nn'})",
        "ms",
        peer="torch",
        checks=(goals.ratio("G7", 0.3),),
    )

    def factory(library):
        import importlib

        lib = importlib.import_module(library)
        nn = importlib.import_module(f"{library}.nn")
        block = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2))
        params = list(block.parameters())
        run = lib.compile(block) if compiled and library == "fastdl" else block
        x = lib.from_numpy(_randn(64, 1, 28, 28, seed=1))
        dy = lib.from_numpy(_randn(64, 32, 14, 14, seed=2))
        if mode == "forward":

            def forward():
                with lib.no_grad():
                    return run(x)

            return forward

        def forward_backward():
            for p in params:
                p.grad = None
            run(x).backward(dy)

        return forward_backward

    def torch_factory():
        ctx.need_torch()
        return factory("torch")

    ctx.add(row, {"fastdl": lambda: factory("fastdl"), "torch": torch_factory})


# ---------------------------------------------------------------- maxpool2d


def maxpool2d(ctx: Context) -> None:
    shapes = [(64, 32, 28, 28), (64, 64, 14, 14)]
    for x_shape in shapes[:1] if ctx.quick else shapes:
        for part in ("forward", "backward"):
            _maxpool_row(ctx, x_shape, part)


def _maxpool_row(ctx: Context, x_shape, part: str) -> None:
    n, c, h, w = x_shape
    y_shape = (n, c, h // 2, w // 2)
    inputs, outputs = n * c * h * w, n * c * (h // 2) * (w // 2)
    # forward reads x, writes y and int64 indices; backward reads dy and indices, writes dx.
    traffic = 4.0 * inputs + 12.0 * outputs
    checks = (goals.of_copy("G9", 0.8),) if x_shape == (64, 32, 28, 28) else ()
    row = new_row(
        SECTION,
        f"maxpool2d.{'x'.join(map(str, x_shape))}.{'fwd' if part == 'forward' else 'bwd'}",
        f"maxpool 2x2 {part} x{x_shape}",
        "GB/s",
        peer="torch",
        work=traffic,
        work_kind="byte",
        checks=checks,
        params={"shape": x_shape, "part": part},
    )

    def backend_call(backend):
        x, dy = _randn(*x_shape, seed=1), _randn(*y_shape, seed=2)
        if part == "forward":
            return lambda: backend.maxpool2d_forward(x, (2, 2), (2, 2), (0, 0))
        _, indices = backend.maxpool2d_forward(x, (2, 2), (2, 2), (0, 0))
        return lambda: backend.maxpool2d_backward(dy, indices, x_shape)

    def torch():
        torch = ctx.need_torch()
        x, dy = (
            torch.from_numpy(_randn(*x_shape, seed=1)),
            torch.from_numpy(_randn(*y_shape, seed=2)),
        )
        pool = torch.nn.functional.max_pool2d_with_indices
        if part == "forward":
            return lambda: pool(x, 2, 2)
        _, indices = pool(x, 2, 2)
        backward = torch.ops.aten.max_pool2d_with_indices_backward
        return lambda: backward(dy, x, [2, 2], [2, 2], [0, 0], [1, 1], False, indices)

    _add_backend_row(ctx, row, backend_call, torch)


# ---------------------------------------------------------------- pool

# (row id, what, input shape, output shape, backend family name, its forward's options)
POOL_CASES = [
    ("avgpool2d.2", "avg pool 2x2", (64, 32, 28, 28), (64, 32, 14, 14), "avgpool2d",
     ((2, 2), (2, 2), (0, 0), False, True, None)),
    ("avgpool2d.3s2p1", "avg pool 3x3 s2 p1", (64, 32, 28, 28), (64, 32, 14, 14), "avgpool2d",
     ((3, 3), (2, 2), (1, 1), False, True, None)),
    ("adaptive_avgpool2d.5", "adaptive avg pool to 5x5", (64, 32, 14, 14), (64, 32, 5, 5),
     "adaptive_avgpool2d", ((5, 5),)),
    ("adaptive_maxpool2d.5", "adaptive max pool to 5x5", (64, 32, 14, 14), (64, 32, 5, 5),
     "adaptive_maxpool2d", ((5, 5),)),
]


def pool(ctx: Context) -> None:
    for case in POOL_CASES[:1] if ctx.quick else POOL_CASES:
        for part in ("forward", "backward"):
            _pool_row(ctx, *case, part)


def _pool_row(ctx: Context, row_id, what, x_shape, y_shape, name, options, part) -> None:
    inputs, outputs = float(np.prod(x_shape)), float(np.prod(y_shape))
    # Both directions read one side and write the other (the max also writes or reads indices).
    traffic = 4.0 * (inputs + outputs) + (8.0 * outputs if name == "adaptive_maxpool2d" else 0)
    row = new_row(
        SECTION,
        f"{row_id}.{'fwd' if part == 'forward' else 'bwd'}",
        f"{what} {part} x{x_shape}",
        "GB/s",
        peer="torch",
        work=traffic,
        work_kind="byte",
        params={"shape": x_shape, "part": part},
    )

    def backend_call(backend):
        x, dy = _randn(*x_shape, seed=1), _randn(*y_shape, seed=2)
        forward = getattr(backend, f"{name}_forward")
        if part == "forward":
            return lambda: forward(x, *options)
        if name == "adaptive_maxpool2d":
            _, indices = forward(x, *options)
            return lambda: backend.maxpool2d_backward(dy, indices, x_shape)
        if name == "adaptive_avgpool2d":
            return lambda: backend.adaptive_avgpool2d_backward(dy, x_shape)
        return lambda: backend.avgpool2d_backward(dy, x_shape, *options)

    def torch():
        torch = ctx.need_torch()
        x = torch.from_numpy(_randn(*x_shape, seed=1))
        dy = torch.from_numpy(_randn(*y_shape, seed=2))
        aten, F = torch.ops.aten, torch.nn.functional
        if name == "avgpool2d":
            args = [list(o) if isinstance(o, tuple) else o for o in options]
            if part == "forward":
                return lambda: F.avg_pool2d(x, *args)
            return lambda: aten.avg_pool2d_backward(dy, x, *args)
        if name == "adaptive_avgpool2d":
            if part == "forward":
                return lambda: F.adaptive_avg_pool2d(x, options[0])
            return lambda: aten._adaptive_avg_pool2d_backward(dy, x)
        if part == "forward":
            return lambda: F.adaptive_max_pool2d(x, options[0], return_indices=True)
        _, indices = F.adaptive_max_pool2d(x, options[0], return_indices=True)
        return lambda: aten.adaptive_max_pool2d_backward(dy, x, indices)

    _add_backend_row(ctx, row, backend_call, torch)


# ---------------------------------------------------------------- activations

ACTIVATION_SHAPE = (64, 32, 28, 28)  # 1,605,632 floats: conv1's output at batch 64


def activations(ctx: Context) -> None:
    count = int(np.prod(ACTIVATION_SHAPE))
    for name in ("relu", "sigmoid", "tanh"):
        row = new_row(
            SECTION,
            f"activation.{name}",
            f"{name} forward {count / 1e6:.1f}M floats",
            "GB/s",
            peer="torch",
            work=8.0 * count,
            work_kind="byte",
            checks=(goals.of_copy("G9", 0.8),),
            params={"op": name},
        )

        def backend_call(backend, name=name):
            x = _randn(*ACTIVATION_SHAPE, seed=1)
            fn = getattr(backend, f"{name}_forward")
            return lambda: fn(x)

        def torch(name=name):
            torch = ctx.need_torch()
            x, fn = torch.from_numpy(_randn(*ACTIVATION_SHAPE, seed=1)), getattr(torch, name)
            return lambda: fn(x)

        _add_backend_row(ctx, row, backend_call, torch)


# ---------------------------------------------------------------- cross-entropy


def cross_entropy(ctx: Context) -> None:
    for n, c in ((64, 10), (4096, 1000)):
        # forward reads logits, writes log-probs; backward reads log-probs, writes dlogits.
        traffic = 16.0 * n * c + 8.0 * n
        unit = "us" if n * c < 100_000 else "GB/s"
        row = new_row(
            SECTION,
            f"cross_entropy.{n}x{c}",
            f"softmax CE fwd+bwd ({n},{c})",
            unit,
            peer="torch",
            work=traffic,
            work_kind="byte",
            params={"n": n, "c": c},
        )

        def arrays(n=n, c=c):
            return _randn(n, c, seed=1), np.random.default_rng(2).integers(0, c, n, dtype=np.int64)

        def backend_call(backend, arrays=arrays):
            logits, target = arrays()
            one = np.array(1.0, dtype=np.float32)

            def step():
                _, log_probs = backend.cross_entropy_forward(logits, target)
                return backend.cross_entropy_backward(one, log_probs, target)

            return step

        def torch(arrays=arrays):
            torch = ctx.need_torch()
            logits, target = (torch.from_numpy(a) for a in arrays())
            aten, one = torch.ops.aten, torch.tensor(1.0)

            def step():  # the four kernels autograd runs for F.cross_entropy
                log_probs = aten._log_softmax(logits, 1, False)
                _, total = aten.nll_loss_forward(log_probs, target, None, 1, -100)
                dlp = aten.nll_loss_backward(one, log_probs, target, None, 1, -100, total)
                return aten._log_softmax_backward_data(dlp, log_probs, 1, torch.float32)

            return step

        _add_backend_row(ctx, row, backend_call, torch)


# ---------------------------------------------------------------- adam

ADAM = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def _adam_state(shapes, seed: int):
    # params, grads, exp_avgs, exp_avg_sqs: lists of float32 arrays of `shapes`.
    params = [_randn(*s, seed=seed + i) for i, s in enumerate(shapes)]
    grads = [_randn(*s, seed=seed + 100 + i) * 1e-2 for i, s in enumerate(shapes)]
    return (
        params,
        grads,
        [np.zeros(s, np.float32) for s in shapes],
        [np.zeros(s, np.float32) for s in shapes],
    )


def adam(ctx: Context) -> None:
    big = 4 * 2**20 if ctx.quick else 64 * 2**20
    _adam_kernel_row(ctx, "cnn", CNN_PARAM_SHAPES)
    _adam_optimizer_row(ctx)
    _adam_kernel_row(ctx, f"{big // 2**20}M", [(big,)])


def _adam_kernel_row(ctx: Context, tag: str, shapes) -> None:
    count = sum(int(np.prod(s)) for s in shapes)
    what = "CNN params" if tag == "cnn" else f"{count / 2**20:.0f}M params"
    row = new_row(
        SECTION,
        f"adam.kernel.{tag}",
        f"adam kernel, {what} ({count:,})",
        "GB/s",
        peer="torch",
        work=28.0 * count,
        work_kind="byte",
        params={"count": count},
    )

    def backend_call(backend):
        params, grads, exp_avgs, exp_avg_sqs = _adam_state(shapes, seed=1)
        return lambda: backend.adam_step(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            10,
            ADAM["lr"],
            ADAM["beta1"],
            ADAM["beta2"],
            ADAM["eps"],
        )

    def torch():
        torch = ctx.need_torch()
        state = [[torch.from_numpy(a) for a in group] for group in _adam_state(shapes, seed=1)]
        steps = [torch.tensor(10.0) for _ in shapes]
        return lambda: torch._fused_adam_(
            *state, [], steps, weight_decay=0.0, amsgrad=False, maximize=False, **ADAM
        )

    _add_backend_row(ctx, row, backend_call, torch, max_reference_rounds=2)


def _adam_optimizer_row(ctx: Context) -> None:
    """G8 as the user sees it: optimizer.step() over the CNN's parameters."""
    row = new_row(
        SECTION,
        "adam.step.cnn",
        f"Adam.step(), CNN params ({PARAMETERS:,})",
        "us",
        peer="torch",
        work=28.0 * PARAMETERS,
        work_kind="byte",
        checks=(goals.ratio("G8", 0.5),),
    )

    def factory(library: str, **options):
        import importlib

        lib = importlib.import_module(library)
        nn, optim = (
            importlib.import_module(f"{library}.nn"),
            importlib.import_module(f"{library}.optim"),
        )
        params, grads, _, _ = _adam_state(CNN_PARAM_SHAPES, seed=1)
        weights = [nn.Parameter(lib.from_numpy(p)) for p in params]
        for weight, grad in zip(weights, grads):
            weight.grad = lib.from_numpy(grad)
        optimizer = optim.Adam(weights, lr=ADAM["lr"], **options)
        return optimizer.step

    def torch(**options):
        ctx.need_torch()
        return factory("torch", **options)

    ctx.add(
        row,
        {
            "fastdl": lambda: factory("fastdl"),
            "torch": lambda: torch(fused=True),
            "torch-foreach": lambda: torch(foreach=True),
        },
    )


# ---------------------------------------------------------------- embedding and recurrent layers


def _recurrent_workload(library: str, layer: str):
    """Forward + backward of one layer as the user runs it (nn modules, autograd), with the
    same weights and inputs in fastdl and torch: embedding_backward and the fused cell kernels
    (lstm_cell_*, gru_cell_*) plus the step matmuls they sit between."""
    import importlib

    lib = importlib.import_module(library)
    nn = importlib.import_module(f"{library}.nn")
    lib.manual_seed(0)
    if layer == "embedding":
        module = nn.Embedding(10000, 128)
        x = lib.from_numpy(np.random.default_rng(1).integers(0, 10000, (64, 35)))
    elif layer == "lstmcell":
        module = nn.LSTMCell(64, 128)
        x = lib.from_numpy(_randn(20, 64, seed=1))
    else:
        module = (nn.LSTM if layer == "lstm" else nn.GRU)(64, 128)
        x = lib.from_numpy(_randn(35, 20, 64, seed=1))
    params = list(module.parameters())

    def forward_backward():
        for p in params:
            p.grad = None
        out = module(x)
        out = out[0] if isinstance(out, tuple) else out
        out.sum().backward()

    return forward_backward


def recurrent(ctx: Context) -> None:
    """Embedding(10000, 128) on (64, 35) indices; LSTM and GRU(64, 128) on (35, 20, 64);
    LSTMCell(64, 128) one step on batch 20: forward + backward, fastdl against torch."""
    for layer, what in [
        ("embedding", "Embedding(10000, 128) fwd+bwd, indices (64, 35)"),
        ("lstm", "LSTM(64, 128) fwd+bwd, (35, 20, 64)"),
        ("gru", "GRU(64, 128) fwd+bwd, (35, 20, 64)"),
        ("lstmcell", "LSTMCell(64, 128) fwd+bwd, batch 20"),
    ]:
        row = new_row(SECTION, f"recurrent.{layer}", what, "ms", peer="torch")

        def torch_factory(layer=layer):
            ctx.need_torch()
            return _recurrent_workload("torch", layer)

        ctx.add(
            row,
            {
                "fastdl": lambda layer=layer: _recurrent_workload("fastdl", layer),
                "torch": torch_factory,
            },
        )
