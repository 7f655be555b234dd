"""Preprocessing: every step against hand-computed values (and scikit-learn where installed),
the fit-on-train / transform-test pattern, errors, and state that saves and loads."""

import io

import numpy as np
import pytest

import fastdl
from fastdl.data import (
    Compose,
    MinMaxScaler,
    Normalize,
    OneHotEncoder,
    SimpleImputer,
    StandardScaler,
    one_hot,
)

X_TRAIN = np.array([[1.0, 10.0, 5.0], [3.0, 20.0, 5.0], [5.0, 60.0, 5.0]])
X_TEST = np.array([[2.0, 30.0, 6.0]])


def roundtrip(pre, fresh, tmp_path):
    """Save `pre`'s state with fastdl.save, load it into `fresh`; return `fresh`."""
    path = tmp_path / "pre.safetensors"
    fastdl.save({"pre": pre.state_dict()}, path)
    return fresh.load_state_dict(fastdl.load(path)["pre"])


# ---------------------------------------------------------------- StandardScaler


def test_standard_scaler_hand_values():
    s = StandardScaler().fit(X_TRAIN)
    assert s.mean.tolist() == [3.0, 30.0, 5.0]
    std1 = np.sqrt(8 / 3)  # (4 + 0 + 4) / 3
    std2 = np.sqrt((400 + 100 + 900) / 3)
    np.testing.assert_allclose(s.scale, [std1, std2, 1.0])  # constant feature: scale 1
    out = s.transform(X_TEST)
    np.testing.assert_allclose(out, [[-1 / std1, 0.0, 1.0]])
    np.testing.assert_allclose(s.inverse_transform(out), X_TEST)
    assert out.dtype == np.float64
    assert s.transform(X_TRAIN.astype(np.float32)).dtype == np.float32
    assert s.transform(np.array([[1, 2, 3]])).dtype == np.float32


def test_standard_scaler_matches_sklearn():
    sk = pytest.importorskip("sklearn.preprocessing")
    rng = np.random.default_rng(0)
    train, test = rng.normal(3, 2, (50, 4)), rng.normal(3, 2, (10, 4))
    ours = StandardScaler().fit(train).transform(test)
    theirs = sk.StandardScaler().fit(train).transform(test)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    ours = MinMaxScaler((-1, 1)).fit(train).transform(test)
    theirs = sk.MinMaxScaler((-1, 1)).fit(train).transform(test)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_scaler_tensor_in_tensor_out_and_1d():
    s = StandardScaler().fit(fastdl.tensor([[0.0], [2.0]]))
    out = s.transform(fastdl.tensor([[4.0]]))
    assert isinstance(out, fastdl.Tensor) and out.tolist() == [[3.0]]
    assert StandardScaler().fit_transform(np.array([1.0, 3.0])).tolist() == [-1.0, 1.0]


def test_scaler_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        StandardScaler().transform(X_TEST)
    s = StandardScaler().fit(X_TRAIN)
    with pytest.raises(ValueError, match="expected 3 features \\(as fitted\\), got 2"):
        s.transform(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="numeric"):
        StandardScaler().fit(np.array([["a"], ["b"]]))
    with pytest.raises(ValueError, match="0 samples"):
        MinMaxScaler().fit(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="lo < hi"):
        MinMaxScaler((1, 0))


def test_scaler_on_csv_with_non_numeric_column():
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(io.StringIO("age,city\n30,Paris\n40,Oslo\n"))
    with pytest.raises(ValueError, match="column 'city' is not numeric.*OneHotEncoder"):
        StandardScaler().fit(df)


def test_scaler_dataframe_columns_are_checked():
    pd = pytest.importorskip("pandas")
    train = pd.DataFrame({"a": [1.0, 3.0], "b": [2.0, 4.0]})
    s = StandardScaler().fit(train)
    assert s.feature_names == ["a", "b"]
    assert s.transform(train).tolist() == [[-1.0, -1.0], [1.0, 1.0]]
    with pytest.raises(ValueError, match="differ from the fitted columns"):
        s.transform(train[["b", "a"]])


def test_minmax_hand_values_and_clip():
    s = MinMaxScaler().fit(X_TRAIN)
    out = s.transform(X_TEST)
    np.testing.assert_allclose(out, [[0.25, 0.4, 1.0]])  # constant feature: x - min
    np.testing.assert_allclose(s.inverse_transform(out), X_TEST)
    clipped = MinMaxScaler(clip=True).fit(X_TRAIN).transform(np.array([[9.0, 0.0, 5.0]]))
    assert clipped.tolist() == [[1.0, 0.0, 0.0]]


@pytest.mark.parametrize("cls", [StandardScaler, MinMaxScaler])
def test_scaler_state_roundtrip(cls, tmp_path):
    fitted = cls().fit(X_TRAIN)
    loaded = roundtrip(fitted, cls(), tmp_path)
    assert np.array_equal(loaded.transform(X_TEST), fitted.transform(X_TEST))
    with pytest.raises(ValueError, match="the state is for"):
        (MinMaxScaler if cls is StandardScaler else StandardScaler)().load_state_dict(
            fitted.state_dict()
        )


def test_unfitted_state_roundtrip_stays_unfitted(tmp_path):
    loaded = roundtrip(StandardScaler(with_std=False), StandardScaler(), tmp_path)
    assert loaded.with_std is False and not loaded.is_fitted


# ---------------------------------------------------------------- SimpleImputer

X_MISSING = np.array([[1.0, np.nan], [np.nan, 4.0], [7.0, 4.0], [4.0, 10.0]])


@pytest.mark.parametrize(
    "strategy, expected",
    [
        ("mean", [4.0, 6.0]),
        ("median", [4.0, 4.0]),
        ("most_frequent", [1.0, 4.0]),  # column 0: a three-way tie goes to the smallest
        ("constant", [0.0, 0.0]),
    ],
)
def test_imputer_strategies(strategy, expected):
    imp = SimpleImputer(strategy=strategy).fit(X_MISSING)
    assert imp.statistics == expected
    out = imp.transform(np.array([[np.nan, np.nan], [2.0, 3.0]]))
    assert out.tolist() == [expected, [2.0, 3.0]]


def test_imputer_matches_sklearn():
    sk = pytest.importorskip("sklearn.impute")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, (40, 3)).astype(float)
    x[rng.random(x.shape) < 0.2] = np.nan
    for strategy in ("mean", "median", "most_frequent"):
        ours = SimpleImputer(strategy=strategy).fit(x).transform(x)
        theirs = sk.SimpleImputer(strategy=strategy).fit(x).transform(x)
        np.testing.assert_allclose(ours, theirs)


def test_imputer_constant_value_and_custom_missing_marker():
    imp = SimpleImputer(strategy="constant", fill_value=-1.0).fit(X_MISSING)
    assert imp.transform(X_MISSING)[1, 0] == -1.0
    imp = SimpleImputer(strategy="mean", missing_values=-1).fit(np.array([[2], [-1], [4]]))
    assert imp.transform(np.array([[-1], [5]])).tolist() == [[3.0], [5.0]]


def test_imputer_strings_and_pandas(tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"city": ["Oslo", None, "Paris", "Oslo"], "n": [1.0, 2.0, None, 2.0]})
    imp = SimpleImputer(strategy="most_frequent").fit(df)
    assert imp.statistics == ["Oslo", 2.0]
    out = imp.transform(df)
    assert out[:, 0].tolist() == ["Oslo", "Oslo", "Paris", "Oslo"] and out[2, 1] == 2.0
    loaded = roundtrip(imp, SimpleImputer(strategy="most_frequent"), tmp_path)
    assert loaded.statistics == ["Oslo", 2.0]
    assert (
        SimpleImputer(strategy="constant").fit(df[["city"]]).transform(df[["city"]])[1, 0]
        == "missing_value"
    )
    with pytest.raises(ValueError, match="column 'city' is not numeric"):
        SimpleImputer(strategy="mean").fit(df)


def test_imputer_errors():
    with pytest.raises(ValueError, match="strategy must be one of"):
        SimpleImputer(strategy="mode")
    with pytest.raises(ValueError, match="column 1 has no observed values"):
        SimpleImputer().fit(np.array([[1.0, np.nan], [2.0, np.nan]]))
    with pytest.raises(RuntimeError, match="not fitted"):
        SimpleImputer().transform(X_MISSING)


# ---------------------------------------------------------------- one-hot


def test_one_hot_values_and_errors():
    assert one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    t = one_hot(fastdl.tensor([[1], [0]]), 2)
    assert isinstance(t, fastdl.Tensor) and t.shape == (2, 1, 2) and t.dtype == fastdl.float32
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got 3"):
        one_hot([0, 3], 3)
    with pytest.raises(ValueError, match=r"got -1"):
        one_hot([-1], 3)
    with pytest.raises(TypeError, match="integer class labels"):
        one_hot(np.array([0.0, 1.0]), 2)
    with pytest.raises(ValueError, match="num_classes"):
        one_hot([0], 0)


def test_one_hot_encoder_hand_values():
    x = np.array([["red", "S"], ["blue", "M"], ["red", "M"]], dtype=object)
    enc = OneHotEncoder().fit(x)
    assert enc.categories == [["blue", "red"], ["M", "S"]]
    assert enc.transform(np.array([["blue", "S"]], dtype=object)).tolist() == [[1, 0, 0, 1]]
    assert enc.get_feature_names_out() == ["x0_blue", "x0_red", "x1_M", "x1_S"]
    with pytest.raises(
        ValueError, match="column 0 has category 'green' \\(row 0\\) not seen in fit"
    ):
        enc.transform(np.array([["green", "S"]], dtype=object))
    ignore = OneHotEncoder(handle_unknown="ignore").fit(x)
    assert ignore.transform(np.array([["green", "S"]], dtype=object)).tolist() == [[0, 0, 0, 1]]


def test_one_hot_encoder_matches_sklearn():
    sk = pytest.importorskip("sklearn.preprocessing")
    rng = np.random.default_rng(2)
    x = np.stack([rng.choice(["a", "b", "c"], 30), rng.integers(0, 4, 30).astype(str)], 1)
    ours = OneHotEncoder().fit(x).transform(x)
    theirs = sk.OneHotEncoder(sparse_output=False).fit(x).transform(x)
    np.testing.assert_array_equal(ours, theirs)


def test_one_hot_encoder_pandas_and_state(tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"city": ["Oslo", "Paris"], "size": [3, 1]})
    enc = OneHotEncoder().fit(df)
    assert enc.get_feature_names_out() == ["city_Oslo", "city_Paris", "size_1", "size_3"]
    loaded = roundtrip(enc, OneHotEncoder(), tmp_path)
    assert np.array_equal(loaded.transform(df), enc.transform(df))
    with pytest.raises(ValueError, match="column 'city' has a missing value \\(row 1\\)"):
        OneHotEncoder().fit(pd.DataFrame({"city": ["Oslo", None]}))
    with pytest.raises(ValueError, match="mixes value types"):
        OneHotEncoder().fit(np.array([["a"], [1]], dtype=object))


# ---------------------------------------------------------------- images


def test_normalize_hand_values():
    norm = Normalize(mean=[0.5, 1.0], std=[0.5, 2.0])
    img = np.ones((2, 2, 2), np.float32)
    out = norm(img)
    assert out.dtype == np.float32
    assert out[0].tolist() == [[1.0, 1.0], [1.0, 1.0]] and out[1].tolist() == [
        [0.0, 0.0],
        [0.0, 0.0],
    ]
    batch = norm(fastdl.ones(3, 2, 2, 2))
    assert isinstance(batch, fastdl.Tensor) and batch.shape == (3, 2, 2, 2)
    with pytest.raises(ValueError, match="2 channel statistics, the images have 3 channels"):
        norm(np.ones((3, 2, 2)))
    with pytest.raises(ValueError, match="std must be positive"):
        Normalize([0.0], [0.0])
    with pytest.raises(ValueError, match="expected images"):
        norm(np.ones((2, 2)))


def test_normalize_fit_per_channel(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.normal([1.0, -2.0], [2.0, 0.5], (500, 4, 4, 2)).transpose(0, 3, 1, 2)
    norm = Normalize().fit(train)
    np.testing.assert_allclose(norm.mean, train.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(norm.std, train.std(axis=(0, 2, 3)))
    out = norm(train)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), [0, 0], atol=1e-12)
    loaded = roundtrip(norm, Normalize(), tmp_path)
    assert np.array_equal(loaded(train[:3]), norm(train[:3]))


def test_compose_chains_fits_and_saves(tmp_path):
    images = np.arange(16, dtype=np.float32).reshape(4, 1, 2, 2)
    pipeline = Compose([lambda x: x / 15.0, Normalize()])
    out = pipeline.fit_transform(images)
    assert abs(float(out.mean())) < 1e-6 and pipeline.supports_batches is False
    fresh = Compose([lambda x: x / 15.0, Normalize()])
    path = tmp_path / "c.safetensors"
    fastdl.save(pipeline.state_dict(), path)
    fresh.load_state_dict(fastdl.load(path))
    assert np.array_equal(fresh(images), out)
    with pytest.raises(ValueError, match="the state has 1 transforms, this Compose has 2"):
        Compose([Normalize(), Normalize()]).load_state_dict(
            {"type": "Compose", "transforms": [None]}
        )
    with pytest.raises(TypeError, match="not callable"):
        Compose([3])
