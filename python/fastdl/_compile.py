"""fastdl.compile: a model's forward recorded once per input signature, then replayed as a plan
of prebound kernel calls, with its backward (and, through `step`, the loss and the optimizer).

    compiled = fastdl.compile(model)                       # like torch.compile(model)
    out = compiled(x)                                      # a plan; loss.backward() works
    compiled = fastdl.compile(model, optimizer=opt, loss_fn=nn.CrossEntropyLoss())
    loss = compiled.step(x, y)    # zero_grad, forward, loss, backward, opt.step() in one call

Recording. The first call with a signature (input shape, dtype and device, train/eval mode, grad
mode) runs the model eagerly, exactly as uncompiled, with forward hooks on its leaf modules.
When the recorded calls form a chain (each leaf takes the previous one's output, the first takes
the input, the last gives the output) the plan is built from them; later calls with that
signature replay it. A new signature records a new plan.

The plan. One node per leaf module (or per fused group), each a few backend kernel calls on the
storage arrays: no Tensor, no autograd node per op. Fusions:
- conv2d + ReLU + 2x2 max pool: one backend call each way (`conv2d_relu_maxpool2x2_*`): bias,
  ReLU and pooling in one pass after the convolution, whose argmax (a one-byte code per window)
  also masks the ReLU in backward; with one input channel the conv output and its gradient
  never reach memory;
- conv2d + bias + ReLU and linear + bias + ReLU: bias and ReLU in one pass after the conv or
  GEMM kernel;
- ReLU + 2x2 max pool, and in `step` softmax cross-entropy feeding the last linear layer's
  backward directly.
Buffers of the fused ops (pooled outputs, argmax indices or codes, their input gradients) are
allocated once per plan and rewritten every step; the conv and GEMM kernels still return fresh
arrays (their bindings take no output buffer).

Fallbacks (each warns once, naming what): a leaf module the plan has no node for runs eagerly
inside the plan, with autograd for its backward; a forward that is not a chain of leaf modules
(tensor operations between modules, several inputs or outputs), a device other than the CPU
backend, or a dtype other than float32 runs the whole model eagerly. Eager mode is untouched.

NOTE: a plan reads its modules' parameters and settings at every call, but keeps the modules it
recorded: replacing a submodule (model.fc1 = nn.Linear(...)) needs a new fastdl.compile, where
torch.compile would guard and recompile.

Numbers: the nodes call the kernels eager mode calls, so results match eager to float32
rounding (tests/test_compile.py: the founding CNN, an MLP and a model with BatchNorm2d,
Dropout and AdaptiveAvgPool2d, over Adam steps). Dropout draws from the same generator as eager.
"""

from __future__ import annotations

import math
import warnings

from . import _devices, nn
from ._random import generator
from ._tensor import Tensor
from .autograd.function import Op
from .autograd.grad_mode import enable_grad, is_grad_enabled, no_grad

__all__ = ["CompiledModule", "compile"]


def compile(
    model=None,
    *,
    optimizer=None,
    loss_fn=None,
    fullgraph: bool = False,
    dynamic=None,
    backend: str = "fastdl",
    mode=None,
    options=None,
    disable: bool = False,
):
    """torch.compile's signature, for fastdl's plans (see the module docstring).

    optimizer and loss_fn (fastdl's own): what `CompiledModule.step(input, target)` runs.
    fullgraph=True raises where the model would fall back to eager. dynamic, mode and options
    are accepted for torch.compile's callers and change nothing; backend must be "fastdl".
    disable=True returns the model itself. Used as a decorator without a model
    (`@fastdl.compile(optimizer=...)`), it returns the decorator."""
    if backend not in ("fastdl", "inductor"):
        raise ValueError(f"[compile] backend must be 'fastdl', got {backend!r}")
    if model is None:
        return lambda m: compile(
            m, optimizer=optimizer, loss_fn=loss_fn, fullgraph=fullgraph, disable=disable
        )
    if disable:
        return model
    if not isinstance(model, nn.Module):
        raise TypeError(f"[compile] expected an nn.Module, got {type(model).__name__}")
    return CompiledModule(model, optimizer=optimizer, loss_fn=loss_fn, fullgraph=fullgraph)


class _Unsupported(Exception):
    """Why a recorded forward cannot become a plan (the whole model then runs eagerly)."""


def _warn(what: str) -> None:
    warnings.warn(f"fastdl.compile: {what}", UserWarning, stacklevel=3)


class CompiledModule:
    """A model and its plans, one per input signature (see the module docstring). Attributes
    not its own are the model's (`compiled.fc1`, `compiled.train()`, `compiled.state_dict()`);
    `compiled._orig_mod` is the model, as in torch.compile."""

    def __init__(self, model, optimizer=None, loss_fn=None, fullgraph=False):
        self._orig_mod = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.fullgraph = fullgraph
        self._plans: dict = {}  # signature -> _Plan, or None where the model runs eagerly

    def __getattr__(self, name):
        return getattr(self.__dict__["_orig_mod"], name)

    def __repr__(self) -> str:
        return f"CompiledModule({self._orig_mod!r})"

    def train(self, mode: bool = True):
        self._orig_mod.train(mode)
        return self

    def eval(self):
        return self.train(False)

    # ------------------------------------------------------------------ calls

    def _signature(self, x, grad: bool) -> tuple:
        return (tuple(x.shape), str(x.dtype), str(x.device), self._orig_mod.training, grad)

    def _lookup(self, x, grad):
        """The plan for x's signature: a _Plan, None (run eagerly), or "record"."""
        key = self._signature(x, grad)
        return key, self._plans.get(key, "record")

    def __call__(self, *args, **kwargs):
        if len(args) != 1 or kwargs or not isinstance(args[0], Tensor):
            return self._eager_forever("a call with other than one tensor argument", args, kwargs)
        x = args[0]
        grad = is_grad_enabled() and any(p.requires_grad for p in self._orig_mod.parameters())
        key, plan = self._lookup(x, grad)
        if plan == "record":
            out, self._plans[key] = self._record(x)
            return out
        if plan is None:
            return self._orig_mod(x)
        if not grad:
            return Tensor._make(plan.output(plan.infer(x._data)))
        return _PlanOp.apply(x, *plan.params, plan=plan)

    def _eager_forever(self, why, args, kwargs):
        if self.fullgraph:
            raise RuntimeError(f"[compile] fullgraph=True: {why}")
        if "_warned_call" not in self.__dict__:
            self._warned_call = True
            _warn(f"{why}: the model runs eagerly")
        return self._orig_mod(*args, **kwargs)

    def _record(self, x):
        """Runs the model eagerly on x with hooks on its leaf modules; returns the output and
        the plan built from the recording (None when it runs eagerly)."""
        model = self._orig_mod
        calls: list = []
        handles = []

        def hook(module, inputs, output):
            calls.append((module, inputs, output))

        for module in model.modules():
            if not any(True for _ in module.children()):
                handles.append(module.register_forward_hook(hook))
        try:
            out = model(x)
        finally:
            for h in handles:
                h.remove()
        try:
            plan = _Plan.build(model, x, calls, out)
        except _Unsupported as e:
            if self.fullgraph:
                raise RuntimeError(f"[compile] fullgraph=True: {e}") from None
            _warn(f"{e}: the model runs eagerly for input shape {tuple(x.shape)}")
            plan = None
        if plan is not None and self.fullgraph and plan.eager_parts:
            raise RuntimeError(f"[compile] fullgraph=True: {plan.eager_parts} run eagerly")
        return out, plan

    # ------------------------------------------------------------------ training step

    def step(self, input, target):
        """One training step: the gradients of loss_fn(model(input), target) replace the
        parameters' .grad (as optimizer.zero_grad() then loss.backward() would give), then
        optimizer.step() runs. Returns the loss (a 0-d tensor, no graph)."""
        if self.optimizer is None or self.loss_fn is None:
            raise RuntimeError(
                "[compile] step() needs the optimizer and loss_fn: "
                "fastdl.compile(model, optimizer=..., loss_fn=...)"
            )
        if not isinstance(input, Tensor) or not isinstance(target, Tensor):
            raise TypeError(
                f"[compile] step() takes an input and a target tensor, got "
                f"{type(input).__name__} and {type(target).__name__}"
            )
        key, plan = self._lookup(input, is_grad_enabled())
        if plan is None or plan == "record" or not is_grad_enabled():
            self.optimizer.zero_grad()
            if plan == "record":
                out, self._plans[key] = self._record(input)
            else:
                out = self._orig_mod(input)
            loss = self.loss_fn(out, target)
            loss.backward()
            self.optimizer.step()
            return loss.detach()
        loss = plan.train_step(input._data, target, self.loss_fn)
        self.optimizer.step()
        return loss


class _PlanOp(Op):
    """The whole plan as one autograd node: inputs (x, *params), the plan's backward."""

    def forward(self, x, *params, plan):
        self.plan = plan
        out = plan.output(plan.forward(x))
        self.run = plan.runs
        return out

    def backward(self, g):
        if self.plan.runs != self.run:
            raise RuntimeError(
                "[compile] the compiled model ran forward again before this output's backward: "
                "a plan keeps one forward's saved arrays (call backward first, or compile a "
                "second copy of the model)"
            )
        dx, grads = self.plan.backward(_devices.library(g).contiguous(g), self.needs_input_grad[0])
        return (dx, *grads)


# ---------------------------------------------------------------------- the plan


class _Plan:
    """The nodes of one recorded forward, in order, and the parameters they read."""

    def __init__(self, nodes, params):
        self.nodes = nodes
        self.params = params  # Parameters in the order backward returns their gradients
        self.fwd = [n.forward for n in nodes]
        self.inf = [n.infer for n in nodes]
        self.bwd = [n.backward for n in reversed(nodes)]
        self.eager_parts = [type(n.module).__name__ for n in nodes if isinstance(n, _Eager)]
        self.grads = [None] * len(params)
        self.grad_tensors = [None] * len(params)  # the .grad tensors step() keeps rebinding
        self.runs = 0  # forwards so far: a backward must follow its own forward
        self.pooled = [n for n in nodes if isinstance(n, _ReluPool) or getattr(n, "pool", False)]

    def output(self, out):
        """The plan's output for the caller: a copy when it is (a view of) a reused buffer,
        which the next run would overwrite."""
        shares = _devices.NUMPY.may_share_memory
        if any(shares(out, n.y_buf) for n in self.pooled):
            return _devices.CPU_XP.asarray(out, copy=True)
        return out

    @classmethod
    def build(cls, model, x, calls, out) -> "_Plan":
        if _devices.library(x._data) is not _devices.NUMPY or _devices.kernels(x._data).name != "cpu":
            raise _Unsupported("the input is not on the CPU backend")
        if str(x.dtype) != "fastdl.float32":
            raise _Unsupported(f"the input is {x.dtype}, not float32")
        names = {id(m): name for name, m in model.named_modules()}
        prev = x
        for module, inputs, output in calls:
            if len(inputs) != 1 or inputs[0] is not prev or not isinstance(output, Tensor):
                raise _Unsupported(
                    f"the forward is not a chain of modules ({type(module).__name__} "
                    f"'{names.get(id(module), '?')}' does not take the previous module's output "
                    "alone: a tensor operation between modules?)"
                )
            prev = output
        if not calls or out is not prev:
            raise _Unsupported("the forward's output is not the last module's output")
        nodes = _fuse(calls, names)
        params: list = []
        nodes[0].first = True  # its dx is wanted only through autograd (need_dx)
        for n in nodes:
            for p in n.params:
                n.slots.append(len(params))
                params.append(p)
        return cls(nodes, params)

    # The three runs of the plan. Each node's forward saves what its backward needs on itself.

    def infer(self, x):
        for f in self.inf:
            x = f(x)
        return x

    def forward(self, x):
        self.runs += 1
        for f in self.fwd:
            x = f(x)
        return x

    def backward(self, dy, need_dx=False):
        """dy -> (dx or None, the parameters' gradients in self.params order)."""
        grads = self.grads
        self.nodes[0].need_dx = need_dx
        for b in self.bwd:
            dy = b(dy, grads)
        return (dy if need_dx else None), grads

    def train_step(self, x, target, loss_fn):
        """Forward, loss, backward; the gradients become the parameters' .grad."""
        logits = self.forward(x)
        tdata = target._data
        ce = _fast_cross_entropy(loss_fn, logits, tdata)
        if ce is not None:
            be = _devices.kernels(logits)
            loss, log_probs = be.cross_entropy_forward(
                logits, tdata, None, loss_fn.reduction, loss_fn.ignore_index
            )
            dlogits = be.cross_entropy_backward(
                _devices.CPU_XP.ones((), dtype=logits.dtype), log_probs, tdata, None,
                loss_fn.reduction, loss_fn.ignore_index,
            )
        else:  # any other loss: eagerly, for its value and the gradient of its input
            with enable_grad():
                lt = Tensor._make(logits).requires_grad_()
                loss_t = loss_fn(lt, target)
                loss_t.backward()
            loss, dlogits = loss_t._data, lt.grad._data
        self.nodes[0].need_dx = False
        grads = self.grads
        for b in self.bwd:
            dlogits = b(dlogits, grads)
        for i, p in enumerate(self.params):
            g = self.grad_tensors[i]
            if g is None or p.grad is not g:
                g = self.grad_tensors[i] = p.grad = Tensor._make(grads[i])
            else:
                g._data = grads[i]
        return Tensor._make(loss)


def _fast_cross_entropy(loss_fn, logits, tdata):
    """Whether loss_fn is a CrossEntropyLoss the fused kernels compute as eager does."""
    if type(loss_fn) is not nn.CrossEntropyLoss or loss_fn.weight is not None:
        return None
    if getattr(loss_fn, "label_smoothing", 0.0) or loss_fn.reduction not in ("mean", "sum"):
        return None
    if logits.ndim != 2 or tdata.ndim != 1 or tdata.dtype.kind != "i":
        return None
    return True


# ---------------------------------------------------------------------- nodes


class _Node:
    """One step of a plan: forward(x) saves what backward(dy, grads) needs; backward writes its
    parameters' gradients into grads[slot] and returns dx (None for the first node unless
    need_dx). infer(x) is forward without saving."""

    params: tuple = ()
    first = False
    need_dx = True

    def __init__(self, module):
        self.module = module
        self.slots: list = []
        self.params = tuple(p for p in module.parameters(recurse=False) if p.requires_grad)

    def infer(self, x):
        return self.forward(x)

    def wants_dx(self):
        return not self.first or self.need_dx


def _is_relu(m):
    return type(m) is nn.ReLU


def _is_pool2x2(m):
    return (
        type(m) is nn.MaxPool2d and m.kernel_size in (2, (2, 2)) and m.stride in (2, (2, 2))
        and m.padding in (0, (0, 0)) and not m.return_indices
    )


def _fuse(calls, names) -> list:
    """The nodes of the recorded calls, with the fusable neighbours grouped."""
    mods = [c[0] for c in calls]
    shapes = [tuple(c[1][0].shape) for c in calls]
    nodes, i = [], 0
    while i < len(mods):
        m, nxt = mods[i], mods[i + 1 : i + 3]
        relu = bool(nxt) and _is_relu(nxt[0])
        pool = relu and len(nxt) == 2 and _is_pool2x2(nxt[1]) and len(shapes[i]) == 4
        if type(m) is nn.Conv2d and _Conv.supports(m):
            nodes.append(_Conv(m, relu, pool))
            i += 1 + relu + pool
        elif type(m) is nn.Linear and len(shapes[i]) == 2:
            nodes.append(_Linear(m, relu))
            i += 1 + relu
        elif _is_relu(m) and nxt and _is_pool2x2(nxt[0]) and len(shapes[i]) == 4:
            nodes.append(_ReluPool(m))
            i += 2
        else:
            node = _single(m, shapes[i])
            if node is None:
                _warn(
                    f"{type(m).__name__} '{names.get(id(m), '?')}' has no compiled node: "
                    "it runs eagerly inside the plan"
                )
                node = _Eager(m)
            nodes.append(node)
            i += 1
    return nodes


def _single(m, shape):
    t = type(m)
    if t is nn.ReLU:
        return _Relu(m)
    if t is nn.MaxPool2d and not m.return_indices and len(shape) == 4:
        return _MaxPool(m)
    if t is nn.Flatten:
        return _Flatten(m)
    if t is nn.Identity:
        return _Identity(m)
    if t is nn.Dropout and not m.inplace:
        return _Dropout(m)
    if t is nn.BatchNorm2d and _BatchNorm.supports(m) and len(shape) == 4:
        return _BatchNorm(m)
    if t is nn.AdaptiveAvgPool2d and len(shape) == 4 and _AvgPool.sizes(m, shape):
        return _AvgPool(m, shape)
    return None


class _Conv(_Node):
    """conv2d (groups 1, dilation 1), alone or with the ReLU (and the 2x2 max pool) after it."""

    @staticmethod
    def supports(m):
        return (
            m.groups == 1 and tuple(m.dilation) == (1, 1) and m.padding_mode == "zeros"
            and isinstance(m.padding, tuple)
        )

    def __init__(self, m, relu, pool):
        super().__init__(m)
        self.relu, self.pool = relu, pool
        self.be = None
        self.y_buf = self.c_buf = None  # the pooled output and its argmax codes, once per plan

    def _conv(self, x, need_codes=True):
        m = self.module
        be = self.be = self.be or _devices.kernels(x)
        b = None if m.bias is None else m.bias._data
        if self.pool:  # the conv block: conv, bias, ReLU and pool in one kernel call
            y, codes = be.conv2d_relu_maxpool2x2_forward(
                x, m.weight._data, b, m.stride, m.padding, self.y_buf,
                self.c_buf if need_codes else None, need_codes=need_codes,
            )
            self.y_buf = y
            if need_codes:
                self.c_buf = codes
            return y
        if self.relu and b is not None:
            y = be.conv2d_forward(x, m.weight._data, None, m.stride, m.padding)
            be.bias_relu_(y, b)  # bias + ReLU in one pass after the conv kernel
            return y
        y = be.conv2d_forward(x, m.weight._data, b, m.stride, m.padding)
        return be.relu_forward(y) if self.relu else y

    def infer(self, x):
        return self._conv(x, need_codes=False)  # inference: no argmax to keep

    def forward(self, x):
        self.x = x
        self.y = y = self._conv(x)
        return y

    def backward(self, dy, grads):
        be, m = self.be, self.module
        need_w = m.weight.requires_grad
        need_b = m.bias is not None and m.bias.requires_grad
        if self.pool:
            dx, dw, db = be.conv2d_relu_maxpool2x2_backward(
                dy, self.c_buf, self.y, self.x, m.weight._data, m.stride, m.padding,
                self.wants_dx(), need_w, need_b,
            )
        else:
            dz = be.relu_backward(dy, self.y) if self.relu else dy
            dx, dw, db = be.conv2d_backward(
                dz, self.x, m.weight._data, m.stride, m.padding, self.wants_dx(), need_w, need_b
            )
        slots = iter(self.slots)
        if need_w:
            grads[next(slots)] = dw
        if need_b:
            grads[next(slots)] = db
        return dx


class _Linear(_Node):
    """x (N, in) @ w.T, then + b, or bias + ReLU in one pass."""

    def __init__(self, m, relu):
        super().__init__(m)
        self.relu = relu
        self.be = None

    def infer(self, x):
        m = self.module
        be = self.be = self.be or _devices.kernels(x)
        y = be.matmul(x, m.weight._data, trans_b=True)
        if m.bias is not None:
            if self.relu:
                be.bias_relu_(y, m.bias._data)
                return y
            y += m.bias._data
        if self.relu:
            y = be.relu_forward(y)
        return y

    def forward(self, x):
        self.x = x
        self.y = y = self.infer(x)
        return y

    def backward(self, dy, grads):
        be, m = self.be, self.module
        dz = be.relu_backward(dy, self.y) if self.relu else dy
        slots = iter(self.slots)
        if m.weight.requires_grad:
            grads[next(slots)] = be.matmul(dz, self.x, trans_a=True)
        if m.bias is not None and m.bias.requires_grad:
            grads[next(slots)] = _devices.CPU_XP.sum(dz, axis=0)
        return be.matmul(dz, m.weight._data) if self.wants_dx() else None


class _Relu(_Node):
    def forward(self, x):
        self.be = be = _devices.kernels(x)
        self.y = be.relu_forward(x)
        return self.y

    def backward(self, dy, grads):
        return self.be.relu_backward(dy, self.y)


class _ReluPool(_Node):
    """ReLU then 2x2 stride-2 max pool in one pass (after a module other than conv2d)."""

    y_buf = i_buf = dx_buf = None

    def infer(self, x):
        be = _devices.kernels(x)
        self.y_buf = be.relu_maxpool2x2_forward(x, self.y_buf, need_indices=False)[0]
        return self.y_buf

    def forward(self, x):
        self.be = be = _devices.kernels(x)
        self.shape = x.shape
        self.y_buf, self.i_buf = be.relu_maxpool2x2_forward(x, self.y_buf, self.i_buf)
        return self.y_buf

    def backward(self, dy, grads):
        if self.dx_buf is None:
            self.dx_buf = _devices.CPU_XP.empty(self.shape, dtype=dy.dtype)
        return self.be.relu_maxpool2x2_backward(
            dy, self.i_buf, self.y_buf, self.shape, self.dx_buf
        )


class _MaxPool(_Node):
    def __init__(self, m):
        super().__init__(m)
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        self.args = (pair(m.kernel_size), pair(m.stride), pair(m.padding))

    def forward(self, x):
        self.be = be = _devices.kernels(x)
        self.shape = x.shape
        y, self.idx = be.maxpool2d_forward(x, *self.args)
        return y

    def backward(self, dy, grads):
        return self.be.maxpool2d_backward(dy, self.idx, self.shape)


class _Flatten(_Node):
    def forward(self, x):
        self.shape = x.shape
        nd = x.ndim
        s, e = self.module.start_dim % nd, self.module.end_dim % nd
        return x.reshape(x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :])

    def backward(self, dy, grads):
        return dy.reshape(self.shape)


class _Identity(_Node):
    def forward(self, x):
        return x

    def backward(self, dy, grads):
        return dy


class _Dropout(_Node):
    """Eager's draws (the same generator, the same call) and scaling; the identity in eval."""

    def infer(self, x):
        return x if not self.module.training or self.module.p == 0.0 else self.forward(x)

    def forward(self, x):
        p = self.module.p
        if not self.module.training or p == 0.0:
            self.scale = None
            return x
        keep = generator().random(x.shape) >= p
        if p < 1:
            self.scale = (keep / (1 - p)).astype(x.dtype)
        else:
            self.scale = _devices.CPU_XP.zeros(x.shape, dtype=x.dtype)
        return x * self.scale

    def backward(self, dy, grads):
        return dy if self.scale is None else dy * self.scale


class _BatchNorm(_Node):
    """BatchNorm2d with weight, bias and running statistics: the norm kernels in training
    (running statistics updated as eager does), the running statistics in eval."""

    @staticmethod
    def supports(m):
        return (
            m.affine and m.weight is not None and m.bias is not None
            and m.track_running_stats and m.running_mean is not None
        )

    def forward(self, x):
        m = self.module
        n, c, h, w = x.shape
        be = self.be = _devices.kernels(x)
        self.shape = x.shape
        w_, b_ = m.weight._data.reshape(1, c, 1, 1), m.bias._data.reshape(1, c, 1, 1)
        if not m.training:
            self.invstd = 1 / _devices.CPU_XP.sqrt(m.running_var._data + m.eps)
            self.xhat = (x - m.running_mean._data.reshape(1, c, 1, 1)) * self.invstd.reshape(
                1, c, 1, 1
            )
            return self.xhat * w_ + b_
        x3 = x.reshape(n, c, h * w)
        y3, mean, var, rstd = be.norm_forward(x3, float(m.eps))
        self.x3, self.mean, self.rstd = x3, mean, rstd
        self.xhat = y3.reshape(x.shape)
        m.num_batches_tracked._data += 1
        factor = m.momentum
        if factor is None:
            factor = 1.0 / float(m.num_batches_tracked._data)
        count = n * h * w
        rm, rv = m.running_mean._data, m.running_var._data
        rm *= 1 - factor
        rm += mean * factor
        rv *= 1 - factor
        rv += var * (count / (count - 1)) * factor
        return self.xhat * w_ + b_

    def backward(self, dy, grads):
        m = self.module
        c = self.shape[1]
        xp = _devices.CPU_XP
        slots = iter(self.slots)
        if m.weight.requires_grad:
            grads[next(slots)] = xp.sum(dy * self.xhat, axis=(0, 2, 3))
        if m.bias.requires_grad:
            grads[next(slots)] = xp.sum(dy, axis=(0, 2, 3))
        if not self.wants_dx():
            return None
        g = dy * m.weight._data.reshape(1, c, 1, 1)
        if not m.training:
            return g * self.invstd.reshape(1, c, 1, 1)
        g3 = g.reshape(self.x3.shape)
        return self.be.norm_backward(g3, self.x3, self.mean, self.rstd).reshape(self.shape)


class _AvgPool(_Node):
    """AdaptiveAvgPool2d on the backend's pool kernels (eager's, so the same bits)."""

    @staticmethod
    def sizes(m, shape):
        out = m.output_size
        out = (out, out) if isinstance(out, int) else tuple(out)
        h, w = shape[2:]
        out = (h if out[0] is None else out[0], w if out[1] is None else out[1])
        return out if min(out) >= 1 else None

    def __init__(self, m, shape):
        super().__init__(m)
        self.out = self.sizes(m, shape)

    def forward(self, x):
        self.shape = x.shape
        self.be = _devices.kernels(x)
        return self.be.adaptive_avgpool2d_forward(x, self.out)

    def backward(self, dy, grads):
        return self.be.adaptive_avgpool2d_backward(dy, self.shape)


class _Eager(_Node):
    """A module without a compiled node, run eagerly; autograd gives its backward."""

    def __init__(self, m):
        super().__init__(m)
        self.params = tuple(p for p in m.parameters() if p.requires_grad)

    def infer(self, x):
        with no_grad():
            return self.module(Tensor._make(x))._data

    def forward(self, x):
        self.xt = Tensor._make(x).requires_grad_()
        with enable_grad():
            self.yt = self.module(self.xt)
        return self.yt._data

    def backward(self, dy, grads):
        # Each call's gradients only: the parameters' .grad is put aside meanwhile.
        saved = [p.grad for p in self.params]
        for p in self.params:
            p.grad = None
        self.yt.backward(Tensor._make(dy))
        for slot, p, old in zip(self.slots, self.params, saved):
            grads[slot] = None if p.grad is None else p.grad._data
            p.grad = old
        return None if self.xt.grad is None else self.xt.grad._data
