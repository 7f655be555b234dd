"""DataLoader: batches of fastdl Tensors from a Dataset, shuffled by an explicit seed, with an
optional background thread that prepares the next batches while the kernels run."""

from __future__ import annotations

import copy
import math
import queue
import threading
from collections.abc import Mapping, MutableMapping, MutableSequence, Sequence
from numbers import Number
from typing import Any, Callable, Iterable, Iterator, Optional, Union

import numpy as np

from .._creation import stack
from .._tensor import Tensor, _from_data
from .dataset import IterableDataset
from .sampler import (
    BatchSampler, RandomSampler, Sampler, Seed, SequentialSampler, check_generator,
)


def _stack(arrays: list) -> np.ndarray:
    try:
        return np.stack(arrays)
    except ValueError:
        shapes = sorted({a.shape for a in arrays})
        raise ValueError(
            f"[default_collate] samples of one batch must have the same shape, got {shapes}"
        ) from None


def _stack_tensors(batch: list) -> Tensor:
    shapes = sorted({tuple(b.shape) for b in batch})
    if len(shapes) > 1:
        raise ValueError(
            f"[default_collate] samples of one batch must have the same shape, got {shapes}"
        )
    return stack([b.detach() for b in batch])


class _CollateSizeError(ValueError, RuntimeError):
    """Samples of one batch with different lengths: a ValueError (what fastdl raised) and a
    RuntimeError (what PyTorch raises)."""


def _check_lengths(batch: list) -> None:
    n = len(batch[0])
    if any(len(b) != n for b in batch):
        sizes = sorted({len(b) for b in batch})
        raise _CollateSizeError(
            f"[default_collate] every sample of a batch must have the same length, got {sizes}"
        )


def default_collate(batch: list) -> Any:
    """Stack a list of samples into a batch, field by field (PyTorch's rules).

    Tensors and arrays are stacked along a new first axis; Python ints become an int64 Tensor
    and Python floats a float64 Tensor (as in PyTorch: convert with `.float()` for a float32
    model); NumPy scalars keep their dtype; strings and bytes stay as they come (the list of
    samples, or a tuple for a field of tuple samples, as in PyTorch). Sequences collate per
    position: a namedtuple gives the same namedtuple type, a plain tuple a list, a list a list
    (a list subclass, its type). Mappings collate per key and keep their type (an OrderedDict
    stays an OrderedDict).

    >>> default_collate([(1, 0.5), (2, 1.5)])
    [tensor([1, 2]), tensor([0.5000, 1.5000], dtype=fastdl.float64)]
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        if any(type(b._data) is not np.ndarray for b in batch if isinstance(b, Tensor)):
            return _stack_tensors(batch)  # a device's tensors stay there, as in PyTorch
        return Tensor._make(_stack([b._data for b in batch]))
    if isinstance(elem, np.ndarray):
        return Tensor._make(_stack(list(batch)))
    if isinstance(elem, np.generic):  # NumPy scalars keep their dtype, as in PyTorch
        return Tensor._make(_from_data(np.array(batch)))
    if isinstance(elem, bool):
        return Tensor._make(np.array(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return Tensor._make(np.array(batch, dtype=np.int64))
    if isinstance(elem, Number):
        return Tensor._make(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return batch  # as PyTorch: the samples as given (a tuple for a field of tuple samples)
    if isinstance(elem, Mapping):
        collated = {key: default_collate([b[key] for b in batch]) for key in elem}
        try:  # the sample's own mapping type (an OrderedDict stays one), as PyTorch
            if isinstance(elem, MutableMapping):
                clone = copy.copy(elem)
                clone.update(collated)
                return clone
            return type(elem)(collated)
        except TypeError:
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple stays one
        _check_lengths(batch)
        return type(elem)(*(default_collate(field) for field in zip(*batch)))
    if isinstance(elem, Sequence):
        _check_lengths(batch)
        fields = [default_collate(field) for field in zip(*batch)]
        if isinstance(elem, tuple):
            return fields  # a plain tuple gives a list (PyTorch keeps this for compatibility)
        try:  # a list (or other sequence) keeps its type, as in PyTorch
            if isinstance(elem, MutableSequence):
                clone = copy.copy(elem)
                for i, field in enumerate(fields):
                    clone[i] = field
                return clone
            return type(elem)(fields)
        except TypeError:
            return fields
    raise TypeError(
        f"[default_collate] don't know how to batch samples of type {type(elem).__name__}; "
        "pass a collate_fn"
    )


def default_convert(data: Any) -> Any:
    """Turn NumPy arrays and scalars into fastdl Tensors, inside dicts, lists and tuples too
    (numbers, strings and Tensors stay as they are), as PyTorch's default_convert.

    >>> import numpy as np
    >>> default_convert({"x": np.zeros(2), "name": "a"})["x"].shape
    fastdl.Size([2])
    """
    if isinstance(data, Tensor):
        return data
    if isinstance(data, (np.ndarray, np.generic)) and np.asarray(data).dtype.kind in "fiub":
        return Tensor._make(np.array(data))
    if isinstance(data, dict):
        return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return type(data)(default_convert(d) for d in data)
    return data


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
    finally:
        # Run the source's cleanup (finally blocks of a generator or IterableDataset) here, in
        # the thread that iterated it, rather than whenever it is garbage collected.
        close = getattr(source, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 - cleanup of an abandoned source
                pass


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
        while True:
            try:
                kind, item = self._queue.get(timeout=0.05)
                break
            except queue.Empty:
                # Closed (perhaps from another thread) or the producer is gone: a closed
                # iterator is exhausted, as a closed generator is; never wait forever.
                if self._stop.is_set():
                    self._done = True
                    raise StopIteration from None
                if not self._thread.is_alive():
                    try:
                        kind, item = self._queue.get_nowait()  # its last message
                        break
                    except queue.Empty:
                        self._done = True
                        raise StopIteration from None
        if kind == "item":
            return item
        self._done = True
        self.close()
        if kind == "error":
            raise item
        raise StopIteration

    def close(self) -> None:
        """Stop the prefetch thread and drop the batches it prepared; `next` then raises
        StopIteration at once."""
        self._done = True
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break

    def __del__(self) -> None:
        self._stop.set()


class DataLoader:
    """Iterate over `dataset` in batches of fastdl Tensors, with PyTorch's arguments.

    - shuffle: a new order every epoch (a RandomSampler over the dataset), drawn from
      `generator`: a fastdl.Generator or np.random.Generator (drawn from in turn), an int seed
      (epoch e uses the order seeded by (seed, e), so a resumed run sees the same orders; see
      `set_epoch`), or None (fastdl's global generator, which `fastdl.manual_seed` seeds).
    - sampler / batch_sampler: which indices, in which order / in which batches (see
      fastdl.data.sampler); mutually exclusive with shuffle (and batch_sampler with batch_size,
      sampler and drop_last) as in PyTorch.
    - drop_last: drop the last batch when it is smaller than batch_size.
    - collate_fn: turns a list of samples into a batch (default: `default_collate`). Datasets
      with `get_batch(indices)` (TensorDataset, MNIST) are batched in one step when no
      collate_fn is given.
    - IterableDataset: batches samples in the order the dataset yields them (no shuffle or
      sampler allowed).
    - prefetch: how many batches a background thread prepares ahead (0: none).
      `num_workers > 0` (PyTorch's knob) turns on prefetching with one thread (prefetch_factor
      batches ahead, default 2); there are no worker processes, so `worker_init_fn` is not
      called and `get_worker_info()` is None. timeout, pin_memory and multiprocessing_context
      are accepted and have no effect.
    - batch_size=None (and no batch_sampler) turns automatic batching off, as in PyTorch: one
      sample at a time, through collate_fn or default_convert.

    >>> import numpy as np
    >>> from fastdl.data import TensorDataset
    >>> ds = TensorDataset(np.arange(10.0).reshape(5, 2), np.arange(5))
    >>> [y.tolist() for _, y in DataLoader(ds, batch_size=2)]
    [[0, 1], [2, 3], [4]]
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: Optional[int] = 1,
        shuffle: Optional[bool] = None,
        sampler: Optional[Union[Sampler, Iterable]] = None,
        batch_sampler: Optional[Union[Sampler, Iterable]] = None,
        num_workers: int = 0,
        collate_fn: Optional[Callable[[list], Any]] = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Optional[Callable[[int], None]] = None,
        multiprocessing_context: Any = None,
        generator: Seed = None,
        *,
        prefetch_factor: Optional[int] = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
        prefetch: int = 0,
    ) -> None:
        op = "[DataLoader]"
        if batch_size is not None and (
            not isinstance(batch_size, (int, np.integer))
            or isinstance(batch_size, bool)
            or batch_size < 1
        ):
            raise ValueError(f"{op} batch_size must be a positive int or None, got {batch_size!r}")
        if batch_size is None and drop_last:
            raise ValueError(
                f"{op} batch_size=None option disables auto-batching and is mutually exclusive "
                "with drop_last"
            )
        if not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"{op} prefetch must be an int >= 0, got {prefetch!r}")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(
                f"{op} num_workers option should be non-negative; use num_workers=0 to disable "
                f"multiprocessing (got {num_workers!r})"
            )
        if timeout < 0:
            raise ValueError(f"{op} timeout option should be non-negative, got {timeout!r}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                f"{op} prefetch_factor option could only be specified with num_workers > 0, "
                f"got prefetch_factor={prefetch_factor!r} and num_workers=0"
            )
        if prefetch_factor is not None and (
            not isinstance(prefetch_factor, int) or prefetch_factor < 1
        ):
            raise ValueError(f"{op} prefetch_factor must be an int >= 1, got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError(f"{op} persistent_workers option needs num_workers > 0")
        check_generator(generator, "DataLoader")

        iterable = isinstance(dataset, IterableDataset)
        if iterable:
            for name, value, unset in (
                ("shuffle", shuffle, shuffle in (None, False)),
                ("sampler", sampler, sampler is None),
                ("batch_sampler", batch_sampler, batch_sampler is None),
            ):
                if not unset:
                    raise ValueError(
                        f"{op} DataLoader with IterableDataset: expected unspecified {name} "
                        f"option, but got {name}={value!r}"
                    )
        elif not hasattr(dataset, "__getitem__") or (
            sampler is None and batch_sampler is None and not hasattr(dataset, "__len__")
        ):
            raise TypeError(
                f"{op} expected a dataset with __len__ and __getitem__ (or an IterableDataset), "
                f"got {type(dataset).__name__}"
            )
        if sampler is not None and shuffle:
            raise ValueError(f"{op} sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    f"{op} batch_sampler option is mutually exclusive with batch_size, shuffle, "
                    f"sampler, and drop_last (got batch_size={batch_size!r}, shuffle={shuffle!r}, "
                    f"sampler={sampler!r}, drop_last={drop_last!r})"
                )
            batch_size, drop_last = None, False

        self._auto_shuffle = None
        if not iterable and sampler is None:
            if shuffle:
                sampler = self._auto_shuffle = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        # batch_size=None without a batch_sampler: no automatic batching, one sample at a time.
        self._auto_batch = batch_size is not None or batch_sampler is not None
        if not iterable and batch_sampler is None and batch_size is not None:
            batch_sampler = BatchSampler(sampler, int(batch_size), bool(drop_last))

        self.dataset = dataset
        self.batch_size = None if batch_size is None else int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.pin_memory_device = pin_memory_device
        self.in_order = in_order
        self.prefetch = prefetch if prefetch else (
            (prefetch_factor or 2) if num_workers > 0 else 0
        )
        self.epoch = 0

    def __len__(self) -> int:
        if isinstance(self.dataset, IterableDataset):
            try:
                n = len(self.dataset)
            except (TypeError, NotImplementedError):
                raise TypeError(
                    f"[DataLoader] the IterableDataset {type(self.dataset).__name__} has no "
                    "__len__, so neither has this DataLoader"
                ) from None
            if not self._auto_batch:
                return n
            return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        return len(self.batch_sampler) if self._auto_batch else len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use epoch `epoch`'s order (with an int seed as generator)."""
        self.epoch = int(epoch)

    def _collate_samples(self, indices: Any) -> Any:
        if self.collate_fn is None and hasattr(self.dataset, "get_batch"):
            idx = np.asarray(indices, dtype=np.int64)
            return [Tensor._make(np.ascontiguousarray(a)) for a in self.dataset.get_batch(idx)]
        collate = self.collate_fn or default_collate
        return collate([self.dataset[int(i)] for i in indices])

    def _map_batches(self, index_batches: Iterator[Any]) -> Iterator[Any]:
        for indices in index_batches:
            yield self._collate_samples(indices)

    def _single_samples(self, samples: Iterator[Any]) -> Iterator[Any]:
        convert = self.collate_fn or default_convert  # PyTorch's rule without auto-batching
        for sample in samples:
            yield convert(sample)

    def _iterable_batches(self) -> Iterator[Any]:
        if not self._auto_batch:
            yield from self._single_samples(iter(self.dataset))
            return
        collate = self.collate_fn or default_collate
        batch: list = []
        for sample in self.dataset:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield collate(batch)
                batch = []
        if batch and not self.drop_last:
            yield collate(batch)

    def __iter__(self) -> Iterator[Any]:
        if isinstance(self.dataset, IterableDataset):
            batches = self._iterable_batches()
        else:
            if self._auto_shuffle is not None:
                self._auto_shuffle.set_epoch(self.epoch)
            # The order is drawn here, in the caller's thread, before any prefetching starts.
            if not self._auto_batch:
                order = list(iter(self.sampler))
                batches = self._single_samples(self.dataset[i] for i in order)
            elif isinstance(self.batch_sampler, BatchSampler):
                index_batches = self.batch_sampler._index_batches()
            else:
                index_batches = iter(self.batch_sampler)
            if self._auto_batch:
                batches = self._map_batches(index_batches)
        self.epoch += 1
        return _Prefetcher(batches, self.prefetch) if self.prefetch else batches


def get_worker_info() -> None:
    """Information about the current DataLoader worker process: always None in fastdl, whose
    DataLoader has no worker processes (as PyTorch's returns None in the main process)."""
    return None
