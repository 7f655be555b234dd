"""fastdl.data: datasets, DataLoader (order, seeded shuffling, drop_last, collate, prefetch),
pandas input, random_split and train_test_split."""

import threading
import time
from collections import OrderedDict, namedtuple

import numpy as np
import pytest

import fastdl
from fastdl.data import (
    ConcatDataset,
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
    train_test_split,
)


def dataset(n=10, features=3):
    x = np.arange(n * features, dtype=np.float32).reshape(n, features)
    return TensorDataset(x, np.arange(n))


def labels_of(loader):
    return [y.tolist() for _, y in loader]


class Squares(Dataset):
    """A dataset without get_batch: DataLoader must collate sample by sample."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": np.full(2, i, np.float32), "y": i * i, "name": f"s{i}"}


# ---------------------------------------------------------------- datasets


def test_tensor_dataset_from_arrays_and_tensors():
    ds = TensorDataset(fastdl.tensor([[1.0, 2.0], [3.0, 4.0]]), np.array([0, 1]))
    assert len(ds) == 2
    x, y = ds[1]
    assert isinstance(x, fastdl.Tensor) and x.tolist() == [3.0, 4.0]
    assert y.item() == 1 and y.dtype == fastdl.int64
    assert ds[-1][1].item() == 1
    assert [t.shape for t in ds.tensors] == [(2, 2), (2,)]


def test_tensor_dataset_float64_becomes_float32():
    ds = TensorDataset(np.zeros((3, 2), np.float64))
    assert ds.arrays[0].dtype == np.float32


def test_tensor_dataset_errors():
    with pytest.raises(ValueError, match="tensor 0 has 3 rows, tensor 1 has 2"):
        TensorDataset(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    with pytest.raises(ValueError, match="numeric"):
        TensorDataset(np.array(["a", "b"]))
    with pytest.raises(IndexError, match="index 5 is out of range for a dataset of 3"):
        TensorDataset(np.zeros(3))[5]


def test_tensor_dataset_from_pandas():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2.0, None], "b": [1, 2, 3], "label": [0, 1, 1]})
    ds = TensorDataset(df[["a", "b"]], df["label"])
    assert ds.arrays[0].dtype == np.float32 and ds.arrays[1].dtype == np.int64
    assert np.isnan(ds.arrays[0][2, 0]) and ds.arrays[0][2, 1] == 3
    assert labels_of(DataLoader(ds, batch_size=2)) == [[0, 1], [1]]


def test_pandas_non_numeric_column_names_column_and_row():
    pd = pytest.importorskip("pandas")
    import io

    df = pd.read_csv(io.StringIO("price,rooms\n10.5,3\nabout 9,2\n7.0,1\n"))
    with pytest.raises(ValueError, match=r"column 'price' is not numeric.*row 1 holds 'about 9'"):
        TensorDataset(df)


def test_subset_and_concat():
    ds = dataset(6)
    sub = Subset(ds, [4, 1])
    assert len(sub) == 2 and sub[0][1].item() == 4
    assert [a.tolist() for a in sub.get_batch(np.array([1, 0]))][1] == [1, 4]
    with pytest.raises(IndexError, match=r"\[0, 6\)"):
        Subset(ds, [6])
    both = ConcatDataset([dataset(2), dataset(3)])
    assert len(both) == 5 and both[3][1].item() == 1
    assert not hasattr(Subset(Squares(3), [0]), "get_batch")


# ---------------------------------------------------------------- DataLoader


def test_order_without_shuffle_and_batch_sizes():
    loader = DataLoader(dataset(10), batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].shape == (4, 3) and batches[0][0].dtype == fastdl.float32
    assert isinstance(batches[0][0], fastdl.Tensor)


def test_drop_last():
    loader = DataLoader(dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert labels_of(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert labels_of(DataLoader(dataset(8), batch_size=4, drop_last=True)) == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
    ]


def test_shuffle_is_reproducible_by_seed_and_changes_per_epoch():
    a = DataLoader(dataset(20), batch_size=5, shuffle=True, generator=123)
    b = DataLoader(dataset(20), batch_size=5, shuffle=True, generator=123)
    epoch0_a, epoch0_b = labels_of(a), labels_of(b)
    assert epoch0_a == epoch0_b
    assert sorted(sum(epoch0_a, [])) == list(range(20))
    assert sum(epoch0_a, []) != list(range(20))
    epoch1 = labels_of(a)
    assert epoch1 != epoch0_a and sorted(sum(epoch1, [])) == list(range(20))
    c = DataLoader(dataset(20), batch_size=5, shuffle=True, generator=123)
    c.set_epoch(1)
    assert labels_of(c) == epoch1  # a resumed run sees the same order
    assert labels_of(DataLoader(dataset(20), batch_size=5, shuffle=True, generator=124)) != epoch0_a


def test_shuffle_with_numpy_generator_and_global_seed():
    def run(loader_factory):
        return [labels_of(loader_factory()) for _ in range(1)]

    g1 = DataLoader(dataset(12), 4, shuffle=True, generator=np.random.default_rng(5))
    g2 = DataLoader(dataset(12), 4, shuffle=True, generator=np.random.default_rng(5))
    assert labels_of(g1) == labels_of(g2) and labels_of(g1) == labels_of(g2)
    fastdl.manual_seed(7)
    first = run(lambda: DataLoader(dataset(12), 4, shuffle=True))
    fastdl.manual_seed(7)
    assert run(lambda: DataLoader(dataset(12), 4, shuffle=True)) == first


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "4"])
def test_bad_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        DataLoader(dataset(), batch_size=bad)


def test_other_bad_arguments():
    with pytest.raises(TypeError, match="generator"):
        DataLoader(dataset(), generator="seed")
    with pytest.raises(ValueError, match="prefetch"):
        DataLoader(dataset(), prefetch=-1)
    with pytest.raises(TypeError, match="__len__ and __getitem__"):
        DataLoader(object())


def test_collate_per_sample_for_plain_datasets():
    batch = next(iter(DataLoader(Squares(5), batch_size=3)))
    assert batch["x"].shape == (3, 2) and batch["y"].tolist() == [0, 1, 4]
    assert batch["name"] == ["s0", "s1", "s2"]


def test_custom_collate_fn_sees_samples():
    seen = []

    def collate(samples):
        seen.append(len(samples))
        return samples

    out = list(DataLoader(dataset(5), batch_size=2, collate_fn=collate))
    assert seen == [2, 2, 1] and len(out[0]) == 2 and isinstance(out[0][0], tuple)


def test_default_collate_rules():
    out = default_collate([(1, 0.5, True), (2, 1.5, False)])
    # PyTorch's dtypes: Python ints int64, Python floats float64, bools bool
    assert out[0].dtype == fastdl.int64 and out[1].dtype == fastdl.float64
    assert out[2].dtype == fastdl.bool
    assert out[1].tolist() == [0.5, 1.5]
    scalars = default_collate([np.float32(0.5), np.float32(2.0)])  # NumPy scalars keep theirs
    assert scalars.dtype == fastdl.float32 and scalars.tolist() == [0.5, 2.0]
    with pytest.raises(ValueError, match="same shape"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="collate_fn"):
        default_collate([object()])


Point = namedtuple("Point", "x y")


class Tagged(list):
    """A list subclass: default_collate keeps the type of a list sample."""


def _describe(batch):
    """A batch's structure and values, comparable between fastdl and torch."""
    if hasattr(batch, "numpy") and hasattr(batch, "dtype"):
        return ("tensor", str(batch.dtype).rsplit(".", 1)[-1], batch.tolist())
    if isinstance(batch, (list, tuple)):
        return (type(batch).__name__, [_describe(b) for b in batch])
    if isinstance(batch, dict):
        return (type(batch).__name__, [(k, _describe(v)) for k, v in batch.items()])
    return (type(batch).__name__, batch)


COLLATE_CASES = {
    "namedtuple": [Point(1.0, 2), Point(3.0, 4)],
    "namedtuple_nested": [Point((1, 2), [3.0]), Point((4, 5), [6.0])],
    "namedtuple_in_tuple": [(Point(1, 2), 0), (Point(3, 4), 1)],
    "tuple": [(1.0, 2), (3.0, 4)],
    "list": [[1.0, 2], [3.0, 4]],
    "tuple_of_tuples": [((1, 2), 3), ((4, 5), 6)],
    "list_of_tuples": [[(1, 2), 3], [(4, 5), 6]],
    "list_subclass": [Tagged([1, 2]), Tagged([3, 4])],
    "ordered_dict": [OrderedDict(b=1, a=2.0), OrderedDict(b=3, a=4.0)],
    "dict_of_tuples": [{"b": 1, "a": (1, 2)}, {"b": 3, "a": (3, 4)}],
    "strings_in_tuples": [("a", 1), ("b", 2)],
    "strings_in_lists": [["a", 1], ["b", 2]],
    "strings": ["a", "b"],
    "bytes_in_tuples": [(b"ab", 1), (b"cd", 2)],
    "namedtuple_of_numpy": [Point("a", np.float32(1)), Point("b", np.float32(2))],
}


def test_default_collate_keeps_namedtuples_and_follows_torch_for_sequences():
    batch = default_collate([Point(1.0, 2), Point(3.0, 4)])
    assert type(batch) is Point
    assert batch.x.dtype == fastdl.float64 and batch.x.tolist() == [1.0, 3.0]
    assert batch.y.dtype == fastdl.int64 and batch.y.tolist() == [2, 4]
    expected = {  # by hand, from PyTorch 2.13
        "tuple": ("list", [("tensor", "float64", [1.0, 3.0]), ("tensor", "int64", [2, 4])]),
        "list": ("list", [("tensor", "float64", [1.0, 3.0]), ("tensor", "int64", [2, 4])]),
        "tuple_of_tuples": (
            "list",
            [
                ("list", [("tensor", "int64", [1, 4]), ("tensor", "int64", [2, 5])]),
                ("tensor", "int64", [3, 6]),
            ],
        ),
        "namedtuple_in_tuple": (
            "list",
            [
                ("Point", [("tensor", "int64", [1, 3]), ("tensor", "int64", [2, 4])]),
                ("tensor", "int64", [0, 1]),
            ],
        ),
        "list_subclass": (
            "Tagged", [("tensor", "int64", [1, 3]), ("tensor", "int64", [2, 4])]
        ),
        "ordered_dict": (
            "OrderedDict",
            [("b", ("tensor", "int64", [1, 3])), ("a", ("tensor", "float64", [2.0, 4.0]))],
        ),
        # strings stay as they come: zip gives a tuple per field of tuple samples
        "strings_in_tuples": (
            "list", [("tuple", [("str", "a"), ("str", "b")]), ("tensor", "int64", [1, 2])]
        ),
        "strings": ("list", [("str", "a"), ("str", "b")]),
    }
    for name, want in expected.items():
        assert _describe(default_collate(COLLATE_CASES[name])) == want, name
    # a DataLoader of namedtuple samples gives namedtuple batches
    class Points(Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return Point(float(i), i)

    first = next(iter(DataLoader(Points(), batch_size=2)))
    assert type(first) is Point and first.y.tolist() == [0, 1]
    # samples of different lengths: a ValueError, and PyTorch's RuntimeError
    for bad in ([(1, 2), (3,)], [[1], [2, 3]], [Point(1, 2), (3,)]):
        with pytest.raises(ValueError, match="same length") as info:
            default_collate(bad)
        assert isinstance(info.value, RuntimeError)


@pytest.mark.parametrize("name", sorted(COLLATE_CASES))
def test_default_collate_matches_torch(name):
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    batch = COLLATE_CASES[name]
    assert _describe(default_collate(batch)) == _describe(torch_collate(batch))


def test_default_collate_size_error_is_runtime_error_like_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    with pytest.raises(RuntimeError):
        torch_collate([(1, 2), (3,)])
    with pytest.raises(RuntimeError):
        default_collate([(1, 2), (3,)])


def test_concat_dataset_cumulative_sizes_are_python_ints():
    both = ConcatDataset([dataset(2), dataset(3), dataset(0), dataset(4)])
    assert both.cumulative_sizes == [2, 5, 5, 9]
    assert all(type(n) is int for n in both.cumulative_sizes)
    assert len(both) == 9 and both[5][1].item() == 0 and both[-1][1].item() == 3


def test_concat_dataset_cumulative_sizes_match_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import ConcatDataset as TorchConcat, TensorDataset as TorchTensors

    theirs = TorchConcat([TorchTensors(torch.zeros(n)) for n in (2, 3, 0, 4)])
    ours = ConcatDataset([TensorDataset(np.zeros(n)) for n in (2, 3, 0, 4)])
    assert ours.cumulative_sizes == theirs.cumulative_sizes
    assert [type(n) for n in ours.cumulative_sizes] == [type(n) for n in theirs.cumulative_sizes]


def test_tensor_dataset_size_mismatch_is_value_and_assertion_error():
    for catch in (ValueError, AssertionError):
        with pytest.raises(catch, match=r"\[TensorDataset\] Size mismatch between tensors"):
            TensorDataset(np.zeros((3, 2)), np.zeros(3), np.zeros(4))
    with pytest.raises(AssertionError) as info:  # what code written for PyTorch catches
        TensorDataset(np.zeros(3), np.zeros(4))
    assert isinstance(info.value, ValueError)
    assert "tensor 0 has 3 rows, tensor 1 has 4" in str(info.value)


def test_tensor_dataset_size_mismatch_matches_torch_error():
    torch = pytest.importorskip("torch")
    from torch.utils.data import TensorDataset as TorchTensors

    with pytest.raises(AssertionError, match="Size mismatch between tensors") as theirs:
        TorchTensors(torch.zeros(3), torch.zeros(4))
    with pytest.raises(type(theirs.value), match="Size mismatch between tensors"):
        TensorDataset(np.zeros(3), np.zeros(4))


def test_fast_path_matches_per_sample_collate():
    ds = dataset(9)
    fast = list(DataLoader(ds, batch_size=4, shuffle=True, generator=1))
    slow = list(DataLoader(ds, batch_size=4, shuffle=True, generator=1, collate_fn=default_collate))
    for (xf, yf), (xs, ys) in zip(fast, slow):
        assert np.array_equal(xf.numpy(), xs.numpy()) and np.array_equal(yf.numpy(), ys.numpy())


def test_prefetch_gives_the_same_batches():
    plain = labels_of(DataLoader(dataset(30), 4, shuffle=True, generator=3))
    ahead = labels_of(DataLoader(dataset(30), 4, shuffle=True, generator=3, prefetch=3))
    assert plain == ahead
    assert labels_of(DataLoader(dataset(30), 4, num_workers=2)) == labels_of(
        DataLoader(dataset(30), 4)
    )


def test_prefetch_reraises_dataset_errors():
    class Broken(Squares):
        def __getitem__(self, i):
            if i == 3:
                raise KeyError("sample 3 is broken")
            return super().__getitem__(i)

    with pytest.raises(KeyError, match="sample 3 is broken"):
        list(DataLoader(Broken(6), batch_size=2, prefetch=2))


def test_prefetch_thread_stops_when_loop_is_left_early():
    before = threading.active_count()
    for _ in range(3):
        for i, _batch in enumerate(DataLoader(dataset(100), 2, prefetch=2)):
            if i == 1:
                break
    deadline = time.time() + 3
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.02)
    assert threading.active_count() <= before


def _finishes(fn, timeout=5.0):
    """Run fn in a daemon thread; (finished in time, its result or exception)."""
    out = {}

    def run():
        try:
            out["result"] = fn()
        except BaseException as e:  # noqa: BLE001
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    return not t.is_alive(), out


@pytest.mark.parametrize("kwargs", [{"prefetch": 2}, {"num_workers": 1}])
def test_next_after_close_on_a_prefetching_iterator_stops_at_once(kwargs):
    # Regression (issue 9, item 10): next() after close() waited forever on an empty queue.
    it = iter(DataLoader(dataset(100), 2, **kwargs))
    next(it)
    it.close()
    assert not it._thread.is_alive()
    done, out = _finishes(lambda: next(it))
    assert done, "next() after close() hung"
    assert isinstance(out.get("error"), StopIteration)
    assert list(it) == []  # and stays exhausted


def test_close_from_another_thread_wakes_a_waiting_next():
    class Slow(Squares):
        def __getitem__(self, i):
            time.sleep(0.3)
            return super().__getitem__(i)

    it = iter(DataLoader(Slow(50), 1, prefetch=1))
    timer = threading.Timer(0.1, it.close)
    timer.start()
    t0 = time.time()
    done, out = _finishes(lambda: [next(it) for _ in range(50)])
    timer.join()
    assert done, "next() waiting for a batch hung after close() from another thread"
    assert isinstance(out.get("error"), StopIteration)
    assert time.time() - t0 < 3
    assert not it._thread.is_alive()


def test_leaving_a_prefetching_loop_early_stops_the_thread_and_cleans_up_the_source():
    cleaned = threading.Event()

    class Stream(fastdl.data.IterableDataset):
        def __iter__(self):
            try:
                for i in range(1000):
                    yield np.float32(i)
            finally:
                cleaned.set()

    it = iter(DataLoader(Stream(), 2, prefetch=2))
    for i, _batch in enumerate(it):
        if i == 1:
            break
    # the iterator is still referenced: the thread waits to put, polling its stop flag
    assert it._thread.is_alive()
    it.close()
    assert not it._thread.is_alive()
    assert cleaned.wait(2), "the source's finally block did not run when the loop was closed"

    # and a loader dropped without close() (a plain `break`) stops its thread too
    loader = DataLoader(Stream(), 2, prefetch=2)
    for i, _batch in enumerate(loader):
        if i == 1:
            break
    deadline = time.time() + 3
    while any(t.name == "fastdl-prefetch" for t in threading.enumerate()):
        assert time.time() < deadline, "prefetch thread still running after the loop was left"
        time.sleep(0.02)


# ---------------------------------------------------------------- splits


def test_random_split_lengths_and_fractions():
    ds = dataset(10)
    a, b = random_split(ds, [7, 3], generator=0)
    assert len(a) == 7 and len(b) == 3
    assert sorted(list(a.indices) + list(b.indices)) == list(range(10))
    c, d = random_split(ds, [7, 3], generator=0)
    assert list(c.indices) == list(a.indices)
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=1)
    assert [len(p) for p in parts] == [5, 3, 2]
    assert [len(p) for p in random_split(dataset(11), [0.5, 0.5], generator=1)] == [6, 5]
    with pytest.raises(ValueError, match="sum to the dataset's length 10"):
        random_split(ds, [5, 4])
    with pytest.raises(ValueError, match="fractions"):
        random_split(ds, [0.5, 0.6])


@pytest.mark.parametrize(
    "n, test_size, train_size",
    [
        (10, 0.25, None),
        (11, 0.3, None),
        (100, None, 0.75),
        (7, 2, None),
        (50, 0.2, 0.5),
    ],
)
def test_train_test_split_sizes_match_sklearn(n, test_size, train_size):
    x = np.arange(n)
    ours = train_test_split(x, test_size=test_size, train_size=train_size, random_state=0)
    sk = pytest.importorskip("sklearn.model_selection")
    theirs = sk.train_test_split(x, test_size=test_size, train_size=train_size, random_state=0)
    assert [len(p) for p in ours] == [len(p) for p in theirs]
    assert not set(ours[0]) & set(ours[1])


def test_train_test_split_keeps_rows_together_and_types():
    x = np.arange(20).reshape(10, 2)
    y = fastdl.tensor(np.arange(10))
    names = [f"n{i}" for i in range(10)]
    x_tr, x_te, y_tr, y_te, n_tr, n_te = train_test_split(
        x, y, names, test_size=0.3, random_state=4
    )
    assert isinstance(y_tr, fastdl.Tensor) and isinstance(n_te, list)
    assert np.array_equal(x_tr[:, 0] // 2, y_tr.numpy())
    assert [f"n{v}" for v in y_te.tolist()] == n_te
    again = train_test_split(x, y, names, test_size=0.3, random_state=4)
    assert np.array_equal(again[0], x_tr)
    head = train_test_split(x, shuffle=False, test_size=0.2)
    assert head[1].tolist() == [[16, 17], [18, 19]]


def test_train_test_split_pandas():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": range(8), "b": list("abcdefgh")})
    train, test = train_test_split(df, test_size=0.25, random_state=0)
    assert isinstance(train, pd.DataFrame) and len(test) == 2
    assert sorted(train.index.tolist() + test.index.tolist()) == list(range(8))


def test_stratified_split_keeps_class_shares():
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    x = np.arange(100)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    assert np.bincount(y_te).tolist() == [12, 6, 2]
    assert np.bincount(y_tr).tolist() == [48, 24, 8]
    assert np.array_equal(y[x_te], y_te)
    sk = pytest.importorskip("sklearn.model_selection")
    y2 = np.array([0] * 7 + [1] * 5 + [2] * 4)
    ours = train_test_split(np.arange(16), y2, test_size=0.25, random_state=0, stratify=y2)[3]
    theirs = sk.train_test_split(np.arange(16), y2, test_size=0.25, random_state=0, stratify=y2)[3]
    assert len(ours) == len(theirs)
    assert np.abs(np.bincount(ours, minlength=3) - np.bincount(theirs, minlength=3)).max() <= 1


def test_train_test_split_errors():
    with pytest.raises(ValueError, match="inconsistent lengths"):
        train_test_split(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="test_size=1.5"):
        train_test_split(np.zeros(4), test_size=1.5)
    with pytest.raises(ValueError, match="both must be >= 1"):
        train_test_split(np.zeros(10), train_size=0.05)
    with pytest.raises(ValueError, match="stratify requires shuffle"):
        train_test_split(np.zeros(4), stratify=np.zeros(4), shuffle=False)


def test_batch_size_none_turns_automatic_batching_off():
    """PyTorch's rule: one sample at a time through default_convert, len = len(sampler)."""
    ds = TensorDataset(np.arange(6.0, dtype=np.float32).reshape(3, 2), np.array([0, 1, 2]))
    loader = DataLoader(ds, batch_size=None)
    items = list(loader)
    assert len(loader) == 3 and len(items) == 3
    assert [x.tolist() for x, _ in items] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert [y.item() for _, y in items] == [0, 1, 2]
    assert sorted(y.item() for _, y in DataLoader(ds, batch_size=None, shuffle=True)) == [0, 1, 2]
    with pytest.raises(ValueError, match="mutually exclusive with drop_last"):
        DataLoader(ds, batch_size=None, drop_last=True)
