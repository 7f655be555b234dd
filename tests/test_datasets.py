"""Real datasets: IDX parsing of valid and malformed files, MNIST/FashionMNIST over tiny IDX
files written here, and scikit-learn's digits resampled to 28x28."""

import gzip
import tracemalloc
import zlib

import numpy as np
import pytest

from fastdl.data import DataLoader, Normalize
from fastdl.datasets import MNIST, FashionMNIST, IDXError, load_digits, read_idx, write_idx
from fastdl.datasets import idx as idx_module
from fastdl.datasets.digits import resize_matrix


def write_mnist(folder, n_train=6, n_test=4, compress=False, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress)
        arrays[prefix] = (images, labels)
    return arrays


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_idx_roundtrip(tmp_path, dtype, compress):
    arr = (np.arange(24) - 5).reshape(2, 3, 4).astype(dtype)
    write_idx(tmp_path / "a", arr, compress=compress)
    back = read_idx(tmp_path / "a")
    assert back.dtype == arr.dtype and back.shape == (2, 3, 4) and np.array_equal(back, arr)


def test_idx_bytes_are_the_standard_layout(tmp_path):
    write_idx(tmp_path / "l", np.array([7, 2], np.uint8))
    assert (tmp_path / "l").read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 2])
    write_idx(tmp_path / "i", np.array([258], np.int32))
    assert (tmp_path / "i").read_bytes()[-4:] == bytes([0, 0, 1, 2])  # big-endian


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "too short for an IDX header"),
        (b"\x00\x00", "too short for an IDX header"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "bad magic number 0x01000801"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "bad magic number 0x00000701"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x01", "truncated header: 3 dimensions need 16 bytes"),
        (
            b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02",
            "truncated: shape \\(3,\\) of uint8 needs 3 data bytes, found 2",
        ),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "has trailing bytes"),
        (b"PK\x03\x04 a zip, not IDX at all", "bad magic number"),
    ],
)
def test_malformed_idx(tmp_path, payload, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(payload)
    with pytest.raises(IDXError, match=message) as info:
        read_idx(path)
    assert "bad-idx" in str(info.value)


def test_corrupt_gzip(tmp_path):
    good = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 200]) + bytes(200))
    (tmp_path / "cut.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(IDXError, match="cut.gz: corrupt or truncated gzip"):
        read_idx(tmp_path / "cut.gz")


def test_expected_magic(tmp_path):
    write_idx(tmp_path / "labels", np.zeros(3, np.uint8))
    with pytest.raises(IDXError, match="expected 0x00000803 \\(uint8 with 3 dimension"):
        read_idx(tmp_path / "labels", magic=0x803)


def _gzip_bomb(path, header, payload, zeros):
    """A small gzip file: `header` + `payload` followed by `zeros` zero bytes (which compress
    about 1000:1)."""
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: gzip container
    parts = [comp.compress(header + payload)]
    chunk = bytes(1 << 20)
    for _ in range(zeros >> 20):
        parts.append(comp.compress(chunk))
    parts.append(comp.flush())
    path.write_bytes(b"".join(parts))


def test_gzip_bomb_is_refused_without_inflating_it(tmp_path, monkeypatch):
    # Regression (issue 9, item 4): the reader inflated the whole .gz before checking the
    # header's sizes, so a tiny file declaring one image could allocate gigabytes.
    path = tmp_path / "train-images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (1, 28, 28))
    _gzip_bomb(path, header, bytes(784), 256 << 20)
    assert path.stat().st_size < 2 << 20  # 256 MiB inflated, well under 2 MB on disk

    tracemalloc.start()
    try:
        with pytest.raises(IDXError, match="train-images-idx3-ubyte.gz: has trailing bytes") as e:
            read_idx(path, magic=0x803)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "needs 784 data bytes" in str(e.value)
    assert peak < 16 << 20, f"peak {peak} bytes while refusing a 2 MB file"

    # and it reads no more than the declared sizes plus the bounded slack
    reads = []
    real_open = idx_module._open

    def counting_open(p):
        f = real_open(p)
        real_read = f.read

        def read(n=-1):
            data = real_read(n)
            reads.append(len(data))
            return data

        f.read = read
        return f

    monkeypatch.setattr(idx_module, "_open", counting_open)
    with pytest.raises(IDXError, match="has trailing bytes"):
        read_idx(path, magic=0x803)
    assert 0 < sum(reads) <= 16 + 784 + idx_module.TRAILING_SLACK


def test_gzip_file_with_valid_sizes_streams_and_checks_the_crc(tmp_path):
    arr = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    write_idx(tmp_path / "a.gz", arr, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz", magic=0x803), arr)
    data = bytearray((tmp_path / "a.gz").read_bytes())
    data[-8] ^= 1  # the gzip trailer's CRC32
    (tmp_path / "b.gz").write_bytes(bytes(data))
    with pytest.raises(IDXError, match="b.gz: corrupt or truncated gzip"):
        read_idx(tmp_path / "b.gz")


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "dims, true_size",
    [
        ((65536, 65536, 65536, 65536), 2**64),  # wraps int64 to exactly 0
        ((0xFFFFFFFF,) * 3, 0xFFFFFFFF**3),
        ((0, 0xFFFFFFFF, 0xFFFFFFFF), 0xFFFFFFFF**2),  # zero elements, but not addressable
    ],
)
def test_idx_dims_whose_product_overflows(tmp_path, compress, dims, true_size):
    # Regression (issue 9, item 7): the size was an int64 product that wrapped, giving a bare
    # numpy ValueError (no file name) or a message with the wrapped value.
    data = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    path = tmp_path / ("huge-idx.gz" if compress else "huge-idx")
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(IDXError, match="huge-idx.*too large") as e:
        read_idx(path)
    assert str(true_size) in str(e.value)


def test_idx_trailing_bytes_in_gzip_are_counted(tmp_path):
    data = bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 2, 9])
    (tmp_path / "t.gz").write_bytes(gzip.compress(data))
    with pytest.raises(IDXError, match="t.gz: has trailing bytes: .* needs 2 data bytes, found 3"):
        read_idx(tmp_path / "t.gz")


# ---------------------------------------------------------------- MNIST


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_both_splits(tmp_path, compress):
    arrays = write_mnist(tmp_path, compress=compress)
    train, test = MNIST(tmp_path), MNIST(tmp_path, train=False)
    assert len(train) == 6 and len(test) == 4
    assert train.data.dtype == np.uint8 and np.array_equal(train.data, arrays["train"][0])
    assert train.targets.dtype == np.int64 and np.array_equal(test.targets, arrays["t10k"][1])
    image, label = train[2]
    assert image.shape == (1, 28, 28) and image.dtype == np.float32
    np.testing.assert_allclose(image.numpy()[0], arrays["train"][0][2] / 255.0, rtol=1e-6)
    assert label == int(arrays["train"][1][2]) and isinstance(label, int)


@pytest.mark.parametrize("which", ["images", "labels"])
def test_mnist_refuses_a_wrong_shape_from_the_header_before_inflating(tmp_path, which):
    # A .gz whose header declares a shape MNIST rejects is refused before its payload is read.
    write_mnist(tmp_path, compress=True)
    if which == "images":
        path, dims, message = tmp_path / "train-images-idx3-ubyte.gz", (1, 8192, 8192), "28x28"
    else:
        path, dims, message = tmp_path / "train-labels-idx1-ubyte.gz", (64 << 20,), "6 images"
    header = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    _gzip_bomb(path, header, b"", 64 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(IDXError, match=message):
            MNIST(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"peak {peak} bytes: the payload was inflated before the check"


def test_mnist_torchvision_layout_and_fashion(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw")
    write_mnist(tmp_path / "FashionMNIST" / "raw", compress=True)
    assert len(MNIST(tmp_path)) == 6
    fashion = FashionMNIST(tmp_path, train=False)
    assert len(fashion) == 4 and fashion.classes[9] == "Ankle boot"


def test_mnist_dataloader_batches_match_samples(tmp_path):
    write_mnist(tmp_path, n_train=10)
    ds = MNIST(tmp_path, transform=Normalize([0.1307], [0.3081]))
    assert hasattr(ds, "get_batch")
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert x.shape == (4, 1, 28, 28) and y.tolist() == ds.targets[:4].tolist()
    np.testing.assert_allclose(x.numpy()[3], ds[3][0], rtol=1e-6)
    assert not hasattr(MNIST(tmp_path, transform=lambda t: t), "get_batch")


def test_missing_directory_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="data directory .*nowhere.* does not exist"):
        MNIST(tmp_path / "nowhere")
    with pytest.raises(
        FileNotFoundError,
        match="missing file train-images-idx3-ubyte \\(or train-images-idx3-ubyte.gz\\)",
    ):
        MNIST(tmp_path)
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="missing file t10k-labels-idx1-ubyte"):
        MNIST(tmp_path, train=False)


def test_malformed_mnist_files(tmp_path):
    write_mnist(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    labels = tmp_path / "train-labels-idx1-ubyte"
    good_images, good_labels = images.read_bytes(), labels.read_bytes()

    images.write_bytes(good_labels)  # a labels file where the images belong
    with pytest.raises(
        IDXError,
        match=r"\[MNIST\] .*train-images-idx3-ubyte: bad magic number 0x00000801, "
        r"expected 0x00000803",
    ):
        MNIST(tmp_path)
    images.write_bytes(good_images[:-100])
    with pytest.raises(IDXError, match="train-images-idx3-ubyte: truncated"):
        MNIST(tmp_path)
    write_idx(images, np.zeros((6, 27, 27), np.uint8))
    with pytest.raises(IDXError, match="expected 28x28 images, got 27x27"):
        MNIST(tmp_path)
    write_idx(images, np.zeros((5, 28, 28), np.uint8))
    with pytest.raises(IDXError, match="holds 5 images but .* holds 6 labels"):
        MNIST(tmp_path)
    images.write_bytes(good_images)
    write_idx(labels, np.array([0, 1, 2, 3, 4, 10], np.uint8))
    with pytest.raises(IDXError, match=r"labels must be in \[0, 10\), got 10"):
        MNIST(tmp_path)


# ---------------------------------------------------------------- digits


def test_resize_matrix_is_convex_and_centred():
    m = resize_matrix(8, 28)
    assert m.shape == (28, 8)
    np.testing.assert_allclose(m.sum(1), 1.0)
    assert (m >= 0).all()
    np.testing.assert_allclose(m, m[::-1, ::-1])  # symmetric: no half-pixel shift
    np.testing.assert_allclose(resize_matrix(5, 5), np.eye(5))


def test_load_digits():
    pytest.importorskip("sklearn")
    images, labels = load_digits()
    assert images.shape == (1797, 1, 28, 28) and images.dtype == np.float32
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() > 0.99
    assert np.bincount(labels).tolist()[:3] == [178, 182, 177]
    small, _ = load_digits(image_size=8)
    from sklearn.datasets import load_digits as sk_digits

    np.testing.assert_allclose(small[:, 0], sk_digits().images / 16.0)
    # the resampled image keeps the original's ink: equal means up to interpolation at edges
    np.testing.assert_allclose(images.mean(axis=(1, 2, 3)), small.mean(axis=(1, 2, 3)), atol=0.02)


def test_load_digits_errors(monkeypatch):
    with pytest.raises(ValueError, match="image_size must be an int >= 8"):
        load_digits(image_size=4)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a)
    )
    with pytest.raises(ImportError, match=r"pip install 'fastdl\[demo\]'"):
        load_digits()
