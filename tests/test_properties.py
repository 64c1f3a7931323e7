"""Properties (hypothesis): whatever bytes a reader is given and whatever frame validation is given, the result is
a frame or an MlprodError, never another exception.

Examples are derandomized (the same ones every run, so `make test` never fails by luck) and bounded so that the
file runs in seconds; each property counts the examples it ran into the figures `make test` prints.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from bad_inputs import figures
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlprod.errors import MlprodError, SchemaError
from mlprod.schema import Schema, capture_schema, validate
from mlprod.tables import iter_table, read_table

FIXTURES = Path(__file__).parent / "fixtures"
BOUNDED = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    "One folder for the whole module (hypothesis runs many examples per test: function fixtures would be shared)."
    with tempfile.TemporaryDirectory(prefix="mlprod-properties-") as d:
        yield Path(d)


def outcome(prop: str, fn: Any) -> Any:
    "Run `fn`; an MlprodError is an allowed outcome (returned), any other exception fails the property."
    figures.count("properties.examples", prop)
    try:
        return fn()
    except MlprodError as e:
        figures.count("properties.errors")
        assert "\n" not in str(e), f"an error message of more than one line: {e!s}"
        return e


@pytest.fixture(scope="module", autouse=True)
def _figures(request: pytest.FixtureRequest) -> Iterator[None]:
    "Count this file's runs into the figures `make test` prints, and time it."
    with figures.register(request.config, "tests/test_properties.py"):
        yield


# --- bytes that look like tables, more or less --------------------------------------------------------------

CELL = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6),
    st.sampled_from(["", '"', '""', "a,b", "nan", "NaN", "inf", "-inf", "1e400", "null", " ", "\r", "é"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
CSV_TEXT = st.lists(st.lists(CELL, max_size=5), max_size=8).map(
    lambda rows: "\n".join(",".join(r) for r in rows) + "\n"
)
JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
JSON_LINE = st.one_of(
    st.dictionaries(st.sampled_from(["id", "x", "y", "é", ""]), JSON_VALUE, max_size=4).map(
        lambda d: json.dumps(d, allow_nan=True)
    ),
    JSON_VALUE.map(lambda v: json.dumps(v, allow_nan=True)),
    st.text(max_size=12),
)
JSONL_TEXT = st.lists(JSON_LINE, max_size=8).map(lambda lines: "\n".join(lines) + "\n")


def _encodings(text: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    "Text as UTF-8 (mostly), with a byte-order mark, in another encoding, or cut short at any byte."
    return st.one_of(
        text.map(lambda t: t.encode("utf-8")),
        text.map(lambda t: b"\xef\xbb\xbf" + t.encode("utf-8")),
        text.map(lambda t: t.encode("utf-16")),
        text.map(lambda t: t.encode("latin-1", errors="replace")),
        st.tuples(text, st.integers(min_value=0, max_value=200)).map(lambda x: x[0].encode()[: x[1]]),
    )


ANY_BYTES = st.binary(max_size=300)
CSV_BYTES = st.one_of(ANY_BYTES, _encodings(CSV_TEXT))
JSONL_BYTES = st.one_of(ANY_BYTES, _encodings(JSONL_TEXT))


def _gzipped(data: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    "Valid gzip of the bytes, a cut-off gzip stream, or bytes that are not gzip at all."
    return st.one_of(
        data.map(lambda b: gzip.compress(b, mtime=0)),
        st.tuples(data, st.integers(min_value=0, max_value=60)).map(
            lambda x: gzip.compress(x[0], mtime=0)[: x[1]]
        ),
        data,
    )


SMALL_FRAMES = st.lists(
    st.tuples(
        st.integers(min_value=-5, max_value=5),
        st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
        st.one_of(st.none(), st.text(max_size=4)),
    ),
    max_size=6,
).map(lambda rows: pd.DataFrame(rows, columns=["id", "x", "c"]))


@st.composite
def parquet_bytes(draw: st.DrawFn) -> bytes:
    "A valid Parquet file of a small frame, then perhaps cut short or with a byte flipped."
    buf = io.BytesIO()
    draw(SMALL_FRAMES).to_parquet(buf, index=False)
    data = bytearray(buf.getvalue())
    how = draw(st.sampled_from(["whole", "cut", "flip"]))
    if how == "cut":
        data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    elif how == "flip" and data:
        i = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data[i] ^= 1 << draw(st.integers(min_value=0, max_value=7))
    return bytes(data)


FORMATS = {
    "t.csv": CSV_BYTES,
    "t.csv.gz": _gzipped(CSV_BYTES),
    "t.jsonl": JSONL_BYTES,
    "t.jsonl.gz": _gzipped(JSONL_BYTES),
    "t.parquet": st.one_of(parquet_bytes(), ANY_BYTES),
}


def _check_reader(scratch: Path, name: str, data: bytes) -> None:
    path = scratch / name
    path.write_bytes(data)
    whole = outcome(f"reader {name}", lambda: read_table(path))
    if not isinstance(whole, MlprodError):
        assert (
            isinstance(whole, pd.DataFrame) and len(whole) >= 1
        )  # "no rows" is an error, not an empty frame
        assert whole.columns.is_unique  # a header naming a column twice is refused, never renamed
    chunks = outcome(f"reader {name}", lambda: list(iter_table(path, chunk_rows=2)))
    if not isinstance(chunks, MlprodError):
        assert all(isinstance(c, pd.DataFrame) and 1 <= len(c) <= 2 for c in chunks)
        if not isinstance(whole, MlprodError):  # both read it: the same rows
            assert sum(len(c) for c in chunks) == len(whole)


@figures.passed_only
@BOUNDED
@given(data=FORMATS["t.csv"])
@example(data=b"\x00\r\x00\n\n\n\x00")  # found by hypothesis: a lone CR in the header's line repeated a row
@example(data=b"\x00\n\x00\n\x00\r\x00")  # ... and made a chunk longer than chunk_rows
@example(data=b"\xef\xbb\xbf\n\x00\n,\x00")  # a byte-order mark on a blank first line: StopIteration
def test_csv_reader_returns_a_frame_or_an_mlprod_error(scratch: Path, data: bytes) -> None:
    _check_reader(scratch, "t.csv", data)


@figures.passed_only
@BOUNDED
@given(data=FORMATS["t.csv.gz"])
def test_gzip_csv_reader_returns_a_frame_or_an_mlprod_error(scratch: Path, data: bytes) -> None:
    _check_reader(scratch, "t.csv.gz", data)


@figures.passed_only
@BOUNDED
@given(data=FORMATS["t.jsonl"])
def test_jsonl_reader_returns_a_frame_or_an_mlprod_error(scratch: Path, data: bytes) -> None:
    _check_reader(scratch, "t.jsonl", data)


@figures.passed_only
@BOUNDED
@given(data=FORMATS["t.jsonl.gz"])
def test_gzip_jsonl_reader_returns_a_frame_or_an_mlprod_error(scratch: Path, data: bytes) -> None:
    _check_reader(scratch, "t.jsonl.gz", data)


@figures.passed_only
@BOUNDED
@given(data=FORMATS["t.parquet"])
def test_parquet_reader_returns_a_frame_or_an_mlprod_error(scratch: Path, data: bytes) -> None:
    _check_reader(scratch, "t.parquet", data)


# A quote inside an unquoted field (5" screen) is a plain character, as for pandas: the chunked CSV reader must
# not take it for the start of a quoted field (a chunk boundary would then fall inside a "quoted" field).
@figures.passed_only
def test_a_quote_inside_a_field_does_not_break_the_chunks(scratch: Path) -> None:
    path = scratch / "quotes.csv"
    path.write_bytes(b'name,notes\n5" screen,"line1\nline2"\nb,c\nd,e\n')
    whole = read_table(path)  # pandas: 3 rows, the second field of the first holds a newline
    chunks = list(iter_table(path, chunk_rows=1))
    assert [len(c) for c in chunks] == [1, 1, 1]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


# --- frames against a schema ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def churn_schema() -> Schema:
    "The schema of the binary fixture: numeric and categorical features, an id and a target."
    df = read_table(FIXTURES / "binary.csv")  # (300, 8)
    return capture_schema(df, "classification", "churned", "customer_id")


VALUES = st.one_of(
    st.none(),
    st.just(math.nan),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.text(max_size=5),
    st.sampled_from(["1.5", " 2 ", "1e3", "inf", "-inf", "nan", "abc", "", "beijing", "atlantis", "pro"]),
    st.lists(st.integers(), max_size=2),  # a nested value, as a JSON Lines row may hold
)


@st.composite
def column(draw: st.DrawFn, n: int) -> pd.Series:
    "A column of `n` values: one dtype (float, int, nullable, text, bool, datetime) or a mixed object column."
    kind = draw(st.sampled_from(["float", "int", "Int64", "string", "bool", "datetime", "object"]))
    if kind == "float":
        return pd.Series(
            draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n))
        )
    if kind == "int":
        return pd.Series(draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n)), dtype="int64")
    if kind == "Int64":
        vals = draw(st.lists(st.one_of(st.none(), st.integers(-(2**62), 2**62)), min_size=n, max_size=n))
        return pd.Series(vals, dtype="Int64")
    if kind == "string":
        vals = draw(st.lists(st.one_of(st.none(), st.text(max_size=5)), min_size=n, max_size=n))
        return pd.Series(vals, dtype="string")
    if kind == "bool":
        return pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype="bool")
    if kind == "datetime":
        return pd.Series(pd.date_range("2026-01-01", periods=n, freq="h"))
    return pd.Series(draw(st.lists(VALUES, min_size=n, max_size=n)), dtype=object)


@st.composite
def frames_for(draw: st.DrawFn, names: list[str], min_rows: int = 0) -> pd.DataFrame:
    "A frame with most of `names` (some dropped, an extra column perhaps), any dtypes, any index."
    n = draw(st.integers(min_value=min_rows, max_value=6))
    cols = [c for c in names if draw(st.integers(0, 9)) > 0]  # each column missing one time in ten
    if draw(st.booleans()):
        cols.append("extra")
    df = pd.DataFrame({c: draw(column(n)) for c in cols})
    if draw(st.booleans()) and n:
        df.index = pd.Index(draw(st.lists(st.integers(), min_size=n, max_size=n)))
    return df


@figures.passed_only
@BOUNDED
@given(data=st.data())
def test_validate_returns_features_or_a_schema_error(churn_schema: Schema, data: st.DataObject) -> None:
    df = data.draw(frames_for(["customer_id", *churn_schema.feature_names, "churned"]))
    out = outcome("schema.validate", lambda: validate(churn_schema, df, source="x.csv"))
    if isinstance(out, MlprodError):
        assert isinstance(out, SchemaError) and str(out).startswith("x.csv: "), out
        return
    assert list(out.columns) == churn_schema.feature_names and out.index.equals(df.index)
    for name in churn_schema.numeric:  # numbers, NaN for missing, never an infinity
        arr = out[name].to_numpy()
        assert arr.dtype == np.float64 and not np.isinf(arr).any()


@figures.passed_only
@BOUNDED
@given(data=st.data())
def test_capture_schema_returns_a_schema_or_a_schema_error(data: st.DataObject) -> None:
    df = data.draw(frames_for(["id", "a", "b", "y"]))
    task = data.draw(st.sampled_from(["classification", "regression", "ranking"]))
    out = outcome("schema.capture_schema", lambda: capture_schema(df, task, "y", "id"))
    if isinstance(out, MlprodError):
        assert isinstance(out, SchemaError), out
        return
    back = Schema.from_json(out.to_json())  # what a bundle stores reads back the same
    assert back == out


@pytest.fixture(scope="module")
def predictor() -> Any:
    "A tiny fitted model on the binary fixture (numeric and categorical features, one-hot, imputation)."
    from mlprod.predict import Predictor
    from mlprod.train import train_from_data

    config = {
        "name": "churn",
        "task": "classification",
        "target": "churned",
        "id_col": "customer_id",
        "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 300}},
        "preprocessing": {"scale": True},
    }
    return Predictor(train_from_data(config, read_table(FIXTURES / "binary.csv")))


@figures.passed_only
@BOUNDED
@given(data=st.data())
def test_predict_returns_one_row_per_row_or_a_schema_error(predictor: Any, data: st.DataObject) -> None:
    "Any frame into a fitted model: one prediction per row, in the frame's order and index, or a SchemaError."
    df = data.draw(frames_for(["customer_id", *predictor.features], min_rows=1))
    out = outcome("Predictor.predict", lambda: predictor.predict(df, proba=True, source="x.csv"))
    if isinstance(out, MlprodError):
        assert isinstance(out, SchemaError) and str(out).startswith("x.csv: "), out
        return
    assert len(out) == len(df) and out.index.equals(df.index)
    proba = out[[f"proba_{c}" for c in predictor.classes]].to_numpy()  # (n_rows, n_classes)
    assert np.allclose(proba.sum(axis=1), 1.0) if len(out) else True


# No rows in, no rows out: an empty frame of predictions with the usual columns (id, prediction[, proba_*]).
@figures.passed_only
def test_predict_on_no_rows_returns_no_rows(predictor: Any) -> None:
    df = read_table(FIXTURES / "binary.csv").iloc[:0]  # (0, 8)
    out = predictor.predict(df, proba=True)
    assert len(out) == 0 and list(out.columns[:2]) == ["customer_id", "prediction"]
