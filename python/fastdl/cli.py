"""The `fastdl` command: `fastdl demo` (and `fastdl demo tabular|autoencoder`), `fastdl info`,
`fastdl selftest`.

Bad input ends with one line on stderr (`fastdl demo: error: ...`) and exit status 2, never a
traceback; set FASTDL_DEBUG=1 to see the traceback. A selftest mismatch exits with 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

EXIT_MISMATCH, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130  # 1 also for internal errors


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _number(text: str, minimum: float, inclusive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    ok = value >= minimum if inclusive else value > minimum
    if not ok or value == float("inf"):
        bound = ">=" if inclusive else ">"
        raise argparse.ArgumentTypeError(f"must be a finite number {bound} {minimum:g}, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    return _number(text, 0.0, inclusive=True)


def _positive_float(text: str) -> float:
    return _number(text, 0.0, inclusive=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastdl",
        description="fastdl: a fast deep-learning library with PyTorch's API.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{demo,info,selftest}")
    sub.required = True

    demo = sub.add_parser(
        "demo",
        help="train the founding CNN on real digits (or MNIST) and save weights and plots",
        description="Train the founding CNN (conv-pool-conv-pool-fc-fc, Adam) on scikit-learn's "
        "handwritten digits resampled to 28x28, or on MNIST / Fashion-MNIST IDX files. "
        "Other demos: `fastdl demo tabular` and `fastdl demo autoencoder` (their options go "
        "after the name; see `fastdl demo tabular --help`).",
    )
    demo.add_argument(
        "--data",
        choices=("digits", "mnist", "fashion-mnist"),
        default="digits",
        help="dataset (default: digits, which ships with scikit-learn)",
    )
    demo.add_argument(
        "--root", help="folder with the MNIST IDX files (for --data mnist/fashion-mnist)"
    )
    demo.add_argument("--out", default="fastdl-demo", help="output folder (default: ./fastdl-demo)")
    demo.add_argument("--epochs", type=_positive_int, default=10, help="epochs (default: 10)")
    demo.add_argument(
        "--batch-size", type=_positive_int, default=32, help="batch size (default: 32)"
    )
    demo.add_argument(
        "--lr", type=_positive_float, default=1e-3, help="Adam learning rate (default: 1e-3)"
    )
    demo.add_argument(
        "--seed", type=int, default=0, help="seed for weights, splits and batch order"
    )
    demo.add_argument("--threads", type=_positive_int, help="kernel threads (default: all cores)")
    demo.add_argument(
        "--backend",
        choices=("cpu", "reference"),
        default="cpu",
        help="kernels: the C++ cpu backend or the NumPy reference",
    )
    demo.add_argument(
        "--device",
        default="cpu",
        help="where to train: cpu (default) or cuda / cuda:N (a GPU, with fastdl[cuda])",
    )
    demo.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue from a checkpoint.safetensors written by an earlier run",
    )
    demo.add_argument(
        "--weight-decay",
        type=_non_negative_float,
        default=0.0,
        help="L2 penalty (Adam weight_decay)",
    )
    demo.add_argument(
        "--l1",
        type=_non_negative_float,
        default=0.0,
        help="L1 penalty on the weights, added to the loss",
    )
    demo.add_argument(
        "--patience",
        type=_positive_int,
        help="stop after this many epochs without a lower validation loss",
    )
    demo.add_argument(
        "--clip-grad",
        type=_positive_float,
        metavar="MAX_NORM",
        help="clip the gradients' total norm to MAX_NORM",
    )
    demo.add_argument(
        "--grad-norms",
        action="store_true",
        help="print per-layer gradient norms each epoch and flag vanishing/exploding ones",
    )
    demo.add_argument(
        "--saliency", action="store_true", help="write saliency.png for 8 test digits"
    )
    demo.add_argument(
        "--limit", type=_positive_int, help="use at most this many images per split (quick runs)"
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    _demo_subcommands(demo)

    sub.add_parser("info", help="version, build, SIMD level, threads, CUDA and MPI")
    selftest = sub.add_parser("selftest", help="check every kernel against the NumPy reference")
    selftest.add_argument("--seed", type=int, default=0, help="seed for the random inputs")
    return parser


DEMOS = ("tabular", "autoencoder")  # `fastdl demo NAME`; no NAME is the digits CNN


def _demo_subcommands(demo: argparse.ArgumentParser) -> None:
    """`fastdl demo tabular` and `fastdl demo autoencoder`, each with its own options (which
    go after the name) and defaults; `fastdl demo` alone stays the digits CNN."""
    # argparse's sub-command plumbing, as _parser's for the top-level commands.
    sub = demo.add_subparsers(dest="demo_name", metavar="{tabular,autoencoder}")
    sub.required = False
    tabular = sub.add_parser(
        "tabular",
        help="Palmer penguins: species (cross-entropy) and body mass (MSE) from one MLP",
        description="An MLP with two heads on the Palmer penguins (palmerpenguins package): "
        "species with cross-entropy, body mass with MSE; imputation, one-hot encoding and "
        "standardisation fitted on the training split only.",
    )
    autoencoder = sub.add_parser(
        "autoencoder",
        help="an MLP autoencoder with a 2-D code on the digits, labels unused (MSE)",
        description="An MLP autoencoder (784-256-64-2-64-256-784) on scikit-learn's digits "
        "at 28x28, trained on MSE reconstruction without the labels; plots reconstructions "
        "and the 2-D code coloured by label.",
    )
    for parser, out, epochs, batch, lr in (
        (tabular, "fastdl-demo-tabular", 60, 32, 3e-3),
        (autoencoder, "fastdl-demo-autoencoder", 30, 64, 1e-3),
    ):
        parser.add_argument("--out", default=out, help=f"output folder (default: ./{out})")
        parser.add_argument(
            "--epochs", type=_positive_int, default=epochs, help=f"epochs (default: {epochs})"
        )
        parser.add_argument(
            "--batch-size", type=_positive_int, default=batch, help=f"batch size (default: {batch})"
        )
        parser.add_argument(
            "--lr", type=_positive_float, default=lr, help=f"Adam learning rate (default: {lr:g})"
        )
        parser.add_argument(
            "--seed", type=int, default=0, help="seed for weights, splits and batch order"
        )
        parser.add_argument(
            "--threads", type=_positive_int, help="kernel threads (default: all cores)"
        )
        parser.add_argument(
            "--limit", type=_positive_int, help="use at most this many rows per split (quick runs)"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    tabular.add_argument("--hidden", type=_positive_int, default=64, help="hidden width (64)")
    tabular.add_argument(
        "--dropout", type=_non_negative_float, default=0.1, help="dropout after layer 1 (0.1)"
    )
    autoencoder.add_argument(
        "--code", type=_positive_int, default=2, help="numbers in the code (default: 2, plotted)"
    )


def _check_demo_order(parser: argparse.ArgumentParser, args: argparse.Namespace,
                      argv: Sequence[str]) -> None:
    """`fastdl demo --epochs 3 tabular` would let tabular's defaults silently replace the
    options given before its name: refuse it, saying where they go."""
    name = getattr(args, "demo_name", None)
    if args.command != "demo" or not name or name not in argv:
        return
    before = list(argv)[list(argv).index("demo") + 1 : list(argv).index(name)]
    if before:
        parser.error(
            f"options of `fastdl demo {name}` go after its name: "
            f"fastdl demo {name} {' '.join(before)}"
        )


def _demo_extra(args: argparse.Namespace) -> int:
    common = dict(
        out=args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        seed=args.seed, threads=args.threads, limit=args.limit, progress=not args.no_progress,
    )
    if args.demo_name == "tabular":
        from .demos.tabular import TabularConfig, run

        cfg = TabularConfig(**common, hidden=args.hidden, dropout=args.dropout)
    else:
        from .demos.autoencoder import AutoencoderConfig, run

        cfg = AutoencoderConfig(**common, code=args.code)
    run(cfg, log=lambda line: print(line, flush=True))
    return 0


def _fail(command: str, message: str, status: int = EXIT_BAD_INPUT) -> int:
    line = " ".join(str(message).split()) or "unknown error"
    print(f"fastdl {command}: error: {line}", file=sys.stderr)
    return status


def _demo(args: argparse.Namespace) -> int:
    if getattr(args, "demo_name", None):
        return _demo_extra(args)
    from .demo import DemoConfig, run

    cfg = DemoConfig(
        data=args.data,
        root=args.root,
        out=args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
        backend=args.backend,
        device=args.device,
        resume=args.resume,
        weight_decay=args.weight_decay,
        l1=args.l1,
        patience=args.patience,
        clip_grad=args.clip_grad,
        grad_norms=args.grad_norms,
        saliency=args.saliency,
        limit=args.limit,
        progress=not args.no_progress,
    )
    run(cfg, log=lambda line: print(line, flush=True))
    return 0


def _info() -> int:
    import fastdl

    fastdl.show_config()
    return 0


def _selftest(args: argparse.Namespace) -> int:
    from .selftest import run

    return 0 if run(seed=args.seed) else EXIT_MISMATCH


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the `fastdl` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    args = parser.parse_args(argv)
    _check_demo_order(parser, args, argv)
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "info":
            return _info()
        return _selftest(args)
    except KeyboardInterrupt:
        print(
            f"fastdl {args.command}: interrupted (checkpoints already written are intact)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - one line for the user; FASTDL_DEBUG=1 shows more
        if os.environ.get("FASTDL_DEBUG"):
            raise
        from .demo import DemoError

        known = (DemoError, OSError, ValueError, ImportError, RuntimeError)
        if isinstance(e, known):
            return _end_job(_fail(args.command, str(e)))
        return _end_job(_fail(
            args.command,
            f"internal error ({type(e).__name__}: {e}); rerun with FASTDL_DEBUG=1 for details",
            EXIT_MISMATCH,
        ))


def _end_job(status: int) -> int:
    """In a distributed run (`mpiexec -n N fastdl demo`), one rank's error ends every rank,
    which would otherwise wait in their next collective."""
    dist = sys.modules.get("fastdl.distributed")
    if dist is not None and dist.is_initialized() and dist.get_world_size() > 1:
        dist.abort_job(status)
    return status


if __name__ == "__main__":
    sys.exit(main())
