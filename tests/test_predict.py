"""predict: schema checks first; predict_one agrees with predict; files stream in chunks, atomically; layers agree."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mlprod.bundle import save_bundle
from mlprod.cli import app
from mlprod.errors import BundleError, DataError, SchemaError
from mlprod.predict import Predictor, predict_from_path
from mlprod.tables import read_table, write_table
from mlprod.train import train_from_data

CHURN = {
    "name": "churn",
    "task": "classification",
    "target": "churned",
    "id_col": "customer_id",
    "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500}},
    "preprocessing": {"scale": True},
}
HOUSE = {
    "name": "house",
    "task": "regression",
    "target": "price",
    "id_col": "house_id",
    "estimator": {"class": "sklearn.linear_model.Ridge"},
}


@pytest.fixture(scope="module")
def binary() -> pd.DataFrame:
    return read_table(Path(__file__).parent / "fixtures" / "binary.csv")  # (300, 8)


@pytest.fixture(scope="module")
def churn_root(tmp_path_factory: pytest.TempPathFactory, binary: pd.DataFrame) -> Path:
    "A saved churn model: its model root."
    root = tmp_path_factory.mktemp("models") / "churn"
    save_bundle(train_from_data(CHURN, binary), root)
    return root


@pytest.fixture(scope="module")
def predictor(churn_root: Path) -> Predictor:
    return Predictor.load(churn_root)


def test_predict_columns_order_and_index(predictor: Predictor, binary: pd.DataFrame) -> None:
    df = binary.iloc[::-1].drop(columns="churned").assign(unused="x")  # reversed, with an extra column
    out = predictor.predict(df)
    assert list(out.columns) == ["customer_id", "prediction"] and out.index.equals(df.index)
    assert out["customer_id"].tolist() == df["customer_id"].tolist()
    out = predictor.predict(df, proba=True)
    assert list(out.columns) == ["customer_id", "prediction", "proba_0", "proba_1"]
    np.testing.assert_allclose(out[["proba_0", "proba_1"]].sum(axis=1), 1.0)
    assert predictor.classes == [0, 1] and predictor.task == "classification"


def test_predict_is_the_bare_pipeline(predictor: Predictor, binary: pd.DataFrame) -> None:
    out = predictor.predict(binary, proba=True)
    np.testing.assert_array_equal(out["prediction"], predictor.model.predict(binary))
    np.testing.assert_array_equal(out[["proba_0", "proba_1"]], predictor.model.predict_proba(binary))


def test_missing_columns_are_named(predictor: Predictor, binary: pd.DataFrame) -> None:
    with pytest.raises(SchemaError, match="missing columns: age, plan"):
        predictor.predict(binary.drop(columns=["plan", "age"]))
    with pytest.raises(SchemaError, match="missing columns: customer_id, score"):
        predictor.predict(binary.drop(columns=["customer_id", "score"]))


def test_uncoercible_value_names_column_and_row(predictor: Predictor, binary: pd.DataFrame) -> None:
    bad = binary.assign(
        tenure_months=binary["tenure_months"].astype(object).where(binary.index != 41, "long")
    )
    with pytest.raises(
        SchemaError, match=r"column 'tenure_months': row 42: cannot convert 'long' to a number"
    ):
        predictor.predict(bad)


def test_typed_frames_skip_conversion_with_the_same_predictions(
    predictor: Predictor, binary: pd.DataFrame
) -> None:
    df = binary.assign(city=binary["city"].where(binary.index % 7 != 0, "paris"))  # unseen and missing values
    from mlprod.predict import _typed_features

    kinds = (predictor.features, predictor._numeric)
    assert _typed_features(df, *kinds) is not None  # read_table's dtypes: handed to the pipeline as they are
    as_objects = df.astype({"city": object, "plan": object, "age": object})
    assert _typed_features(as_objects, *kinds) is None  # object columns go through validate
    pd.testing.assert_frame_equal(
        predictor.predict(df, proba=True), predictor.predict(as_objects, proba=True)
    )
    with pytest.raises(SchemaError, match=r"column 'income': row 8: infinite value"):
        predictor.predict(df.assign(income=df["income"].where(df.index != 7, np.inf)))


def test_unseen_categories_and_numeric_text_are_handled(predictor: Predictor, binary: pd.DataFrame) -> None:
    df = binary.head(5).assign(
        city="paris", age=binary["age"].head(5).map(lambda v: "" if math.isnan(v) else str(v))
    )
    df["age"] = df["age"].replace("", None)
    out = predictor.predict(df, proba=True)  # unseen city: ignored by the encoder; "41.0": a number
    assert len(out) == 5 and out["prediction"].isin([0, 1]).all()


def test_predict_one_agrees_with_predict_row_by_row(predictor: Predictor, binary: pd.DataFrame) -> None:
    features = binary.drop(columns="churned")  # (300, 7), with missing values in four columns
    # Every row with a missing value (the general path) and 40 complete rows (the fast path): (n, 7)
    keep = features.isna().any(axis=1) | (features.notna().all(axis=1).cumsum() <= 40)
    features = features[keep].reset_index(drop=True)
    whole = predictor.predict(features, proba=True)
    records = features.to_dict(orient="records")  # NaN for missing values
    ones = pd.DataFrame([predictor.predict_one(r, proba=True) for r in records])
    np.testing.assert_array_equal(ones["prediction"], whole["prediction"])
    np.testing.assert_allclose(ones[["proba_0", "proba_1"]], whole[["proba_0", "proba_1"]], rtol=1e-12)
    assert ones["customer_id"].tolist() == whole["customer_id"].tolist()


def test_predict_one_inputs_of_every_kind(predictor: Predictor, binary: pd.DataFrame) -> None:
    rec = binary.drop(columns=["churned", "customer_id"]).iloc[3].to_dict()
    base = predictor.predict_one(rec, proba=True)
    assert set(base) == {"prediction", "proba_0", "proba_1"}  # no id given, none returned
    assert isinstance(base["prediction"], int) and isinstance(base["proba_1"], float)
    variants = [
        {**rec, "score": np.float64(rec["score"])},  # numpy scalars
        {**rec, "score": str(rec["score"])},  # a number as text: converted as predict converts it
        {**rec, "extra": [1, 2]},  # extra keys ignored
    ]
    for v in variants:
        assert predictor.predict_one(v, proba=True) == pytest.approx(base)
    missing = predictor.predict_one({**rec, "age": None, "city": None}, proba=True)
    via_frame = predictor.predict(
        pd.DataFrame([{**rec, "age": None, "city": None, "customer_id": "x"}]), proba=True
    ).iloc[0]
    assert missing["prediction"] == via_frame["prediction"]
    assert missing["proba_1"] == pytest.approx(via_frame["proba_1"], rel=1e-12)
    with pytest.raises(SchemaError, match="missing column: plan"):
        predictor.predict_one({k: v for k, v in rec.items() if k != "plan"})
    with pytest.raises(SchemaError, match="column 'income'.*cannot convert 'rich'"):
        predictor.predict_one({**rec, "income": "rich"})
    with pytest.raises(SchemaError, match="column 'income'.*infinite"):
        predictor.predict_one({**rec, "income": float("inf")})


def test_predict_one_regression(fixtures: Path) -> None:
    df = read_table(fixtures / "regression.csv")
    p = Predictor(train_from_data(HOUSE, df))
    out = p.predict_one(df.iloc[0].to_dict(), proba=True)  # proba: nothing to add for a regressor
    assert set(out) == {"house_id", "prediction"} and isinstance(out["prediction"], float)
    assert out["prediction"] == pytest.approx(p.predict(df.head(1))["prediction"].iloc[0], rel=1e-12)


@pytest.mark.parametrize("name", ["p.jsonl", "p.csv", "p.parquet", "p.jsonl.gz"])
def test_predict_from_path_streams_in_order(
    tmp_path: Path, churn_root: Path, predictor: Predictor, fixtures: Path, binary: pd.DataFrame, name: str
) -> None:
    out = predict_from_path(churn_root, fixtures / "binary.csv", tmp_path / name, proba=True, chunk_rows=70)
    got = read_table(out)  # (300, 4): written in five chunks
    want = predictor.predict(binary, proba=True)
    assert list(got.columns) == list(want.columns) and len(got) == 300
    assert got["customer_id"].tolist() == binary["customer_id"].tolist()
    np.testing.assert_array_equal(got["prediction"], want["prediction"])
    # JSON Lines carries floats to 10 decimals (pandas' to_json default, in mlprod.io); CSV and Parquet all
    # digits, and a chunk of 70 rows may differ from 300 in the last bit of a matrix product.
    atol = 1e-10 if ".jsonl" in name else 0.0
    np.testing.assert_allclose(got["proba_1"], want["proba_1"], rtol=1e-14, atol=atol)


def test_a_bad_row_in_a_later_chunk_is_counted_in_the_whole_file(
    tmp_path: Path, churn_root: Path, binary: pd.DataFrame
) -> None:
    bad = binary.assign(score=binary["score"].astype(object).where(binary.index != 250, "high"))
    inp = write_table(bad, tmp_path / "in.csv")
    out = tmp_path / "p.jsonl"
    out.write_text("an earlier output\n")
    with pytest.raises(SchemaError, match=r"in\.csv: column 'score': row 251: cannot convert 'high'"):
        predict_from_path(churn_root, inp, out, chunk_rows=100)
    assert out.read_text() == "an earlier output\n"  # not clobbered
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "p.jsonl"]  # no temporary left behind


def test_bad_paths_fail_before_any_work(tmp_path: Path, churn_root: Path, fixtures: Path) -> None:
    with pytest.raises(DataError, match="unknown table format"):
        predict_from_path(churn_root, fixtures / "binary.csv", tmp_path / "p.txt")
    inp = write_table(read_table(fixtures / "binary.csv"), tmp_path / "in.csv")
    with pytest.raises(DataError, match="overwrite the input"):
        predict_from_path(churn_root, inp, inp)
    with pytest.raises(DataError, match="file not found"):
        predict_from_path(churn_root, tmp_path / "nope.csv", tmp_path / "p.jsonl")
    with pytest.raises(BundleError, match="no such model folder"):
        predict_from_path(tmp_path / "no_model", inp, tmp_path / "p.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_three_layers_give_the_same_predictions(
    tmp_path: Path, churn_root: Path, predictor: Predictor, fixtures: Path, binary: pd.DataFrame
) -> None:
    in_memory = predictor.predict(binary, proba=True).reset_index(drop=True)
    from_path = read_table(
        predict_from_path(churn_root, fixtures / "binary.csv", tmp_path / "a.jsonl", proba=True)
    )
    r = CliRunner().invoke(
        app,
        ["predict", "--model-dir", str(churn_root), "--input", str(fixtures / "binary.csv")]
        + ["--output", str(tmp_path / "b.jsonl"), "--proba", "--chunk-rows", "128"],
    )
    assert r.exit_code == 0 and r.stdout.strip().endswith("b.jsonl"), r.output
    from_cli = read_table(tmp_path / "b.jsonl")
    pd.testing.assert_frame_equal(from_path, from_cli)
    pd.testing.assert_frame_equal(
        from_path, in_memory, check_dtype=False, rtol=0, atol=1e-10
    )  # JSON: 10 decimals


def test_load_a_version_or_a_root(churn_root: Path, predictor: Predictor) -> None:
    (version,) = [p for p in churn_root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert Predictor.load(version).version == predictor.version == version.name
    assert "churn" in repr(predictor)
