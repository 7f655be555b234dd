"""Samplers: which dataset indices a DataLoader visits, and in what order (PyTorch's API).

`generator=` takes a fastdl.Generator or a np.random.Generator (drawn from in turn), None
(fastdl's global generator, seeded by `fastdl.manual_seed`) or, as a fastdl extension, an int
seed: then iteration e uses the order seeded by (seed, e), so a resumed run sees the same
orders (`set_epoch`). NOTE: the orders differ from PyTorch's for the same seed.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, List, Optional, Sequence, Union

import numpy as np

from .. import _random
from .._tensor import Tensor

_MASK64 = 0xFFFF_FFFF_FFFF_FFFF

Seed = Union[int, "_random.Generator", np.random.Generator, None]


def check_generator(generator: Any, op: str) -> None:
    """Raise TypeError unless `generator` is an int seed, a fastdl or NumPy generator, or None."""
    if generator is None or isinstance(generator, (_random.Generator, np.random.Generator)):
        return
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return
    raise TypeError(
        f"[{op}] generator must be a fastdl.Generator, a np.random.Generator, an int seed or "
        f"None, got {type(generator).__name__}"
    )


def rng_for(generator: Seed, epoch: int = 0) -> np.random.Generator:
    """The NumPy generator to draw an epoch's order from (see the module docstring)."""
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng((int(generator) & _MASK64, int(epoch)))
    return _random.numpy_generator(generator, "sampler")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_positive_int(op: str, name: str, value: Any) -> None:
    if not _is_int(value) or value <= 0:
        raise ValueError(
            f"[{op}] {name} should be a positive integer value, but got {name}={value!r}"
        )


def _check_bool(op: str, name: str, value: Any, error: type = ValueError) -> None:
    """PyTorch's check of a bool argument (RandomSampler's raises TypeError, the others
    ValueError)."""
    if not isinstance(value, bool):
        raise error(f"[{op}] {name} should be a boolean value, but got {name}={value!r}")


class Sampler:
    """Base class: a subclass's `__iter__` yields dataset indices (and `__len__`, if defined,
    says how many).

    >>> class Evens(Sampler):
    ...     def __init__(self, n):
    ...         self.n = n
    ...     def __iter__(self):
    ...         return iter(range(0, self.n, 2))
    >>> list(Evens(5))
    [0, 2, 4]
    """

    def __init__(self, data_source: Optional[Any] = None) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"[{type(self).__name__}] subclasses must define __iter__")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1, in order.

    >>> list(SequentialSampler(["a", "b", "c"]))
    [0, 1, 2]
    """

    def __init__(self, data_source: Any) -> None:
        self.data_source = data_source

    def _order(self) -> np.ndarray:
        return np.arange(len(self.data_source))

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """Indices in random order: a new permutation each iteration, or, with
    `replacement=True`, `num_samples` independent draws. Without replacement, a `num_samples`
    above the dataset's length gives whole permutations one after the other (as PyTorch).

    >>> import fastdl
    >>> sorted(RandomSampler(range(4), generator=fastdl.Generator().manual_seed(0)))
    [0, 1, 2, 3]
    """

    def __init__(
        self,
        data_source: Any,
        replacement: bool = False,
        num_samples: Optional[int] = None,
        generator: Seed = None,
    ) -> None:
        _check_bool("RandomSampler", "replacement", replacement, TypeError)
        check_generator(generator, "RandomSampler")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        self.epoch = 0
        n = self.num_samples
        _check_positive_int("RandomSampler", "num_samples", n)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def set_epoch(self, epoch: int) -> None:
        """With an int seed as generator: make the next iteration use epoch `epoch`'s order."""
        self.epoch = int(epoch)

    def _order(self) -> np.ndarray:
        n, k = len(self.data_source), int(self.num_samples)
        rng = rng_for(self.generator, self.epoch)
        self.epoch += 1
        if self.replacement:
            return rng.integers(0, n, size=k, dtype=np.int64)
        if k == n:
            return rng.permutation(n)
        parts = [rng.permutation(n) for _ in range(k // n)]
        if k % n:
            parts.append(rng.permutation(n)[: k % n])
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(self._order().tolist())

    def __len__(self) -> int:
        return int(self.num_samples)


class SubsetRandomSampler(Sampler):
    """The given indices in a random order (a new one each iteration).

    >>> sorted(SubsetRandomSampler([5, 7, 9], generator=0))
    [5, 7, 9]
    """

    def __init__(self, indices: Sequence[int], generator: Seed = None) -> None:
        check_generator(generator, "SubsetRandomSampler")
        self.indices = indices
        self.generator = generator
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _order(self) -> np.ndarray:
        rng = rng_for(self.generator, self.epoch)
        self.epoch += 1
        return np.asarray(self.indices, dtype=np.int64).reshape(-1)[rng.permutation(len(self))]

    def __iter__(self) -> Iterator[int]:
        return iter(self._order().tolist())

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """`num_samples` indices in [0, len(weights)), index i drawn with probability proportional
    to weights[i]; with `replacement=False` each index at most once. As in PyTorch, invalid
    weights (negative, NaN, infinite, all zero) raise RuntimeError when iterating.

    >>> import fastdl
    >>> s = WeightedRandomSampler([0.0, 1.0, 0.0], 3, generator=fastdl.Generator())
    >>> list(s)
    [1, 1, 1]
    """

    def __init__(
        self,
        weights: Any,
        num_samples: int,
        replacement: bool = True,
        generator: Seed = None,
    ) -> None:
        _check_positive_int("WeightedRandomSampler", "num_samples", num_samples)
        _check_bool("WeightedRandomSampler", "replacement", replacement)
        check_generator(generator, "WeightedRandomSampler")
        data = getattr(weights, "_data", weights)
        try:
            w = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"[WeightedRandomSampler] weights must be a sequence of numbers: {exc}"
            ) from None
        if w.ndim != 1:
            raise ValueError(
                "[WeightedRandomSampler] weights should be a 1d sequence but given weights have "
                f"shape {tuple(w.shape)}"
            )
        self._w = w
        self.weights = Tensor._make(w)  # float64, as PyTorch keeps them
        self.num_samples = int(num_samples)
        self.replacement = replacement
        self.generator = generator
        self.epoch = 0

    def _probabilities(self) -> np.ndarray:
        w = self._w
        op = "[WeightedRandomSampler]"
        if not np.isfinite(w).all():
            bad = "NaN" if np.isnan(w).any() else "= infinity"
            raise RuntimeError(
                f"{op} invalid multinomial distribution (encountering probability entry {bad})"
            )
        if (w < 0).any():
            raise RuntimeError(
                f"{op} invalid multinomial distribution (encountering probability entry < 0)"
            )
        total = w.sum()
        if not total > 0:
            raise RuntimeError(f"{op} invalid multinomial distribution (sum of probabilities <= 0)")
        if not self.replacement and self.num_samples > len(w):
            raise RuntimeError(
                f"{op} cannot sample num_samples={self.num_samples} > len(weights)={len(w)} "
                "samples without replacement"
            )
        return w / total

    def _order(self) -> np.ndarray:
        p = self._probabilities()
        rng = rng_for(self.generator, self.epoch)
        self.epoch += 1
        k = self.num_samples
        if self.replacement:
            return rng.choice(len(p), size=k, replace=True, p=p)
        nonzero = int(np.count_nonzero(p))
        drawn = rng.choice(len(p), size=min(k, nonzero), replace=False, p=p)
        if k <= nonzero:
            return drawn
        # As PyTorch: once the non-zero weights are used up, zero-weight indices follow.
        zeros = rng.permutation(np.flatnonzero(p == 0))[: k - nonzero]
        return np.concatenate([drawn, zeros])

    def __iter__(self) -> Iterator[int]:
        return iter(self._order().tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the indices of `sampler` into lists of `batch_size` (the last one shorter unless
    `drop_last`).

    >>> list(BatchSampler(SequentialSampler(range(7)), batch_size=3, drop_last=False))
    [[0, 1, 2], [3, 4, 5], [6]]
    """

    def __init__(
        self, sampler: Union[Sampler, Iterable[int]], batch_size: int, drop_last: bool
    ) -> None:
        _check_positive_int("BatchSampler", "batch_size", batch_size)
        _check_bool("BatchSampler", "drop_last", drop_last)
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = drop_last

    def _index_batches(self) -> Iterator[Any]:
        """Batches of indices: NumPy slices of one order array when the sampler can make one
        (the built-in samplers; the order is drawn now, not lazily), else lists."""
        order_fn = getattr(self.sampler, "_order", None)
        if order_fn is None:
            return iter(self)
        return self._slices(order_fn())

    def _slices(self, order: np.ndarray) -> Iterator[np.ndarray]:
        size = self.batch_size
        stop = (len(order) // size) * size if self.drop_last else len(order)
        for start in range(0, stop, size):
            yield order[start : start + size]

    def __iter__(self) -> Iterator[List[int]]:
        batch: List[int] = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def torch_randperm(n: int, seed: int) -> np.ndarray:
    """PyTorch's `torch.randperm(n, generator=torch.Generator().manual_seed(seed))` on the CPU,
    exactly: a Fisher-Yates shuffle driven by MT19937 seeded with seed's low 32 bits (NumPy's
    legacy RandomState is that generator; a full-range uint32 draw is one raw output).
    NOTE: PyTorch draws 64-bit numbers past n = 2**32 // 20; this is the smaller-n path."""
    draws = np.random.RandomState(int(seed) & 0xFFFF_FFFF).randint(
        0, 2**32, size=max(n - 1, 0), dtype=np.uint32
    )
    targets = (draws % np.arange(n, 1, -1, dtype=np.uint32)).tolist()
    order = list(range(n))
    for i, z in enumerate(targets):
        order[i], order[i + z] = order[i + z], order[i]
    return np.array(order, dtype=np.int64)


class DistributedSampler(Sampler):
    """Rank `rank`'s shard of the dataset's indices, PyTorch's exact sequence for the same
    (num_replicas, rank, shuffle, seed, epoch, drop_last): a permutation seeded by seed + epoch
    (the same on every rank), padded by repeating its start until it splits evenly (or, with
    drop_last, cut to the largest even split), and every num_replicas-th index from `rank` on.
    Call `set_epoch(epoch)` before each epoch for a new order. num_replicas and rank default to
    the world size and rank of `fastdl.distributed`.

    >>> list(DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False))
    [1, 3, 0]
    """

    def __init__(
        self, dataset: Any, num_replicas: Optional[int] = None, rank: Optional[int] = None,
        shuffle: bool = True, seed: int = 0, drop_last: bool = False,
    ) -> None:
        if num_replicas is None or rank is None:
            from .. import distributed as dist

            if not dist.is_available():
                raise RuntimeError(
                    "[DistributedSampler] Requires distributed package to be available "
                    f"({dist._unavailable_reason()}); or pass num_replicas and rank"
                )
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if not _is_int(num_replicas) or num_replicas < 1:
            raise ValueError(
                f"[DistributedSampler] num_replicas must be a positive int, got {num_replicas!r}"
            )
        if not _is_int(rank) or not 0 <= rank < num_replicas:
            raise ValueError(
                f"[DistributedSampler] Invalid rank {rank}, rank should be in the interval "
                f"[0, {num_replicas - 1}]"
            )
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = shuffle, int(seed), drop_last
        self.epoch = 0
        n = len(dataset)
        if drop_last and n % self.num_replicas != 0:
            self.num_samples = -(-(n - self.num_replicas) // self.num_replicas)
        else:
            self.num_samples = -(-n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """The order of epoch `epoch` for the next iteration (the same on every rank)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            indices = torch_randperm(n, self.seed + self.epoch)
        else:
            indices = np.arange(n, dtype=np.int64)
        if self.drop_last:
            indices = indices[: self.total_size]
        elif self.total_size > n:  # pad by repeating the start (the whole, as often as needed)
            indices = np.resize(indices, self.total_size)
        return iter(indices[self.rank : self.total_size : self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples
