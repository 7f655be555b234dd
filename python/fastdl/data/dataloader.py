"""DataLoader: batches of fastdl Tensors from a Dataset, shuffled by an explicit seed, with an
optional background thread that prepares the next batches while the kernels run."""

from __future__ import annotations

import math
import queue
import threading
from numbers import Number
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from .. import _random
from .._tensor import Tensor

Seed = Union[int, np.random.Generator, None]


def _stack(arrays: list) -> np.ndarray:
    try:
        return np.stack(arrays)
    except ValueError:
        shapes = sorted({a.shape for a in arrays})
        raise ValueError(
            f"[default_collate] samples of one batch must have the same shape, got {shapes}"
        ) from None


def default_collate(batch: list) -> Any:
    """Stack a list of samples into a batch, field by field (PyTorch's rules).

    Tensors and arrays are stacked along a new first axis; ints become an int64 Tensor and
    floats a float32 Tensor (NOTE: PyTorch makes float64; the kernels here are float32);
    tuples and lists collate per position (giving a list), dicts per key; strings stay a list.

    >>> default_collate([(1, 0.5), (2, 1.5)])
    [tensor([1, 2]), tensor([0.5000, 1.5000])]
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return Tensor._make(_stack([b._data for b in batch]))
    if isinstance(elem, np.ndarray):
        return Tensor._make(_stack(list(batch)))
    if isinstance(elem, (bool, np.bool_)):
        return Tensor._make(np.array(batch, dtype=np.bool_))
    if isinstance(elem, (int, np.integer)):
        return Tensor._make(np.array(batch, dtype=np.int64))
    if isinstance(elem, Number):
        return Tensor._make(np.array(batch, dtype=np.float32))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, dict):
        return {key: default_collate([b[key] for b in batch]) for key in elem}
    if isinstance(elem, (tuple, list)):
        if any(len(b) != len(elem) for b in batch):
            raise ValueError("[default_collate] every sample of a batch must have the same length")
        return [default_collate(list(field)) for field in zip(*batch)]
    raise TypeError(
        f"[default_collate] don't know how to batch samples of type {type(elem).__name__}; "
        "pass a collate_fn"
    )


def _produce(source: Iterator, out: queue.Queue, stop: threading.Event) -> None:
    """The prefetch thread: put ("item", batch)... then ("end", None) or ("error", exc).
    It holds no reference to the consumer, so dropping the consumer stops it."""

    def put(message: tuple) -> bool:
        while not stop.is_set():
            try:
                out.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    try:
        for item in source:
            if not put(("item", item)):
                return
        put(("end", None))
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer
        put(("error", exc))


class _Prefetcher:
    """Iterates `source` in a daemon thread, keeping up to `depth` items ready. Exceptions
    raised by `source` are re-raised here; leaving the loop early (or `close`) stops the
    thread within a fraction of a second."""

    def __init__(self, source: Iterator, depth: int) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(
            target=_produce,
            args=(source, self._queue, self._stop),
            daemon=True,
            name="fastdl-prefetch",
        )
        self._thread.start()

    def __iter__(self) -> "_Prefetcher":
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        kind, item = self._queue.get()
        if kind == "item":
            return item
        self._done = True
        self.close()
        if kind == "error":
            raise item
        raise StopIteration

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def __del__(self) -> None:
        self._stop.set()


class DataLoader:
    """Iterate over `dataset` in batches of fastdl Tensors.

    - shuffle: a new order every epoch, drawn from `generator`: an int seed (epoch e uses the
      order seeded by (seed, e), so a resumed run sees the same orders; see `set_epoch`), a
      np.random.Generator (drawn from in turn), or None (fastdl's global generator, which
      `fastdl.manual_seed` seeds).
    - drop_last: drop the last batch when it is smaller than batch_size.
    - collate_fn: turns a list of samples into a batch (default: `default_collate`). Datasets
      with `get_batch(indices)` (TensorDataset, MNIST) are batched in one step when no
      collate_fn is given.
    - prefetch: how many batches a background thread prepares ahead (0: none).
      `num_workers > 0` (PyTorch's knob) turns on prefetching with one thread.

    >>> import numpy as np
    >>> from fastdl.data import TensorDataset
    >>> ds = TensorDataset(np.arange(10.0).reshape(5, 2), np.arange(5))
    >>> [y.tolist() for _, y in DataLoader(ds, batch_size=2)]
    [[0, 1], [2, 3], [4]]
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        *,
        drop_last: bool = False,
        collate_fn: Optional[Callable[[list], Any]] = None,
        generator: Seed = None,
        prefetch: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        if (
            not isinstance(batch_size, (int, np.integer))
            or isinstance(batch_size, bool)
            or batch_size < 1
        ):
            raise ValueError(f"[DataLoader] batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"[DataLoader] prefetch must be an int >= 0, got {prefetch!r}")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"[DataLoader] num_workers must be an int >= 0, got {num_workers!r}")
        if generator is not None and not isinstance(
            generator, (int, np.integer, np.random.Generator)
        ):
            raise TypeError(
                "[DataLoader] generator must be an int seed, a np.random.Generator or None, "
                f"got {type(generator).__name__}"
            )
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(
                "[DataLoader] expected a dataset with __len__ and __getitem__, "
                f"got {type(dataset).__name__}"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.generator = generator
        self.prefetch = prefetch if prefetch else (2 if num_workers > 0 else 0)
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use epoch `epoch`'s order (with an int seed as generator)."""
        self.epoch = int(epoch)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        if isinstance(self.generator, np.random.Generator):
            rng = self.generator
        elif self.generator is not None:
            rng = np.random.default_rng((int(self.generator) & 0xFFFF_FFFF_FFFF_FFFF, self.epoch))
        else:
            rng = _random.generator()
        return rng.permutation(n)

    def _batches(self, order: np.ndarray) -> Iterator[Any]:
        stop = len(self) * self.batch_size if self.drop_last else len(order)
        fast = self.collate_fn is None and hasattr(self.dataset, "get_batch")
        collate = self.collate_fn or default_collate
        for start in range(0, stop, self.batch_size):
            indices = order[start : start + self.batch_size]
            if fast:
                yield [
                    Tensor._make(np.ascontiguousarray(a)) for a in self.dataset.get_batch(indices)
                ]
            else:
                yield collate([self.dataset[int(i)] for i in indices])

    def __iter__(self) -> Iterator[Any]:
        order = self._order()
        self.epoch += 1
        batches = self._batches(order)
        return _Prefetcher(batches, self.prefetch) if self.prefetch else batches
