"""`serialise._unpickle_joblib`: an uncompressed joblib file read by the C unpickler gives what `joblib.load` gives.

Every object below is dumped with `joblib.dump` and loaded both ways; the two results are compared array by array
(type, dtype with its byte order, shape, memory order, values). Files it does not read are refused with
`_NotPlainJoblib` (the bundle loader then uses `joblib.load`), never misread."""

from __future__ import annotations

import argparse
import gc
import io
import pickle
import threading
import weakref
from pathlib import Path

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from mlprod.bundle import Bundle, load_bundle, save_bundle
from mlprod.features import build_pipeline
from mlprod.schema import capture_schema, validate
from mlprod.serialise import _load_model, _NotPlainJoblib, _unpickle_joblib
from mlprod.tables import read_table

FIXTURES = Path(__file__).parent / "fixtures"


def _same(a, b, path: str = "obj") -> None:
    "Fail, naming where, unless `a` and `b` hold the same values with the same types and array layouts."
    assert type(a) is type(b), f"{path}: {type(a)} vs {type(b)}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.dtype.byteorder == b.dtype.byteorder, (
            f"{path}: {a.dtype} vs {b.dtype}"
        )
        assert a.shape == b.shape, f"{path}: shape {a.shape} vs {b.shape}"
        assert a.flags.c_contiguous == b.flags.c_contiguous, f"{path}: C order"
        assert a.flags.f_contiguous == b.flags.f_contiguous, f"{path}: Fortran order"
        if a.dtype.hasobject:
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel(), strict=True)):
                _same(x, y, f"{path}[{i}]")
        elif a.dtype.names is None and a.dtype.kind in "fcmM":  # NaN and NaT equal themselves here
            assert np.array_equal(a, b, equal_nan=True), f"{path}: values differ"
        else:  # ints, bools, dates, bytes, structured records: compare the values field by field
            assert np.array_equal(a, b), f"{path}: values differ"
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys"
        for k in a:
            _same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: length"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif hasattr(a, "__getstate__") and not isinstance(
        a, (str, bytes, int, float, complex, type, np.generic)
    ):
        sa, sb = a.__getstate__(), b.__getstate__()
        if sa is a or sa is None:
            assert sb is b or sb is None, path
        else:
            _same(sa, sb, path)
    elif isinstance(a, float) and a != a:
        assert b != b, f"{path}: NaN vs {b!r}"
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


def _fitted(estimator):
    df = read_table(FIXTURES / "binary.csv")  # (300, 8)
    schema = capture_schema(df, "classification", "churned", "customer_id")
    pipe = build_pipeline(schema, estimator, {"scale": True})
    return pipe.fit(validate(schema, df), df["churned"])


ARRAYS = {
    "float64": np.linspace(0, 1, 1000),
    "fortran": np.asfortranarray(np.arange(600.0).reshape(20, 30)),
    "big-endian": np.arange(50, dtype=">f8"),
    "little-endian int32": np.arange(7, dtype="<i4"),
    "0-d": np.array(3.5),
    "empty": np.zeros((0, 4)),
    "bool": np.array([True, False, True]),
    "datetime": np.array(["2026-01-01", "2026-11-22"], dtype="datetime64[D]"),
    "bytes": np.array([b"ab", b"c"]),
    "unicode": np.array(["churn", "stay"]),
    "structured": np.array([(1, 2.5), (3, 4.5)], dtype=[("a", "<i8"), ("b", "<f4")]),
    "objects": np.array(["x", 1, None, 2.5], dtype=object),
    "3-d": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
    "non-contiguous": np.arange(100.0)[::3],
}


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(lambda: _fitted(LogisticRegression(max_iter=500)), id="logistic pipeline"),
        pytest.param(
            lambda: _fitted(RandomForestClassifier(n_estimators=4, random_state=0)), id="forest pipeline"
        ),
        pytest.param(lambda: dict(ARRAYS), id="arrays of every kind"),
        pytest.param(lambda: ARRAYS["fortran"], id="a bare array"),
        pytest.param(
            lambda: [ARRAYS["float64"], ARRAYS["float64"], {"again": ARRAYS["float64"]}], id="shared"
        ),
        pytest.param(
            lambda: {"no arrays": [1, "two", 3.0, None], "large bytes": bytes(range(256)) * 1024},
            id="no arrays, bytes outside frames",
        ),
    ],
)
def test_an_uncompressed_joblib_file_loads_as_joblib_loads_it(obj, tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(obj(), path)
    want = joblib.load(path)
    with open(path, "rb") as f:
        got = _unpickle_joblib(f)
    _same(want, got)
    got_from_bytes = _unpickle_joblib(io.BytesIO(path.read_bytes()))
    _same(want, got_from_bytes)


def test_a_model_loaded_this_way_predicts_as_joblib_loaded(tmp_path: Path) -> None:
    pipe = _fitted(RandomForestClassifier(n_estimators=10, random_state=0))
    joblib.dump(pipe, tmp_path / "m.joblib")
    with open(tmp_path / "m.joblib", "rb") as f:
        got = _unpickle_joblib(f)
    df = read_table(FIXTURES / "binary.csv")
    X = validate(capture_schema(df, "classification", "churned", "customer_id"), df)  # (300, n_features)
    assert (got.predict_proba(X) == joblib.load(tmp_path / "m.joblib").predict_proba(X)).all()


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda obj, p: joblib.dump(obj, p, compress=3), id="compressed"),
        pytest.param(lambda obj, p: joblib.dump(obj, p, protocol=3), id="protocol 3"),
        pytest.param(lambda obj, p: p.write_bytes(pickle.dumps(obj, protocol=2)), id="plain pickle 2"),
    ],
)
def test_a_file_it_does_not_read_is_refused_for_joblib_load(write, tmp_path: Path) -> None:
    p = tmp_path / "m.joblib"
    write({"x": np.arange(10.0)}, p)
    with open(p, "rb") as f, pytest.raises(_NotPlainJoblib):
        _unpickle_joblib(f)
    _same(joblib.load(p), {"x": np.arange(10.0)})  # what the bundle loader then does


def test_a_wrapper_whose_array_bytes_do_not_follow_it_is_refused_not_misread(tmp_path: Path) -> None:
    from joblib.numpy_pickle import NumpyArrayWrapper

    # A wrapper pickled as a plain object, in the middle of a frame: no array bytes follow its BUILD.
    wrapper = NumpyArrayWrapper(np.ndarray, (3,), "C", np.dtype("f8"))
    data = pickle.dumps([wrapper, "after"], protocol=5)
    with pytest.raises(_NotPlainJoblib, match="array bytes not right after their wrapper"):
        _unpickle_joblib(io.BytesIO(data))


def _dumped(obj) -> bytes:
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return buf.getvalue()


def test_a_wrapper_stored_as_a_value_is_refused_not_misread_and_joblib_load_takes_over() -> None:
    from joblib.numpy_pickle import NumpyArrayWrapper

    wrapper = NumpyArrayWrapper(np.ndarray, (0,), "C", np.dtype("f8"), numpy_array_alignment_bytes=None)
    # its BUILD inside a frame that ends with another object's BUILD (the large bytes after it cut the frame)
    data = _dumped([wrapper, argparse.Namespace(x=1), b"z" * 65536])
    with pytest.raises(Exception):  # noqa: B017 (refused whichever way the queued opcodes fail)
        _unpickle_joblib(io.BytesIO(data))
    got = _load_model(data, "model.joblib", [], Path("model.joblib"))  # what joblib.load makes of it
    want = joblib.load(io.BytesIO(data))
    assert [type(x) for x in got] == [type(x) for x in want] and got[1].x == want[1].x == 1
    _same(want[0], got[0])
    held = np.empty(
        2, dtype=object
    )  # inside an object array: joblib's nested pickle, read as joblib reads it
    held[0], held[1] = wrapper, "after"
    assert [type(x) for x in _unpickle_joblib(io.BytesIO(_dumped(held)))] == [NumpyArrayWrapper, str]


def test_a_persistent_id_of_the_file_s_own_is_refused_as_joblib_load_refuses_it() -> None:
    data = _dumped([np.arange(3)])
    assert data.endswith(pickle.APPEND + pickle.STOP)
    crafted = data[:-1] + pickle.POP + pickle.BININT1 + b"\x00" + pickle.BINPERSID + pickle.STOP
    with pytest.raises(_NotPlainJoblib, match="persistent id"):
        _unpickle_joblib(io.BytesIO(crafted))
    with pytest.raises(pickle.UnpicklingError):
        joblib.load(io.BytesIO(crafted))


def test_nothing_of_a_load_keeps_its_arrays_alive_without_the_cyclic_collector() -> None:
    data = _dumped({"a": np.arange(100_000.0), "b": [np.ones(3)]})
    was = gc.isenabled()
    gc.disable()  # as in the CLI, which holds the collector off and freezes what start-up made
    try:
        for load in (
            lambda: _unpickle_joblib(io.BytesIO(data)),
            lambda: _load_model(data, "m", [], Path("m")),
        ):
            obj = load()
            refs = [weakref.ref(obj["a"]), weakref.ref(obj["b"][0])]
            del obj
            assert [r() for r in refs] == [None, None]  # freed by reference counting alone
    finally:
        if was:
            gc.enable()


def test_loads_on_several_threads_at_once_each_get_their_own_object() -> None:
    objs = [
        {"i": i, "x": np.full(50_000, float(i)), "f": np.asfortranarray(np.eye(30) * i)} for i in range(4)
    ]
    data = [_dumped(o) for o in objs]
    got: dict[tuple[int, int], object] = {}

    def work(i: int) -> None:
        for r in range(5):
            got[i, r] = _unpickle_joblib(io.BytesIO(data[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 20
    for (i, _), obj in got.items():
        _same(objs[i], obj)


@pytest.mark.parametrize("compression", [0, 3])
def test_load_bundle_unpickles_an_uncompressed_model_without_joblib_load(
    compression: int, tmp_path: Path, monkeypatch
) -> None:
    df = read_table(FIXTURES / "binary.csv")  # (300, 8)
    schema = capture_schema(df, "classification", "churned", "customer_id")
    pipe = _fitted(RandomForestClassifier(n_estimators=3, random_state=0))
    version = save_bundle(
        Bundle(pipe, {"name": "churn"}, schema, {}, df.head(5)), tmp_path / "m", compression=compression
    )
    calls: list[object] = []
    real = joblib.load
    monkeypatch.setattr(joblib, "load", lambda *a, **k: calls.append(a) or real(*a, **k))
    b = load_bundle(version)
    assert len(calls) == (0 if compression == 0 else 1)  # compressed: joblib's own loader reads it
    X = validate(schema, df)  # (300, n_features)
    assert (b.model.predict_proba(X) == pipe.predict_proba(X)).all()


DTYPES = ["<f8", ">f8", "<f4", "<i8", ">i4", "u1", "?", "<c16", "<M8[s]", "S3", "<U2", "O"]


@settings(max_examples=120, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(DTYPES),
            st.lists(st.integers(0, 5), min_size=0, max_size=3),  # the shape
            st.sampled_from(["C", "F", "strided"]),
            st.integers(0, 2**32 - 1),  # the seed of its values
        ),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),  # arrays in a dict, or the first one alone
)
def test_any_arrays_load_as_joblib_loads_them(specs, bare: bool) -> None:
    arrays = []
    for dtype, shape, order, seed in specs:
        raw = np.random.default_rng(seed).integers(0, 256, size=int(np.prod(shape)) * 16, dtype=np.uint8)
        if dtype == "O":
            a = np.array([f"v{x}" for x in raw[: int(np.prod(shape))]], dtype=object).reshape(shape)
        else:
            a = np.frombuffer(raw.tobytes()[: int(np.prod(shape)) * np.dtype(dtype).itemsize], dtype=dtype)
            a = a.reshape(shape).copy()  # (shape), any bytes: NaNs, odd dates and all
        if order == "F":
            a = np.asfortranarray(a)
        elif order == "strided" and a.ndim:
            a = a[::2]
        arrays.append(a)
    obj = arrays[0] if bare else {f"a{i}": a for i, a in enumerate(arrays)}
    data = _dumped(obj)
    _same(joblib.load(io.BytesIO(data)), _unpickle_joblib(io.BytesIO(data)))
