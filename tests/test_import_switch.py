"""The import switch: a PyTorch program whose `torch...` imports become `fastdl...` by the same
path runs. One realistic program end to end, then each piece against PyTorch's semantics
(compared with torch itself when it is installed): fastdl.utils.data and its samplers,
fastdl.Generator, the grad modes, dtype aliases, cuda/cudnn stand-ins and nn.functional."""

import json
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import fastdl
import fastdl.nn as nn
import fastdl.nn.functional as F
import fastdl.utils.data as fud

try:
    import torch
    import torch.nn.functional as TF
    import torch.utils.data as tud
except ImportError:  # the fastdl-only checks still run
    torch = None

needs_torch = pytest.mark.skipif(
    torch is None, reason="torch is not installed: there is no PyTorch side to compare with"
)

# ---------------------------------------------------------------- a whole program

PROGRAM = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
import torch.utils.data
from torch.utils.data import (
    BatchSampler, DataLoader, Dataset, SequentialSampler, TensorDataset, WeightedRandomSampler,
    random_split,
)

torch.manual_seed(0)
torch.cuda.manual_seed(0)
torch.cuda.manual_seed_all(0)
torch.backends.cudnn.deterministic = True
torch.backends.cudnn.benchmark = False
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

g = torch.Generator().manual_seed(1234)
X = torch.randn(256, 8, generator=g)
w_true = torch.randn(8, 3, generator=g)
y = (X @ w_true).argmax(dim=1)

dataset = TensorDataset(X, y)
train_set, val_set = random_split(
    dataset, [0.75, 0.25], generator=torch.Generator().manual_seed(42)
)
weights = torch.ones(len(train_set))
sampler = WeightedRandomSampler(weights, num_samples=len(train_set), replacement=True,
                                generator=g)
train_loader = DataLoader(train_set, batch_size=32, sampler=sampler)
val_loader = torch.utils.data.DataLoader(
    val_set, batch_sampler=BatchSampler(SequentialSampler(val_set), 16, drop_last=False)
)


class Stream(torch.utils.data.IterableDataset):
    def __iter__(self):
        for i in range(10):
            yield X[i], y[i]


class MLP(nn.Module):
    def __init__(self, d_in: int, d_hidden: int, n_classes: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.drop = nn.Dropout(0.1)
        self.fc2 = nn.Linear(d_hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(F.relu(self.fc1(x))))


model = MLP(8, 32, 3).to(device)
optimizer = optim.Adam(model.parameters(), lr=1e-2)
criterion = nn.CrossEntropyLoss()


@torch.no_grad
def evaluate(loader):
    model.eval()
    correct = total = 0
    for xb, yb in loader:
        pred = model(xb.to(device)).argmax(dim=1)
        correct += (pred == yb.to(device)).sum().item()
        total += yb.shape[0]
    model.train()
    return correct / total


def train_epoch():
    losses = []
    for xb, yb in train_loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        with torch.set_grad_enabled(True):
            loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


acc_before = evaluate(val_loader)
first_loss = train_epoch()
for _ in range(14):
    last_loss = train_epoch()
acc_after = evaluate(val_loader)
stream_batches = [xb.shape[0] for xb, _ in DataLoader(Stream(), batch_size=4)]

with torch.inference_mode():
    logits = model(X[:4])

torch.set_grad_enabled(False)
frozen = model(X[:4])
torch.set_grad_enabled(True)

RESULTS = {
    "sizes": [len(train_set), len(val_set)],
    "batches": [len(train_loader), len(val_loader)],
    "stream_batches": stream_batches,
    "first_loss": first_loss,
    "last_loss": last_loss,
    "acc_before": acc_before,
    "acc_after": acc_after,
    "logits_requires_grad": logits.requires_grad,
    "frozen_requires_grad": frozen.requires_grad,
    "grad_enabled_at_end": torch.is_grad_enabled(),
}
'''


def switch_imports(source: str) -> str:
    """`import torch` -> `import fastdl as torch`; `torch.X` module paths -> `fastdl.X`."""
    source = re.sub(r"^import torch$", "import fastdl as torch", source, flags=re.M)
    source = re.sub(r"^import torch\.", "import fastdl.", source, flags=re.M)
    return re.sub(r"^from torch\.", "from fastdl.", source, flags=re.M)


def run_program(source: str, tmp_path, name: str) -> dict:
    path = tmp_path / name
    path.write_text(source + "\nimport json\nprint(json.dumps(RESULTS))\n")
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_sane(r: dict) -> None:
    assert r["sizes"] == [192, 64]  # 0.75 / 0.25 of 256
    assert r["batches"] == [6, 4]
    assert r["stream_batches"] == [4, 4, 2]
    assert r["last_loss"] < 0.5 * r["first_loss"]
    assert r["acc_after"] > 0.8 and r["acc_after"] > r["acc_before"] + 0.2
    assert r["logits_requires_grad"] is False and r["frozen_requires_grad"] is False
    assert r["grad_enabled_at_end"] is True


def test_switch_rewrites_every_torch_import():
    switched = switch_imports(PROGRAM)
    assert "import fastdl as torch" in switched
    assert "import fastdl.nn as nn" in switched and "from fastdl.utils.data import (" in switched
    assert not re.search(r"^(import|from) torch", switched, flags=re.M)


def test_program_runs_with_fastdl_imports(tmp_path):
    results = run_program(switch_imports(PROGRAM), tmp_path, "switched.py")
    check_sane(results)


@needs_torch
def test_same_program_under_pytorch_is_equally_sane(tmp_path):
    # Seeded streams differ between the libraries, so the numbers differ; the shapes of the
    # run (split sizes, batch counts) and its outcome must not.
    check_sane(run_program(PROGRAM, tmp_path, "original.py"))


# ---------------------------------------------------------------- fastdl.utils.data

UTILS_DATA_NAMES = [
    "Dataset", "IterableDataset", "TensorDataset", "DataLoader", "Subset", "random_split",
    "ConcatDataset", "default_collate", "Sampler", "SequentialSampler", "RandomSampler",
    "BatchSampler", "WeightedRandomSampler", "get_worker_info", "ChainDataset",
    "SubsetRandomSampler", "default_convert",
]


@pytest.mark.parametrize("name", UTILS_DATA_NAMES)
def test_utils_data_names_are_fastdl_data_objects(name):
    assert getattr(fud, name) is getattr(fastdl.data, name)
    assert fastdl.utils.data is fud


def test_import_forms_and_import_stays_light():
    code = textwrap.dedent(
        """
        import sys
        import fastdl
        heavy = [m for m in ("pandas", "matplotlib", "fastdl.utils", "fastdl.data")
                 if m in sys.modules]
        loader = fastdl.utils.data.DataLoader          # attribute access after import fastdl
        from fastdl.utils.data import DataLoader
        from fastdl.utils.data.dataloader import DataLoader as D2
        from fastdl.utils.data.sampler import BatchSampler
        from fastdl.utils.data.dataset import TensorDataset
        import fastdl.backends.cudnn as cudnn
        assert loader is DataLoader is D2 is fastdl.data.DataLoader
        assert BatchSampler is fastdl.data.BatchSampler
        assert cudnn is fastdl.backends.cudnn
        print(heavy)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # none of them loaded by `import fastdl`


def both_libs():
    libs = [("fastdl", fastdl, fud)]
    if torch is not None:
        libs.append(("torch", torch, tud))
    return libs


@pytest.mark.parametrize(
    "n, batch_size, drop_last", [(7, 3, False), (7, 3, True), (6, 3, True), (1, 4, False)]
)
def test_batch_and_sequential_sampler(n, batch_size, drop_last):
    expected = [
        list(range(i, min(i + batch_size, n)))
        for i in range(0, n, batch_size)
        if not drop_last or i + batch_size <= n
    ]
    for _, _, data in both_libs():
        sampler = data.BatchSampler(data.SequentialSampler(range(n)), batch_size, drop_last)
        assert list(sampler) == expected
        assert len(sampler) == len(expected)
        # plain iterables work as samplers too
        assert list(data.BatchSampler(range(n), batch_size, drop_last)) == expected
    assert list(fud.SequentialSampler(["a", "b", "c"])) == [0, 1, 2]


def error_type(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the type is the result
        return type(exc)
    return None


SAMPLER_ERRORS = [
    ("batch_size 0", lambda d: d.BatchSampler(range(3), 0, False)),
    ("batch_size bool", lambda d: d.BatchSampler(range(3), True, False)),
    ("batch_size float", lambda d: d.BatchSampler(range(3), 2.0, False)),
    ("drop_last int", lambda d: d.BatchSampler(range(3), 2, 1)),
    ("random replacement int", lambda d: d.RandomSampler(range(3), replacement=1)),
    ("random num_samples 0", lambda d: d.RandomSampler(range(3), num_samples=0)),
    ("random empty", lambda d: d.RandomSampler(range(0))),
    ("weighted 2-d", lambda d: d.WeightedRandomSampler([[1.0]], 3)),
    ("weighted num_samples 0", lambda d: d.WeightedRandomSampler([1.0], 0)),
    ("weighted num_samples float", lambda d: d.WeightedRandomSampler([1.0], 2.0)),
    ("weighted replacement int", lambda d: d.WeightedRandomSampler([1.0], 2, replacement=1)),
    ("weighted negative", lambda d: list(d.WeightedRandomSampler([1.0, -1.0], 3))),
    ("weighted all zero", lambda d: list(d.WeightedRandomSampler([0.0, 0.0], 3))),
    ("weighted inf", lambda d: list(d.WeightedRandomSampler([1.0, float("inf")], 3))),
    ("weighted nan", lambda d: list(d.WeightedRandomSampler([1.0, float("nan")], 3))),
    ("weighted empty", lambda d: list(d.WeightedRandomSampler([], 2))),
    (
        "weighted too many without replacement",
        lambda d: list(d.WeightedRandomSampler([1.0, 0.0, 1.0], 4, replacement=False)),
    ),
]

EXPECTED_SAMPLER_ERRORS = {
    "random replacement int": TypeError,
    "weighted negative": RuntimeError,
    "weighted all zero": RuntimeError,
    "weighted inf": RuntimeError,
    "weighted nan": RuntimeError,
    "weighted empty": RuntimeError,
    "weighted too many without replacement": RuntimeError,
}


@pytest.mark.parametrize("case, make", SAMPLER_ERRORS, ids=[c for c, _ in SAMPLER_ERRORS])
def test_sampler_errors_match_pytorch(case, make):
    got = error_type(lambda: make(fud))
    assert got is EXPECTED_SAMPLER_ERRORS.get(case, ValueError)
    if torch is not None:
        assert got is error_type(lambda: make(tud))
    with pytest.raises(got, match=r"^\[(Batch|Random|WeightedRandom)Sampler\]"):
        make(fud)


def test_random_sampler_semantics():
    g = fastdl.Generator().manual_seed(0)
    assert sorted(fud.RandomSampler(range(10), generator=g)) == list(range(10))
    # num_samples above the length: whole permutations, then part of one (as PyTorch)
    drawn = list(fud.RandomSampler(range(3), num_samples=7, generator=g))
    assert sorted(drawn) == [0, 0, 0, 1, 1, 2, 2] or sorted(drawn[:6]) == [0, 0, 1, 1, 2, 2]
    assert sorted(drawn[:3]) == [0, 1, 2] and sorted(drawn[3:6]) == [0, 1, 2]
    with_repl = list(fud.RandomSampler(range(3), replacement=True, num_samples=50, generator=g))
    assert len(with_repl) == 50 and set(with_repl) <= {0, 1, 2} and len(set(with_repl)) == 3
    a = list(fud.RandomSampler(range(20), generator=fastdl.Generator().manual_seed(5)))
    b = list(fud.RandomSampler(range(20), generator=fastdl.Generator().manual_seed(5)))
    assert a == b and a != list(range(20))
    assert len(fud.RandomSampler(range(4), num_samples=9)) == 9


def test_weighted_random_sampler_semantics():
    g = fastdl.Generator().manual_seed(1)
    s = fud.WeightedRandomSampler(fastdl.tensor([0.0, 3.0, 1.0, 0.0]), 4000, generator=g)
    draws = np.array(list(s))
    assert len(s) == 4000 and set(draws.tolist()) == {1, 2}
    assert abs((draws == 1).mean() - 0.75) < 0.04
    no_repl = list(fud.WeightedRandomSampler([1.0, 0.0, 0.0, 1.0], 4, replacement=False,
                                             generator=g))
    assert sorted(no_repl) == [0, 1, 2, 3] and set(no_repl[:2]) == {0, 3}
    s2 = fud.WeightedRandomSampler([1.0, 2.0], 5, generator=fastdl.Generator().manual_seed(3))
    s3 = fud.WeightedRandomSampler([1.0, 2.0], 5, generator=fastdl.Generator().manual_seed(3))
    assert list(s2) == list(s3)


def test_subset_random_sampler():
    s = fud.SubsetRandomSampler([5, 7, 9, 11], generator=fastdl.Generator().manual_seed(0))
    assert sorted(s) == [5, 7, 9, 11] and len(s) == 4


def tensor_dataset(lib, n=10):
    return lib.utils.data.TensorDataset(lib.arange(n))


LOADER_ERRORS = [
    ("sampler and shuffle", lambda lib, ds, d: d.DataLoader(
        ds, shuffle=True, sampler=d.SequentialSampler(ds))),
    ("batch_sampler and batch_size", lambda lib, ds, d: d.DataLoader(
        ds, batch_size=2, batch_sampler=d.BatchSampler(range(10), 3, False))),
    ("batch_sampler and shuffle", lambda lib, ds, d: d.DataLoader(
        ds, shuffle=True, batch_sampler=d.BatchSampler(range(10), 3, False))),
    ("batch_sampler and sampler", lambda lib, ds, d: d.DataLoader(
        ds, sampler=range(10), batch_sampler=d.BatchSampler(range(10), 3, False))),
    ("batch_sampler and drop_last", lambda lib, ds, d: d.DataLoader(
        ds, drop_last=True, batch_sampler=d.BatchSampler(range(10), 3, False))),
    ("negative num_workers", lambda lib, ds, d: d.DataLoader(ds, num_workers=-1)),
    ("negative timeout", lambda lib, ds, d: d.DataLoader(ds, timeout=-1)),
    ("batch_size 0", lambda lib, ds, d: d.DataLoader(ds, batch_size=0)),
    ("batch_size float", lambda lib, ds, d: d.DataLoader(ds, batch_size=1.5)),
    ("prefetch_factor without workers", lambda lib, ds, d: d.DataLoader(ds, prefetch_factor=2)),
    ("persistent without workers", lambda lib, ds, d: d.DataLoader(ds, persistent_workers=True)),
    ("iterable with shuffle", lambda lib, ds, d: d.DataLoader(Count.of(d)(), shuffle=True)),
    ("iterable with sampler", lambda lib, ds, d: d.DataLoader(Count.of(d)(), sampler=range(3))),
    ("iterable with batch_sampler", lambda lib, ds, d: d.DataLoader(
        Count.of(d)(), batch_sampler=[[0]])),
    ("len of iterable", lambda lib, ds, d: len(d.DataLoader(Count.of(d)(), batch_size=2))),
]


class Count:
    """An IterableDataset class for either library: 0, 1, ..., 4."""

    @staticmethod
    def of(data):
        class _Count(data.IterableDataset):
            def __iter__(self):
                return iter(range(5))

        return _Count


@pytest.mark.parametrize("case, make", LOADER_ERRORS, ids=[c for c, _ in LOADER_ERRORS])
def test_dataloader_argument_errors_match_pytorch(case, make):
    got = error_type(lambda: make(fastdl, tensor_dataset(fastdl), fud))
    assert got is (TypeError if case == "len of iterable" else ValueError)
    if torch is not None:
        assert got is error_type(lambda: make(torch, tensor_dataset(torch), tud))


def test_dataloader_samplers_batches_and_iterables():
    for name, lib, data in both_libs():
        ds = tensor_dataset(lib)
        by_sampler = [b[0].tolist() for b in data.DataLoader(ds, batch_size=2, sampler=[3, 1, 2])]
        assert by_sampler == [[3, 1], [2]], name
        loader = data.DataLoader(ds, batch_sampler=[[3, 1], [2]])
        assert [b[0].tolist() for b in loader] == [[3, 1], [2]] and len(loader) == 2, name
        assert loader.batch_size is None and loader.drop_last is False, name
        stream = Count.of(data)()
        assert [b.tolist() for b in data.DataLoader(stream, batch_size=2)] == [[0, 1], [2, 3],
                                                                              [4]], name
        assert [b.tolist() for b in data.DataLoader(stream, batch_size=2, drop_last=True)] == [
            [0, 1], [2, 3]], name
        assert [b.tolist() for b in data.DataLoader(stream, batch_size=2, shuffle=False)][0] == [
            0, 1], name
        auto = data.DataLoader(ds, batch_size=4, shuffle=True)
        assert isinstance(auto.sampler, data.RandomSampler), name
        assert isinstance(auto.batch_sampler, data.BatchSampler), name
        assert isinstance(data.DataLoader(ds).sampler, data.SequentialSampler), name
        assert data.get_worker_info() is None, name


def test_chain_and_concat_of_iterables():
    Stream = Count.of(fud)
    assert list(fud.ChainDataset([Stream(), Stream()])) == [0, 1, 2, 3, 4] * 2
    assert list(Stream() + Stream()) == [0, 1, 2, 3, 4] * 2
    with pytest.raises(TypeError, match=r"^\[ConcatDataset\]"):
        fud.ConcatDataset([Stream()])


def test_dataloader_generator_forms():
    ds = tensor_dataset(fastdl, 20)

    def orders(loader, epochs=2):
        return [[b[0].tolist() for b in loader] for _ in range(epochs)]

    g1 = orders(fud.DataLoader(ds, 5, shuffle=True, generator=fastdl.Generator().manual_seed(7)))
    g2 = orders(fud.DataLoader(ds, 5, shuffle=True, generator=fastdl.Generator().manual_seed(7)))
    assert g1 == g2 and g1[0] != g1[1]
    # an int seed keeps working (epoch e uses the order seeded by (seed, e))
    i1 = orders(fud.DataLoader(ds, 5, shuffle=True, generator=7))
    resumed = fud.DataLoader(ds, 5, shuffle=True, generator=7)
    resumed.set_epoch(1)
    assert orders(resumed, 1)[0] == i1[1]
    fastdl.manual_seed(3)
    a = orders(fud.DataLoader(ds, 5, shuffle=True))
    fastdl.manual_seed(3)
    assert orders(fud.DataLoader(ds, 5, shuffle=True)) == a
    with pytest.raises(TypeError, match=r"^\[DataLoader\] generator"):
        fud.DataLoader(ds, generator="seed")


@pytest.mark.parametrize("n", [3, 10, 11, 97, 100])
@pytest.mark.parametrize(
    "lengths", [[0.7, 0.3], [0.5, 0.5], [0.1, 0.2, 0.7], [1 / 3] * 3, [0.05, 0.95], [1.0]]
)
def test_random_split_fraction_lengths_match_pytorch(n, lengths):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts = fud.random_split(range(n), lengths, generator=fastdl.Generator().manual_seed(0))
    sizes = [len(p) for p in parts]
    assert sum(sizes) == n
    assert sorted(i for p in parts for i in p) == list(range(n))
    # an empty split warns, as in PyTorch
    assert len(caught) == sizes.count(0)
    assert all("[random_split] length of split" in str(w.message) for w in caught)
    if torch is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = [len(p) for p in tud.random_split(range(n), lengths)]
    else:  # PyTorch's rule by hand: floor, then the remainder one by one from the first
        expected = [int(np.floor(n * f)) for f in lengths]
        for i in range(n - sum(expected)):
            expected[i % len(expected)] += 1
    assert sizes == expected


@pytest.mark.parametrize(
    "lengths", [[0.5, 0.6], [1.2, -0.2], [5, 4], [0.5, 0.4]], ids=str
)
def test_random_split_errors_match_pytorch(lengths):
    got = error_type(lambda: fud.random_split(range(10), lengths))
    assert got is ValueError
    if torch is not None:
        assert error_type(lambda: tud.random_split(range(10), lengths)) is ValueError


def test_random_split_generator_forms():
    def split(gen):
        return [list(p.indices) for p in fud.random_split(range(10), [0.6, 0.4], generator=gen)]

    assert split(fastdl.Generator().manual_seed(1)) == split(fastdl.Generator().manual_seed(1))
    assert split(0) == split(0)  # int seeds keep working
    assert split(np.random.default_rng(2)) == split(np.random.default_rng(2))
    fastdl.manual_seed(9)
    a = split(None)
    fastdl.manual_seed(9)
    assert split(None) == a


# ---------------------------------------------------------------- fastdl.Generator


def test_generator_api():
    g = fastdl.Generator()
    assert g.initial_seed() == 67280421310721  # PyTorch's seed for a new Generator
    if torch is not None:
        assert torch.Generator().initial_seed() == g.initial_seed()
    assert g.manual_seed(5) is g and g.initial_seed() == 5
    assert fastdl.Generator(device="cpu").device == fastdl.device("cpu")
    s = g.seed()
    assert isinstance(s, int) and g.initial_seed() == s and 0 <= s < 2**64
    assert fastdl.Generator().manual_seed(-1).initial_seed() == 2**64 - 1  # as PyTorch
    with pytest.raises(RuntimeError, match=r"^\[Generator\]"):
        fastdl.Generator("cuda")
    with pytest.raises(TypeError, match=r"^\[manual_seed\]"):
        g.manual_seed("0")


def test_generator_state_round_trip_is_exact():
    g = fastdl.Generator().manual_seed(11)
    g.integers(0, 10, dtype=np.int32)  # leaves half of a 64-bit draw cached in the state
    state = g.get_state()
    assert isinstance(state, fastdl.Tensor) and state.dtype == fastdl.uint8 and state.ndim == 1
    first = [fastdl.randn(5, generator=g).tolist(), g.integers(0, 1000, 7, dtype=np.int32)]
    g.set_state(state)
    again = [fastdl.randn(5, generator=g).tolist(), g.integers(0, 1000, 7, dtype=np.int32)]
    assert first[0] == again[0] and first[1].tolist() == again[1].tolist()
    other = fastdl.Generator().set_state(state)
    assert other.initial_seed() == 11 and fastdl.randn(5, generator=other).tolist() == first[0]
    with pytest.raises(TypeError, match=r"^\[Generator.set_state\]"):
        g.set_state(fastdl.zeros(3))
    with pytest.raises(RuntimeError, match=r"^\[Generator.set_state\].*got 3 bytes"):
        g.set_state(fastdl.zeros(3, dtype=fastdl.uint8))


def test_global_generator():
    assert fastdl.manual_seed(4) is fastdl.default_generator
    assert fastdl.initial_seed() == 4
    a = fastdl.randn(6).tolist()
    state = fastdl.get_rng_state()
    b = fastdl.rand(3).tolist()
    fastdl.set_rng_state(state)
    assert fastdl.rand(3).tolist() == b
    fastdl.manual_seed(4)
    assert fastdl.randn(6).tolist() == a
    s = fastdl.seed()
    assert fastdl.initial_seed() == s


def draws(gen):
    t1 = fastdl.empty(4)
    t1.normal_(generator=gen)
    t2 = fastdl.empty(4)
    t2.uniform_(-1, 1, generator=gen)
    w = nn.init.xavier_uniform_(fastdl.empty(3, 2), generator=gen)
    return [
        fastdl.randn(2, 3, generator=gen).tolist(),
        fastdl.rand(4, generator=gen).tolist(),
        fastdl.randint(0, 10, (5,), generator=gen).tolist(),
        fastdl.randint(10, (5,), generator=gen).tolist(),
        fastdl.randperm(8, generator=gen).tolist(),
        t1.tolist(),
        t2.tolist(),
        w.tolist(),
    ]


def test_generator_argument_everywhere_gives_reproducible_streams():
    a = draws(fastdl.Generator().manual_seed(21))
    b = draws(fastdl.Generator().manual_seed(21))
    c = draws(fastdl.Generator().manual_seed(22))
    assert a == b and a != c
    assert sorted(a[4]) == list(range(8)) and all(0 <= v < 10 for v in a[2] + a[3])
    assert all(-1 <= v <= 1 for v in a[6])
    # a generator argument leaves the global stream alone
    fastdl.manual_seed(0)
    expected = fastdl.randn(3).tolist()
    fastdl.manual_seed(0)
    draws(fastdl.Generator().manual_seed(1))
    assert fastdl.randn(3).tolist() == expected
    with pytest.raises(TypeError, match=r"^\[randn\] generator"):
        fastdl.randn(2, generator=3)


def test_random_functions_dtype_rules():
    assert fastdl.randn(2).dtype == fastdl.float32
    assert fastdl.randn(2, dtype=fastdl.float64).dtype == fastdl.float64
    assert fastdl.randint(0, 3, (2,)).dtype == fastdl.int64
    assert fastdl.randperm(3).dtype == fastdl.int64
    with pytest.raises(TypeError, match=r"^\[randn\] expected a floating point dtype"):
        fastdl.randn(2, dtype=fastdl.int64)
    x = fastdl.zeros(2, 3)
    assert fastdl.randn_like(x).shape == (2, 3) and fastdl.rand_like(x).dtype == fastdl.float32
    r = fastdl.randint_like(x, 3, 6)
    assert r.shape == (2, 3) and all(3 <= v < 6 for v in r.flatten().tolist())


# ---------------------------------------------------------------- grad modes


def grad_mode_trace(lib):
    """The grad/inference flags seen along one scripted use of every form."""
    seen = []

    def mark():
        inference = lib.is_inference_mode_enabled()
        seen.append((lib.is_grad_enabled(), inference))

    @lib.no_grad
    def bare_no_grad():
        mark()

    @lib.no_grad()
    def called_no_grad():
        mark()

    @lib.enable_grad
    def bare_enable():
        mark()

    @lib.set_grad_enabled(False)
    def deco_off():
        mark()

    @lib.inference_mode
    def bare_inference():
        mark()

    @lib.inference_mode(False)
    def no_inference():
        mark()

    @lib.no_grad()
    def gen():
        mark()
        yield 1
        mark()
        yield 2

    mark()
    bare_no_grad()
    called_no_grad()
    mark()
    deco_off()  # decorating did not switch the mode at definition time
    mark()
    with lib.no_grad():
        mark()
        bare_enable()
        with lib.enable_grad():
            mark()
        no_inference()
    lib.set_grad_enabled(False)  # a plain call switches the mode until changed
    mark()
    bare_enable()
    mark()
    with lib.set_grad_enabled(True):
        mark()
    mark()
    lib.set_grad_enabled(True)
    mark()
    with lib.inference_mode():
        mark()
        with lib.inference_mode(False):
            mark()
        with lib.enable_grad():
            mark()
    bare_inference()
    with lib.inference_mode(False):
        mark()
    it = gen()
    next(it)
    mark()  # between the generator's steps the caller's mode holds
    next(it)
    return seen


EXPECTED_TRACE = [
    (True, False), (False, False), (False, False), (True, False), (False, False),
    (True, False), (False, False), (True, False), (True, False), (True, False),
    (False, False), (True, False), (False, False), (True, False), (False, False),
    (True, False), (False, True), (True, False), (True, True), (False, True),
    (True, False), (False, False), (True, False), (False, False),
]


def test_grad_mode_forms():
    assert grad_mode_trace(fastdl) == EXPECTED_TRACE
    assert fastdl.is_grad_enabled() and not fastdl.is_inference_mode_enabled()


@needs_torch
def test_grad_mode_forms_match_pytorch():
    assert grad_mode_trace(torch) == EXPECTED_TRACE
    assert torch.is_grad_enabled()


def test_grad_modes_stop_recording():
    x = fastdl.ones(3, requires_grad=True)

    @fastdl.no_grad
    def f(t):
        return t * 2

    with fastdl.inference_mode():
        y = x * 2
    assert not f(x).requires_grad and not y.requires_grad
    # NOTE: unlike PyTorch's inference tensors, y is an ordinary tensor and can be used later
    z = (y * x).sum()
    z.backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]
    assert f.__name__ == "f"  # functools.wraps
    with pytest.raises(TypeError, match=r"^\[set_grad_enabled\]"):
        fastdl.set_grad_enabled("yes")


# ---------------------------------------------------------------- dtypes, device, cuda


@pytest.mark.parametrize(
    "alias, target",
    [("float", "float32"), ("double", "float64"), ("long", "int64"), ("int", "int32"),
     ("bool", "bool"), ("half", "float16"), ("short", "int16")],
)
def test_dtype_aliases(alias, target):
    assert getattr(fastdl, alias) == getattr(fastdl, target if target != "bool" else "bool_")
    if torch is not None:
        assert getattr(torch, alias) == getattr(torch, target)


def test_unsupported_dtypes_raise_clear_type_errors():
    for d in (fastdl.half, fastdl.float16, fastdl.bfloat16):
        with pytest.raises(TypeError, match=r"^\[dtype\].*(float16|bfloat16)"):
            fastdl.zeros(2, dtype=d)
        with pytest.raises(TypeError, match=r"^\[dtype\]"):
            fastdl.tensor([1.0], dtype=d)
        with pytest.raises(TypeError, match=r"^\[dtype\]"):
            fastdl.ones(2).to(d)


def test_default_dtype():
    assert fastdl.get_default_dtype() == fastdl.float32
    fastdl.set_default_dtype(fastdl.float32)
    assert fastdl.get_default_dtype() == fastdl.float32
    with pytest.raises(NotImplementedError, match=r"^\[set_default_dtype\].*float64"):
        fastdl.set_default_dtype(fastdl.float64)
    with pytest.raises(TypeError, match=r"^\[set_default_dtype\].*int64"):
        fastdl.set_default_dtype(fastdl.int64)
    assert fastdl.get_default_dtype() == fastdl.float32
    assert isinstance(fastdl.float32, fastdl.dtype)


def test_device_and_cuda_stand_ins():
    assert fastdl.device("cpu") == fastdl.device("cpu") and fastdl.device("cpu").type == "cpu"
    assert isinstance(fastdl.cuda.is_available(), bool)
    assert isinstance(fastdl.cuda.device_count(), int)
    fastdl.manual_seed(8)
    expected = fastdl.randn(3).tolist()
    fastdl.manual_seed(8)
    assert fastdl.cuda.manual_seed(123) is None and fastdl.cuda.manual_seed_all(123) is None
    fastdl.cuda.synchronize()
    fastdl.cuda.empty_cache()
    assert fastdl.randn(3).tolist() == expected  # the CPU stream is untouched
    with pytest.raises(TypeError, match=r"^\[cuda.manual_seed\]"):
        fastdl.cuda.manual_seed("1")


def test_cudnn_and_mps_flags_are_settable_and_inert():
    cudnn = fastdl.backends.cudnn
    saved = (cudnn.deterministic, cudnn.benchmark, cudnn.enabled)
    try:
        fastdl.manual_seed(2)
        before = fastdl.randn(4).tolist()
        cudnn.deterministic, cudnn.benchmark, cudnn.enabled = True, True, False
        fastdl.manual_seed(2)
        assert fastdl.randn(4).tolist() == before
        assert cudnn.deterministic is True and cudnn.benchmark is True
        assert cudnn.is_available() is False and cudnn.version() is None
        assert fastdl.backends.mps.is_available() is False
    finally:
        cudnn.deterministic, cudnn.benchmark, cudnn.enabled = saved


# ---------------------------------------------------------------- nn.functional


FUNCTIONAL_FOR_LAYER = {
    "Linear": ["linear"],
    "Conv2d": ["conv2d"],
    "MaxPool2d": ["max_pool2d", "max_pool2d_with_indices"],
    "ReLU": ["relu", "relu_"],
    "Sigmoid": ["sigmoid"],
    "Tanh": ["tanh"],
    "Dropout": ["dropout"],
    "MSELoss": ["mse_loss"],
    "CrossEntropyLoss": ["cross_entropy"],
    "NLLLoss": ["nll_loss"],
    "BCELoss": ["binary_cross_entropy"],
    "BCEWithLogitsLoss": ["binary_cross_entropy_with_logits"],
    "L1Loss": ["l1_loss"],
    "SmoothL1Loss": ["smooth_l1_loss"],
    "HuberLoss": ["huber_loss"],
    "KLDivLoss": ["kl_div"],
    "CosineEmbeddingLoss": ["cosine_embedding_loss"],
    "Conv1d": ["conv1d"],
    "Embedding": ["embedding"],
    "BatchNorm1d": ["batch_norm"],
    "BatchNorm2d": ["batch_norm"],
    "LayerNorm": ["layer_norm"],
    "GroupNorm": ["group_norm"],
    "Dropout2d": ["dropout2d"],
    "AvgPool1d": ["avg_pool1d"],
    "AvgPool2d": ["avg_pool2d"],
    "MaxPool1d": ["max_pool1d", "max_pool1d_with_indices"],
    "AdaptiveAvgPool2d": ["adaptive_avg_pool2d"],
    "AdaptiveMaxPool2d": ["adaptive_max_pool2d", "adaptive_max_pool2d_with_indices"],
    "LeakyReLU": ["leaky_relu", "leaky_relu_"],
    "GELU": ["gelu"],
    "ELU": ["elu", "elu_"],
    "SiLU": ["silu"],
    "Softplus": ["softplus"],
    "Hardtanh": ["hardtanh", "hardtanh_"],
    "ReLU6": ["relu6"],
    "Softmax": ["softmax"],
    "LogSoftmax": ["log_softmax"],
}
# Containers, shape helpers and the recurrent layers have no functional form in PyTorch either.
NO_FUNCTIONAL = {
    "Module", "Sequential", "Identity", "Flatten", "Unflatten", "Parameter", "ModuleList",
    "ModuleDict", "ParameterList", "ParameterDict", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell",
    "GRUCell", "RNNBase", "RNNCellBase",
}


def test_every_nn_layer_has_its_functional_form():
    layers = {n for n in nn.__all__ if n[0].isupper()} - NO_FUNCTIONAL
    assert layers <= set(FUNCTIONAL_FOR_LAYER), layers - set(FUNCTIONAL_FOR_LAYER)
    for names in FUNCTIONAL_FOR_LAYER.values():
        for name in names:
            assert callable(getattr(F, name)), name
            if torch is not None:
                assert hasattr(TF, name), name


def test_inplace_relu_and_leaky_relu_write_through_aliases():
    x = fastdl.tensor([-1.0, 2.0, -3.0])
    alias = x
    assert F.relu(x, inplace=True) is x and alias.tolist() == [0.0, 2.0, 0.0]
    y = fastdl.tensor([-1.0, 2.0, -3.0])
    assert F.relu_(y) is y and y.tolist() == [0.0, 2.0, 0.0]
    z = fastdl.tensor([-1.0, 2.0, -4.0])
    assert F.leaky_relu_(z, 0.5) is z and z.tolist() == [-0.5, 2.0, -2.0]
    z2 = fastdl.tensor([-1.0, 2.0])
    assert F.leaky_relu(z2, 0.25, inplace=True) is z2 and z2.tolist() == [-0.25, 2.0]
    m = nn.ReLU(inplace=True)
    h = fastdl.tensor([-2.0, 5.0])
    assert m(h) is h and h.tolist() == [0.0, 5.0]


def inplace_grads(lib, fn_name, *args):
    w = lib.tensor([-1.5, 0.5, 2.0, -0.25], requires_grad=True)
    h = w * 3
    out = getattr(lib.nn.functional, fn_name)(h, *args)
    (out * lib.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    return out.detach().tolist(), w.grad.tolist()


@pytest.mark.parametrize("fn_name, args", [("relu_", ()), ("leaky_relu_", (0.2,))])
def test_inplace_activations_gradients(fn_name, args):
    values, grads = inplace_grads(fastdl, fn_name, *args)
    slope = args[0] if args else 0.0
    h = [-4.5, 1.5, 6.0, -0.75]
    assert np.allclose(values, [v if v > 0 else slope * v for v in h])
    assert np.allclose(grads, [3 * c * (1 if v > 0 else slope) for v, c in zip(h, [1, 2, 3, 4])])
    if torch is not None:
        t_values, t_grads = inplace_grads(torch, fn_name, *args)
        assert np.allclose(values, t_values) and np.allclose(grads, t_grads)


def test_inplace_dropout_uses_the_same_draws():
    fastdl.manual_seed(5)
    out = F.dropout(fastdl.ones(64), 0.5)
    fastdl.manual_seed(5)
    x = fastdl.ones(64)
    assert F.dropout(x, 0.5, inplace=True) is x
    assert x.tolist() == out.tolist() and set(x.tolist()) == {0.0, 2.0}
    w = fastdl.ones(8, requires_grad=True)
    h = w * 1.0
    F.dropout(h, 0.5, training=True, inplace=True)
    h.sum().backward()
    assert w.grad.tolist() == h.detach().tolist()  # d(x * mask)/dx = mask
    kept = fastdl.ones(3)
    assert F.dropout(kept, 0.5, training=False, inplace=True).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_weighted_regression_losses(name, reduction):
    i = [[1.0, 2.0, 3.0], [0.0, 1.0, 5.0]]
    t = [[0.5, 0.0, 1.0], [0.0, 2.0, 4.0]]
    wt = [[1.0, 2.0, 0.5], [3.0, 0.0, 1.0]]
    got = getattr(F, name)(fastdl.tensor(i), fastdl.tensor(t), reduction=reduction,
                           weight=fastdl.tensor(wt))
    err = np.abs(np.array(i) - np.array(t))
    err = err**2 if name == "mse_loss" else err
    weighted = err * np.array(wt)
    expected = {"none": weighted, "sum": weighted.sum(), "mean": weighted.sum() / np.sum(wt)}
    assert np.allclose(got.detach().numpy(), expected[reduction], rtol=1e-6)
    if torch is not None:
        ref = getattr(TF, name)(torch.tensor(i), torch.tensor(t), reduction=reduction,
                                weight=torch.tensor(wt))
        assert np.allclose(got.detach().numpy(), ref.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=rf"^\[{name}\] weight and input must have the same"):
        getattr(F, name)(fastdl.tensor(i), fastdl.tensor(t), weight=fastdl.ones(3))


def test_max_pool2d_with_indices():
    x = fastdl.tensor(np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)[..., ::-1].copy())
    out, idx = F.max_pool2d_with_indices(x, 2)
    assert out.shape == (1, 2, 2, 2) and idx.shape == (1, 2, 2, 2)
    assert out.tolist() == F.max_pool2d(x, 2).tolist()
    if torch is not None:
        t_out, t_idx = TF.max_pool2d_with_indices(torch.tensor(x.numpy()), 2)
        assert out.tolist() == t_out.tolist() and idx.tolist() == t_idx.tolist()


def test_import_fastdl_leaves_the_optional_parts_unloaded():
    # fastdl.compile, fastdl.distributed and fastdl.nn.parallel load on first use (import time
    # is a benchmark goal); each is still reachable by its PyTorch path.
    code = textwrap.dedent(
        """
        import json, sys
        import fastdl
        lazy = ["fastdl._compile", "fastdl.distributed", "fastdl.nn.parallel", "mpi4py"]
        before = [m for m in lazy if m in sys.modules]
        from fastdl import compile
        import fastdl.nn as nn
        ddp = nn.parallel.DistributedDataParallel
        print(json.dumps([before, compile.__module__, ddp.__module__, "compile" in dir(fastdl)]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, compile_module, ddp_module, listed = json.loads(out.stdout.splitlines()[-1])
    assert before == []
    assert compile_module == "fastdl._compile" and ddp_module.startswith("fastdl.nn.parallel")
    assert listed


def test_import_fastdl_does_not_run_numpy_testing_or_f2py():
    # array_api_compat's NumPy namespace names them (`from numpy import *`); fastdl registers
    # them as lazy modules, which run on first use and then work as ever.
    code = textwrap.dedent(
        """
        import json, sys, types
        import fastdl
        loaded = [type(sys.modules[m]) is types.ModuleType for m in ("numpy.testing", "numpy.f2py")]
        fastdl.randn(3).sum()
        import numpy as np
        from numpy.testing import assert_array_equal
        assert_array_equal(np.arange(3), [0, 1, 2])
        print(json.dumps([loaded, type(sys.modules["numpy.testing"]) is types.ModuleType,
                          callable(np.f2py.run_main), np.testing.assert_array_equal is assert_array_equal]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, testing_ran, f2py_works, same = json.loads(out.stdout.splitlines()[-1])
    assert loaded == [False, False]  # registered, not run
    assert testing_ran and f2py_works and same
