"""Ids are labels, not numbers: they come out of predict (and are joined by evaluate) exactly as they went in.

`007`, `1e3`, `00123`, `-0`, an empty id and `39` between missing ones, across chunk boundaries, with one or two
workers and the Dask engine; CSV and JSON Lines in and out; the recommender's user and item ids.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlprod.batch import run_dask
from mlprod.errors import DataError
from mlprod.evaluate import evaluate_from_path
from mlprod.predict import Predictor, predict_from_path
from mlprod.tables import iter_table, read_table
from mlprod.train import train_from_path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

# Ids as they are written in a CSV file: each is a distinct label; "" is an empty field.
IDS = ["007", "1e3", "00123", "-0", "", "39", "", "43", "008", "7", "NA", "7.0", "x,y", " 5 ", "1000"]
UNIQUE = [i for i in IDS if i]  # evaluate needs an id in every row


def _csv_field_texts(path: Path, column: int = 0) -> list[str]:
    "The text of one column of a CSV file, field by field, as written (the header left out)."
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return [r[column] for r in rows[1:]]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    "A regression model trained on the house prices fixture (integer house ids)."
    root = tmp_path_factory.mktemp("model")
    return train_from_path(
        ROOT / "configs" / "house_price_ridge.yaml", FIXTURES / "regression.csv", root / "m"
    )


def _table(ids: list[str]) -> pd.DataFrame:
    "The fixture's first rows with `ids` as house ids (text)."
    df = read_table(FIXTURES / "regression.csv").head(len(ids)).copy()
    df["house_id"] = pd.Series(ids, dtype=object)
    return df


@pytest.fixture(scope="module")
def csv_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("in") / "houses.csv"
    _table(IDS).to_csv(path, index=False)  # empty ids as empty fields; "x,y" quoted
    assert _csv_field_texts(path) == IDS
    return path


# --- the readers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 100])
def test_csv_ids_are_read_as_text_in_every_chunk(csv_input: Path, chunk_rows: int) -> None:
    chunks = list(iter_table(csv_input, chunk_rows=chunk_rows, ids=["house_id"]))
    got = pd.concat(chunks)["house_id"].tolist()
    assert got == IDS
    assert read_table(csv_input, ids=["house_id"])["house_id"].tolist() == IDS
    # the other columns are read as before: numbers, and NA is missing there
    assert chunks[0]["area"].dtype == np.float64


def test_without_ids_a_csv_is_read_as_before(csv_input: Path) -> None:
    plain = read_table(FIXTURES / "regression.csv")
    assert plain["house_id"].dtype == np.int64


def test_jsonl_string_ids_stay_strings_and_numbers_keep_their_spelling(tmp_path: Path) -> None:
    path = tmp_path / "ids.jsonl"
    lines = [
        '{"id": "007", "x": 1}',
        '{"id": null, "x": 2}',
        '{"id": "", "x": 3}',
        '{"x": 4}',
        '{"id": "39", "x": 5}',
    ]
    path.write_text("\n".join(lines) + "\n")
    for chunk_rows in (1, 2, 100):
        got = pd.concat(list(iter_table(path, chunk_rows=chunk_rows, ids=["id"])))["id"].tolist()
        assert [None if pd.isna(v) else v for v in got] == ["007", None, "", None, "39"]
    numbers = tmp_path / "numbers.jsonl"
    numbers.write_text(
        '{"id": 39, "x": 1}\n{"id": null, "x": 2}\n{"id": 43, "x": 3}\n{"id": 1e3, "x": 4}\n'
        '{"id": -0, "x": 5}\n{"id": 7, "x": 6}\n'
    )
    for chunk_rows in (1, 2, 3, 100):
        got = pd.concat(list(iter_table(numbers, chunk_rows=chunk_rows, ids=["id"])))["id"].tolist()
        assert [None if pd.isna(v) else v for v in got] == ["39", None, "43", "1e3", "-0", "7"]


def test_parquet_integer_ids_stay_integers_next_to_missing_ones(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"id": pa.array([39, None, 43, 7], pa.int64()), "x": [1.0, 2.0, 3.0, 4.0]}), path)
    for chunk_rows in (1, 2, 100):
        frames = list(iter_table(path, chunk_rows=chunk_rows, ids=["id"]))
        col = pd.concat(frames)["id"]
        assert [None if pd.isna(v) else int(v) for v in col] == [39, None, 43, 7]
        assert all(pd.api.types.is_integer_dtype(f["id"]) for f in frames)  # never 39.0


# --- predict: the function, any number of workers, the Dask engine, the command ---------------------------


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("chunk_rows", [2, 3])
def test_predict_csv_to_csv_keeps_every_id_byte_for_byte(
    model: Path, csv_input: Path, tmp_path: Path, workers: int, chunk_rows: int
) -> None:
    out = predict_from_path(model, csv_input, tmp_path / "p.csv", chunk_rows=chunk_rows, workers=workers)
    assert _csv_field_texts(out) == IDS


@pytest.mark.parametrize("workers", [1, 2])
def test_predict_csv_to_jsonl_gives_each_id_as_the_same_text(
    model: Path, csv_input: Path, tmp_path: Path, workers: int
) -> None:
    out = predict_from_path(model, csv_input, tmp_path / "p.jsonl", chunk_rows=2, workers=workers)
    got = [json.loads(line)["house_id"] for line in out.read_text().splitlines()]
    assert got == IDS  # JSON strings, "" for an empty field


@pytest.mark.parametrize("workers", [1, 2])
def test_predict_jsonl_to_jsonl_keeps_every_id(model: Path, tmp_path: Path, workers: int) -> None:
    df = _table(IDS)
    ids: list[object] = list(IDS)
    ids[4] = None  # a missing id (null) next to an empty one
    df["house_id"] = pd.Series(ids, dtype=object)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in df.to_dict(orient="records")))
    out = predict_from_path(model, src, tmp_path / "p.jsonl", chunk_rows=2, workers=workers)
    got = [json.loads(line)["house_id"] for line in out.read_text().splitlines()]
    assert got == ids
    back = predict_from_path(model, src, tmp_path / "p.csv", chunk_rows=3, workers=workers)
    assert _csv_field_texts(back) == ["" if i is None else i for i in ids]


def test_predict_through_the_predictor_keeps_the_frame_ids(model: Path, csv_input: Path) -> None:
    df = read_table(csv_input, ids=["house_id"])
    out = Predictor.load(model).predict(df)
    assert out["house_id"].tolist() == IDS


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_dask_engine_keeps_every_id(model: Path, tmp_path: Path, fmt: str) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    frame = _table(IDS)
    frame.iloc[:7].to_csv(parts / "part-0.csv", index=False)
    frame.iloc[7:].to_csv(parts / "part-1.csv", index=False)
    out = run_dask(
        model,
        parts,
        tmp_path / "pred",
        workers=1,
        processes=False,
        output_format=fmt,
        chunk_rows=2,
        loader=Predictor.load,
    )
    got: list[str] = []
    for p in sorted(out.glob(f"*.{fmt}")):
        if fmt == "csv":
            got += _csv_field_texts(p)
        else:
            got += [json.loads(line)["house_id"] for line in p.read_text().splitlines()]
    assert got == IDS


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_command_keeps_every_id(model: Path, csv_input: Path, tmp_path: Path, cli, workers: str) -> None:
    out = tmp_path / "p.csv"
    args = ["predict", "--model-dir", str(model), "--input", str(csv_input), "--output", str(out)]
    r = cli(*args, "--chunk-rows", "2", "--workers", workers, "--quiet")
    assert r.returncode == 0, r.stderr
    assert _csv_field_texts(out) == IDS


def test_the_command_with_the_dask_engine_keeps_every_id(
    model: Path, csv_input: Path, tmp_path: Path, cli
) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "part-0.csv").write_bytes(csv_input.read_bytes())
    out = tmp_path / "pred"
    args = [
        "predict",
        "--engine",
        "dask",
        "--model-dir",
        str(model),
        "--input",
        str(parts),
        "--output",
        str(out),
    ]
    r = cli(*args, "--chunk-rows", "2", "--workers", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    files = sorted(out.iterdir())
    got = read_table(files[0], ids=["house_id"])["house_id"].tolist()
    assert got == IDS


# --- evaluate joins such ids --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("truth") / "truth.csv"
    _table(UNIQUE).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("engine", ["pandas", "sql"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_evaluate_matches_every_id(model: Path, truth: Path, tmp_path: Path, engine: str, fmt: str) -> None:
    pred = predict_from_path(model, truth, tmp_path / f"p.{fmt}", chunk_rows=2, workers=1)
    metrics = evaluate_from_path(pred, truth, tmp_path / "m.json", model_dir=model, engine=engine)
    assert metrics["rows"] == len(UNIQUE)
    # 007 and 7, 1e3 and 1000 are different ids: a truth whose 7 is renamed no longer matches
    other = _table(UNIQUE)
    other.loc[UNIQUE.index("7"), "house_id"] = "0007"
    wrong = tmp_path / "other.csv"
    other.to_csv(wrong, index=False)
    with pytest.raises(DataError, match="0007"):
        evaluate_from_path(pred, wrong, tmp_path / "m2.json", model_dir=model, engine=engine)


@pytest.mark.parametrize("engine", ["pandas", "sql"])
def test_evaluate_refuses_an_empty_id(model: Path, csv_input: Path, tmp_path: Path, engine: str) -> None:
    pred = predict_from_path(model, csv_input, tmp_path / "p.csv", chunk_rows=4, workers=1)
    with pytest.raises(DataError, match="no id"):
        evaluate_from_path(pred, csv_input, tmp_path / "m.json", model_dir=model, engine=engine)


def test_training_tells_007_from_7(tmp_path: Path) -> None:
    df = read_table(FIXTURES / "regression.csv")
    df["house_id"] = [f"h{i}" for i in range(len(df))]
    df.loc[0, "house_id"], df.loc[1, "house_id"] = "7", "007"
    path = tmp_path / "train.csv"
    df.to_csv(path, index=False)
    bundle = train_from_path(
        ROOT / "configs" / "house_price_ridge.yaml", path, tmp_path / "m"
    )  # no duplicates
    assert bundle.exists()
    df.loc[2, "house_id"] = "7"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match="duplicated ids"):
        train_from_path(ROOT / "configs" / "house_price_ridge.yaml", path, tmp_path / "m2")


# --- the recommender -------------------------------------------------------------------------------------


def test_recommender_tells_007_from_7(tmp_path: Path) -> None:
    inter = read_table(FIXTURES / "interactions.csv")
    users = sorted(inter["user_id"].unique())
    items = sorted(inter["item_id"].unique())
    # users u000 -> "7", u001 -> "007"; items i000 -> "7", i001 -> "007", i002 -> "7.0"
    umap = {u: u for u in users} | {users[0]: "7", users[1]: "007"}
    imap = {i: i for i in items} | {items[0]: "7", items[1]: "007", items[2]: "7.0"}
    inter["user_id"] = inter["user_id"].map(umap)
    inter["item_id"] = inter["item_id"].map(imap)
    path = tmp_path / "inter.csv"
    inter.to_csv(path, index=False)
    bundle = train_from_path(ROOT / "configs" / "interactions_itemknn.yaml", path, tmp_path / "m")
    predictor = Predictor.load(bundle)
    model = predictor.model
    assert model.n_users_ == len(users) and model.n_items_ == len(items)
    assert {"7", "007"} <= set(model.user_ids_) and {"7", "007", "7.0"} <= set(model.item_ids_)
    recs = predictor.recommend(["007", "7"])
    assert recs["user_id"].tolist() == ["007", "7"]
    assert not recs["fallback"].any()  # both known: two users, not one
    assert recs["items"].iloc[0] != recs["items"].iloc[1]
    everything = {i for lst in predictor.recommend(list(umap.values()), k=30)["items"] for i in lst}
    assert {"7", "007", "7.0"} <= everything
    # predict from a file: the users come back as written
    req = tmp_path / "users.csv"
    req.write_text("user_id\n007\n7\n0007\n")
    out = predict_from_path(bundle, req, tmp_path / "recs.jsonl", chunk_rows=1, workers=1)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["user_id"] for r in rows] == ["007", "7", "0007"]
    assert [r["fallback"] for r in rows] == [False, False, True]  # 0007 was never seen


def test_a_short_row_is_still_refused_when_the_id_is_the_last_column(tmp_path: Path) -> None:
    "pandas pads a short row with '' in a text column: a cut-off last line must not read as an empty id."
    path = tmp_path / "short.csv"
    path.write_text("x,id\n1,007\n2\n3,\n")
    with pytest.raises(DataError, match="ragged row with 1 field"):
        read_table(path, ids=["id"])
    path.write_text("x,id\n1,007\n3,\n")  # an empty id field is a field: fine
    assert read_table(path, ids=["id"])["id"].tolist() == ["007", ""]


def test_jsonl_ids_mixing_strings_and_numbers_read_the_same_in_any_chunking(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"id": "007", "x": 1}\n{"id": 7, "x": 2}\n\n{"id": 1.50, "x": 3}\n{"id": "", "x": 4}\n')
    for chunk_rows in (1, 2, 100):
        got = pd.concat(list(iter_table(path, chunk_rows=chunk_rows, ids=["id"])))
        assert got["id"].tolist() == ["007", "7", "1.50", ""]
        assert got["x"].tolist() == [1, 2, 3, 4]
    with pytest.raises(
        DataError, match="a string where line 1 has a number|a number where line 1 has a string"
    ):
        read_table(path)  # without ids: one JSON type per column, as before


@pytest.mark.parametrize("engine", ["pandas", "sql"])
def test_the_evaluate_command_matches_every_id(
    model: Path, truth: Path, tmp_path: Path, cli, engine: str
) -> None:
    pred = tmp_path / "p.jsonl"
    r = cli(
        "predict",
        "--model-dir",
        str(model),
        "--input",
        str(truth),
        "--output",
        str(pred),
        "--chunk-rows",
        "2",
    )
    assert r.returncode == 0, r.stderr
    out = tmp_path / "m.json"
    args = [
        "--predictions",
        str(pred),
        "--truth",
        str(truth),
        "--output",
        str(out),
        "--model-dir",
        str(model),
    ]
    r = cli("evaluate", *args, "--engine", engine)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["rows"] == len(UNIQUE)
