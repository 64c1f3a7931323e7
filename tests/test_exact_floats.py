"""Exact floats: every text mlprod writes (CSV, JSON Lines, JSON) reads back to the same float64 bits."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from mlprod.bundle import Bundle, load_bundle, save_bundle
from mlprod.errors import DataError, IntegrityError
from mlprod.features import build_pipeline
from mlprod.formats import table_format
from mlprod.io import write_json
from mlprod.layout import MANIFEST
from mlprod.predict import Predictor, predict_from_path
from mlprod.schema import capture_schema, validate
from mlprod.tables import TableWriter, encode_rows, iter_table, read_jsonl_bytes, read_table, write_table
from mlprod.train import train_from_data
from mlprod.verify import _manifest

# --- a sweep: models on features from 1e-12 to 1e12 save, load and verify ---------------------------------

MAGNITUDES = [-12, -8, -4, 0, 4, 8, 12]  # feature j is of magnitude 10 ** MAGNITUDES[j]

ESTIMATORS = {
    ("classification", "forest"): "sklearn.ensemble.RandomForestClassifier",
    ("classification", "linear"): "sklearn.linear_model.LogisticRegression",
    ("regression", "forest"): "sklearn.ensemble.RandomForestRegressor",
    ("regression", "linear"): "sklearn.linear_model.Ridge",
}


def wide_frame(task: str, seed: int, n: int = 80) -> pd.DataFrame:
    "Seeded rows whose features span 1e-12 to 1e12 in magnitude: (n, 2 + len(MAGNITUDES) + 1)."
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, len(MAGNITUDES)))  # (n, n_features) the signal, before scaling
    df = pd.DataFrame({"row_id": np.arange(1, n + 1)})
    for j, e in enumerate(MAGNITUDES):
        df[f"f{j}"] = z[:, j] * 10.0**e  # e.g. 0.0412345... at 1e-1, 3.2e-12 at 1e-12
    df["mixed"] = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(
        -12, 12, n
    )  # every magnitude in one column
    signal = 3 * z[:, 0] + z @ rng.standard_normal(len(MAGNITUDES))  # (n,) the tiniest feature matters most
    if task == "classification":
        df["y"] = np.where(signal > 0, "yes", "no")
    else:
        df["y"] = 100.0 + 10.0 * signal + rng.standard_normal(n)
    return df


def wide_config(task: str, kind: str, seed: int) -> dict[str, Any]:
    params: dict[str, Any] = {"n_estimators": 8} if kind == "forest" else {}
    if ESTIMATORS[(task, kind)].endswith("LogisticRegression"):
        params = {"max_iter": 2000}
    return {
        "name": f"wide_{task}_{kind}",
        "task": task,
        "target": "y",
        "id_col": "row_id",
        "preprocessing": {"scale": True},  # the forest too: its trees then split the tiniest features
        "estimator": {"class": ESTIMATORS[(task, kind)], "params": params},
        "validation": {"test_size": 0.25},
        "seed": seed,
    }


@pytest.mark.parametrize(("task", "kind"), sorted(ESTIMATORS))
def test_models_on_features_from_1e_minus_12_to_1e12_save_load_and_verify(
    task: str, kind: str, tmp_path: Path
) -> None:
    refused: list[str] = []
    moved: list[tuple[int, str]] = []  # (seed, column) whose golden inputs came back as other bits
    for seed in range(4):
        bundle = train_from_data(wide_config(task, kind, seed), wide_frame(task, seed))
        folder = save_bundle(bundle, tmp_path / f"{task}_{kind}_{seed}")
        try:
            back = load_bundle(folder)  # verifies the manifest and re-runs the golden rows
        except IntegrityError as e:
            refused.append(f"seed {seed}: {e}")
            continue
        g = back.golden  # the golden inputs, read back from golden.jsonl: the very bits of the training frame
        for col in [c for c in bundle.golden.columns if bundle.golden[c].dtype.kind == "f"]:
            want = bundle.golden[col].to_numpy()  # (n_golden,)
            if g[col].to_numpy().view(np.uint64).tolist() != want.view(np.uint64).tolist():
                moved.append((seed, col))
    assert refused == []
    assert moved == []


# --- a golden mismatch names the row, its inputs and both outputs as plain numbers ------------------------


def _change_golden(folder: Path, row: int, column: str, value: Any) -> None:
    "Change one stored value of golden.jsonl and regenerate the manifest (as a careless copy would)."
    lines = (folder / "golden.jsonl").read_text().splitlines()
    rec = json.loads(lines[row])
    rec[column] = value
    lines[row] = json.dumps(rec)
    (folder / "golden.jsonl").write_text("\n".join(lines) + "\n")
    (folder / MANIFEST).write_text(json.dumps(_manifest(folder), indent=2, sort_keys=True) + "\n")


def test_a_golden_mismatch_names_the_row_its_inputs_and_both_outputs_as_plain_numbers(tmp_path: Path) -> None:
    df = wide_frame("regression", 0)
    folder = save_bundle(train_from_data(wide_config("regression", "forest", 0), df), tmp_path / "m")
    stored = [json.loads(line) for line in (folder / "golden.jsonl").read_text().splitlines()]
    was = stored[2]["expected_prediction"] + 0.15  # a prediction the model no longer makes
    _change_golden(folder, 2, "expected_prediction", was)
    with pytest.raises(IntegrityError) as e:
        load_bundle(folder)
    msg = str(e.value)
    assert "np." not in msg and "float64" not in msg, msg
    have = stored[2]["expected_prediction"]
    assert f"golden row 3 (row_id={stored[2]['row_id']}, f0={stored[2]['f0']!r}," in msg, msg
    assert f"prediction is {have!r}, was {was!r} at train time" in msg, msg
    numbers = re.findall(r"=(-?[0-9.e+-]+)", msg)  # every input value, as plain numbers
    assert len(numbers) == 1 + len(MAGNITUDES) + 1, msg
    assert [float(v) for v in numbers[1:]] == [stored[2][c] for c in [*(f"f{j}" for j in range(7)), "mixed"]]


def test_a_golden_mismatch_of_a_label_shows_the_labels_plainly(tmp_path: Path) -> None:
    df = wide_frame("classification", 1)
    folder = save_bundle(train_from_data(wide_config("classification", "forest", 1), df), tmp_path / "m")
    stored = json.loads((folder / "golden.jsonl").read_text().splitlines()[0])
    other = "no" if stored["expected_prediction"] == "yes" else "yes"
    _change_golden(folder, 0, "expected_prediction", other)
    with pytest.raises(IntegrityError) as e:
        load_bundle(folder)
    msg = str(e.value)
    assert f"prediction is '{stored['expected_prediction']}', was '{other}' at train time" in msg, msg
    assert "np.str_" not in msg, msg


# --- a property: any float64, written by any text writer of mlprod, reads back as the same bits -------------

EDGES = [
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    2.225073858507201e-308,
    1e308,
    1.7976931348623157e308,
    -0.0,
]
EDGES += [0.0, 1.0, 1e16, 1e15, 123456789012345.0, 1e-7, 1.234567e-7, 0.1, 143.63, 3.2e-12, 1e22, -1e-5]
BOUNDED = settings(max_examples=40, deadline=None, derandomize=True, database=None)
BOUNDED_SLOW = settings(max_examples=12, deadline=None, derandomize=True, database=None)


def float_lists(nan: bool = True, inf: bool = True, min_size: int = 1) -> st.SearchStrategy[list[float]]:
    "Lists of any float64 (subnormals included), not all missing."
    values = st.floats(width=64, allow_nan=nan, allow_infinity=inf) | st.sampled_from(EDGES)
    return st.lists(values, min_size=min_size, max_size=9).filter(
        lambda xs: not all(math.isnan(x) for x in xs)
    )


def same_floats(got: Any, want: Any) -> None:
    "`got` is a float64 column holding `want`'s values bit for bit (a missing value may be any NaN)."
    got, want = np.asarray(got), np.asarray(want, dtype=np.float64)  # (n,), (n,)
    assert got.dtype == np.float64, got.dtype
    assert np.isnan(got).tolist() == np.isnan(want).tolist(), (got, want)
    keep = ~np.isnan(want)
    assert got[keep].view(np.uint64).tolist() == want[keep].view(np.uint64).tolist(), (
        [float.hex(float(v)) for v in got[keep]],
        [float.hex(float(v)) for v in want[keep]],
    )


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mlprod-floats-") as d:
        yield Path(d)


TEXT_FORMATS = ["t.csv", "t.csv.gz", "t.jsonl", "t.jsonl.gz"]


@BOUNDED
@given(xs=float_lists())
@example(xs=EDGES)
@example(xs=[1.0, -0.0, 1e16, 3.0])  # integral floats only: still a float column
@example(xs=[math.inf, -math.inf, math.nan, 0.5])
def test_tables_written_as_text_read_back_as_the_same_bits(xs: list[float], scratch: Path) -> None:
    df = pd.DataFrame({"id": np.arange(len(xs)), "x": xs})  # (n, 2)
    for name in TEXT_FORMATS:
        path = write_table(df, scratch / name)
        same_floats(read_table(path)["x"], xs)
        chunks = [c for c in iter_table(path, chunk_rows=4) if c["x"].notna().any()]
        for c in chunks:
            same_floats(c["x"], df["x"].to_numpy()[c["id"].to_numpy()])
        with TableWriter(scratch / ("enc-" + name)) as w:  # as batch prediction's workers hand text over
            w.write_encoded(encode_rows(df, table_format(path), header=True), len(df))
        assert (scratch / ("enc-" + name)).read_bytes() == path.read_bytes()
    same_floats(read_jsonl_bytes(encode_rows(df, "jsonl", header=False).encode(), "x.jsonl")["x"], xs)


@BOUNDED
@given(
    xs=float_lists(nan=False, inf=False), nested=st.floats(width=64, allow_nan=False, allow_infinity=False)
)
@example(xs=EDGES, nested=5e-324)
def test_json_written_by_write_json_reads_back_as_the_same_bits(
    xs: list[float], nested: float, scratch: Path
) -> None:
    path = write_json(scratch / "metrics.json", {"values": xs, "run": {"rmse": np.float64(nested)}})
    back = json.loads(path.read_text())
    same_floats(back["values"], xs)
    same_floats([back["run"]["rmse"]], [nested])


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_write_json_refuses_a_non_finite_number_naming_its_key(bad: float, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"metrics\.json: .*'run\.scores\[1\]'.* \(expected a finite number"):
        write_json(tmp_path / "metrics.json", {"run": {"scores": [0.5, bad]}})
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def identity(scratch: Path) -> Bundle:
    "A regression model whose prediction is its one feature, bit for bit (x * 1.0 + 0.0)."
    from sklearn.linear_model import LinearRegression

    train = pd.DataFrame({"row_id": [1, 2, 3, 4], "x": [1.0, 2.0, 3.0, 4.0], "y": [1.0, 2.0, 3.0, 4.0]})
    schema = capture_schema(train, "regression", "y", "row_id")
    pipe = build_pipeline(schema, LinearRegression(), {"scale": False})
    pipe.fit(validate(schema, train), train["y"])
    pipe[-1].coef_, pipe[-1].intercept_ = np.array([1.0]), 0.0
    return Bundle(pipe, {"name": "identity", "task": "regression"}, schema, {"rmse": 0.0}, train.head(2))


@BOUNDED_SLOW
@given(xs=float_lists(inf=False), metric=st.floats(width=64, allow_nan=False, allow_infinity=False))
@example(xs=EDGES, metric=5e-324)
def test_golden_rows_and_metrics_saved_in_a_bundle_read_back_as_the_same_bits(
    xs: list[float], metric: float, identity: Bundle, scratch: Path
) -> None:
    golden = pd.DataFrame({"row_id": np.arange(len(xs)), "x": xs})  # (n, 2)
    bundle = dataclasses.replace(
        identity, golden=golden, metrics={"rmse": metric, "xs": [x for x in xs if x == x]}
    )
    back = load_bundle(save_bundle(bundle, scratch / "bundles"))  # verifies: the golden rows re-run
    same_floats(back.golden["x"], xs)
    want = Predictor(identity).predict(golden)["prediction"]  # (n,) the model's outputs at save time
    same_floats(back.golden["expected_prediction"], want)
    same_floats([back.metrics["rmse"]], [metric])
    same_floats(back.metrics["xs"], [x for x in xs if x == x])


@BOUNDED_SLOW
@given(xs=float_lists(inf=False))
@example(xs=EDGES)
def test_predictions_written_by_predict_from_path_read_back_as_the_same_bits(
    xs: list[float], identity: Bundle, scratch: Path
) -> None:
    model = scratch / "identity"
    if not model.exists():
        save_bundle(identity, model)
    df = pd.DataFrame({"row_id": np.arange(len(xs)), "x": xs})  # (n, 2)
    want = Predictor(identity).predict(df)["prediction"]  # (n,)
    for src, out in [("in.csv", "p.jsonl"), ("in.jsonl.gz", "p.csv"), ("in.csv.gz", "p.jsonl.gz")]:
        predict_from_path(model, write_table(df, scratch / src), scratch / out, workers=1)
        back = read_table(scratch / out)
        same_floats(back["prediction"], want)


@BOUNDED_SLOW
@given(xs=float_lists())
@example(xs=EDGES)
@example(xs=[math.inf, -math.inf, math.nan, 0.5])
def test_fetched_and_split_tables_read_back_as_the_same_bits(xs: list[float], scratch: Path) -> None:
    from mlprod.data import split_file
    from mlprod.query import fetch

    df = pd.DataFrame({"id": np.arange(len(xs)), "x": xs})  # (n, 2)
    sql = scratch / "all.sql"
    sql.write_text("SELECT * FROM raw ORDER BY id\n")
    sources = [("raw.parquet", "f.csv"), ("raw.parquet", "f.jsonl"), ("raw.jsonl", "f.csv")]
    if not any(
        math.isinf(x) for x in xs
    ):  # DuckDB's CSV sniffer takes a column of `inf` for dates (infinity)
        sources.append(("raw.csv", "f.jsonl"))
    for src, name in sources:
        raw = write_table(df, scratch / src)  # DuckDB reads what mlprod wrote: the same bits too
        out = fetch(sql, scratch / name, tables={"raw": raw})
        same_floats(read_table(out)["x"], xs)
        if len(xs) >= 2:
            train, test = split_file(
                out, scratch / f"train-{name}", scratch / f"test-{name}", test_size=1, seed=0
            )
            parts = [read_table(train), read_table(test)]
            assert sorted(parts[0]["id"].tolist() + parts[1]["id"].tolist()) == df["id"].tolist()
            # A JSON Lines column of nulls only has no type: a part of NaN only is left out.
            for part in parts:
                if part["x"].notna().any():
                    same_floats(part["x"], df["x"].to_numpy()[part["id"].to_numpy()])


def test_missing_values_and_infinities_are_written_as_each_format_allows(tmp_path: Path) -> None:
    df = pd.DataFrame({"id": [1, 2, 3, 4], "x": [math.nan, math.inf, -math.inf, 1.0]})  # (4, 2)
    assert encode_rows(df, "csv", header=True) == "id,x\n1,\n2,inf\n3,-inf\n4,1.0\n"
    assert encode_rows(df, "jsonl", header=False).splitlines() == [
        '{"id":1,"x":null}',  # a missing value, as before
        '{"id":2,"x":Infinity}',  # what pyarrow, DuckDB, pandas and Python's json read back as inf
        '{"id":3,"x":-Infinity}',
        '{"id":4,"x":1.0}',  # a float stays a float
    ]
    for name in ["t.csv", "t.jsonl"]:
        same_floats(read_table(write_table(df, tmp_path / name))["x"], df["x"])


def test_a_prediction_frame_is_encoded_a_column_at_a_time_without_pandas(monkeypatch) -> None:
    "Integers, texts and floats (the columns predictions hold) never go through pandas' to_json: the fast path."
    rng = np.random.default_rng(0)
    p = rng.random(1000)  # (1000,)
    df = pd.DataFrame({"id": np.arange(1000), "prediction": np.where(p > 0.5, "yes", "no")})
    df["proba_no"], df["proba_yes"], df["score"] = 1 - p, p, np.round(p * 10)  # (1000, 5)
    df.loc[3, "score"] = math.nan

    def refuse(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("pandas' to_json was called")

    monkeypatch.setattr(pd.DataFrame, "to_json", refuse)
    back = read_jsonl_bytes(encode_rows(df, "jsonl", header=False).encode(), "p.jsonl")
    for col in ["proba_no", "proba_yes", "score"]:
        same_floats(back[col], df[col])
    assert (
        back["id"].tolist() == df["id"].tolist() and back["prediction"].tolist() == df["prediction"].tolist()
    )


@BOUNDED
@given(
    texts=st.lists(
        st.builds(
            lambda sign, digits, point, exp: f"{sign}{digits[:point]}.{digits[point:] or '0'}e{exp}",
            st.sampled_from(["", "-"]),
            st.text("0123456789", min_size=1, max_size=30).map(lambda d: "1" + d),
            st.integers(1, 3),
            st.integers(-345, 305),
        ),
        min_size=1,
        max_size=8,
    )
)
@example(
    texts=["2.2250738585072011e-308", "4.9406564584124654e-324", "0.1000000000000000055511151231257827e0"]
)
@example(texts=["9007199254740993.0e0", "1.7976931348623157e308", "2.4703282292062328e-324"])
def test_the_readers_give_any_decimal_text_its_nearest_float(texts: list[str], scratch: Path) -> None:
    "CSV (pandas' parser) and JSON Lines (pyarrow's): a decimal text reads as Python's float() reads it."
    want = [float(t) for t in texts]
    assume(all(math.isfinite(x) for x in want))  # 1e400 is an error in JSON, inf in CSV
    csv = scratch / "dec.csv"
    csv.write_text("x\n" + "".join(f"{t}\n" for t in texts))
    jsonl = scratch / "dec.jsonl"
    jsonl.write_text("".join(f'{{"x":{t}}}\n' for t in texts))
    for path in (csv, jsonl):
        same_floats(read_table(path)["x"], want)
        same_floats(pd.concat(list(iter_table(path, chunk_rows=3)))["x"], want)


# --- the columnar JSON Lines writer: the same bytes as before its fast paths, and the same values back -------

HARD_FLOATS = [5e-324, 1e16, 0.1 + 0.2, 1e-7, 123456789012345678.0, -0.0, 0.0, 1.0, -3.0, 2.0**53, 1e22, 1e-5]
HARD_FLOATS += [1e15, 9.999999999999999e15, 1e21, 1.7976931348623157e308, 2.2250738585072014e-308, math.nan]
HARD_FLOATS += [math.inf, -math.inf, 0.5, 100.0, 1e-300]
SPECIALS = st.sampled_from(list('"\\/\n\t\x00\x1f\x7f\u2028é€😀 ,:{}'))  # what JSON escapes, and more
ODD_TEXTS = st.text(st.one_of(SPECIALS, st.characters()), max_size=6) | st.text(SPECIALS, max_size=3)


def _column(kind: str, n: int, data: st.DataObject) -> pd.Series:
    "A column of `n` values of one `kind`, drawn by hypothesis."
    floats = st.one_of(st.sampled_from(HARD_FLOATS), st.floats(allow_nan=True, allow_infinity=True))
    if kind == "float":
        return pd.Series(data.draw(st.lists(floats, min_size=n, max_size=n)), dtype="float64")
    if kind == "float32":
        return pd.Series(data.draw(st.lists(floats, min_size=n, max_size=n)), dtype="float64").astype(
            "float32"
        )
    if kind == "int":
        return pd.Series(data.draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)))
    if kind == "bool":
        return pd.Series(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    if kind == "label":  # few distinct texts, as a prediction column holds
        labels = data.draw(st.lists(ODD_TEXTS, min_size=1, max_size=3))
        return pd.Series(data.draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n)))
    if kind == "text":
        return pd.Series(data.draw(st.lists(st.one_of(ODD_TEXTS, st.none()), min_size=n, max_size=n)))
    if kind == "object":
        mixed = st.one_of(ODD_TEXTS, floats, st.integers(-1000, 1000), st.none())
        return pd.Series(data.draw(st.lists(mixed, min_size=n, max_size=n)), dtype=object)
    if kind == "Int64":
        return pd.Series(
            data.draw(st.lists(st.one_of(st.integers(-99, 99), st.none()), min_size=n, max_size=n)),
            dtype="Int64",
        )
    return pd.Series(
        data.draw(st.lists(st.one_of(floats, st.none()), min_size=n, max_size=n)), dtype="Float64"
    )


KINDS = ["float", "float32", "int", "bool", "label", "text", "object", "Int64", "Float64"]


@BOUNDED
@given(
    n=st.integers(1, 12),
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=5),
    data=st.data(),
)
def test_json_lines_are_written_byte_for_byte_as_before_and_read_back_the_same(
    n: int, kinds: list[str], data: st.DataObject
) -> None:
    "Random frames (hard floats, integers, texts with quotes, unicode and control characters, booleans, missing values)."
    from jsonl_reference import jsonl_by_column as reference

    df = pd.DataFrame(
        {f"c{i}/{kind}" if i % 2 else f"c{i}": _column(kind, n, data) for i, kind in enumerate(kinds)}
    )
    text = encode_rows(df, "jsonl", header=False)
    assert text == reference(df)
    back = [json.loads(line) for line in text.split("\n")[:-1]]  # Python's json reads Infinity and NaN words
    assert len(back) == n
    for i, kind in enumerate(kinds):
        name = df.columns[i]
        got = [row[name] for row in back]
        if kind in ("float", "Float64"):
            want = df[name].to_numpy(dtype=np.float64, na_value=np.nan)  # (n,)
            assert all(
                (math.isnan(w) and g is None)
                or (g is not None and float(g) == w and math.copysign(1, float(g)) == math.copysign(1, w))
                for g, w in zip(got, want.tolist(), strict=True)
            ), (got, want)
        elif kind in ("text", "label"):
            assert got == [None if pd.isna(v) else v for v in df[name].tolist()]
        elif kind in ("int", "bool"):
            assert got == df[name].tolist()


@pytest.mark.parametrize("x", HARD_FLOATS)
def test_hard_floats_are_written_as_python_writes_them(x: float) -> None:
    "The shortest text that reads back to the same bits: repr's digits, JSON's words for the others."
    text = encode_rows(pd.DataFrame({"x": [x]}), "jsonl", header=False)
    word = (
        "null" if math.isnan(x) else "Infinity" if x == math.inf else "-Infinity" if x == -math.inf else None
    )
    got = json.loads(text)["x"] if word is None else text[5:-2]
    if word is None:
        assert float(repr(got)) == x and math.copysign(1, got) == math.copysign(1, x)
        digits = [t.lstrip("-").split("e")[0].replace(".", "").strip("0") for t in (text[5:-2], repr(x))]
        assert digits[0] == digits[1]  # repr's shortest digits
    else:
        assert got == word
