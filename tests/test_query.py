"""SQL on DuckDB: fetch with lineage and bound parameters, one-line SQL errors, evaluation in SQL."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlprod.errors import DataError, QueryError
from mlprod.evaluate import evaluate_from_data
from mlprod.io import sha256_file
from mlprod.lineage import read_lineage
from mlprod.query import evaluate_sql, fetch
from mlprod.tables import read_table, write_table


@pytest.fixture
def customers_sql(tmp_path: Path) -> Path:
    q = tmp_path / "customers.sql"
    q.write_text(
        "-- customers above an age\nSELECT customer_id, age, plan\nFROM customers\nWHERE age >= $min_age\nORDER BY customer_id\n"
    )
    return q


def test_fetch_writes_output_and_lineage(tmp_path: Path, fixtures: Path, customers_sql: Path) -> None:
    out = fetch(
        customers_sql,
        tmp_path / "out" / "old.csv",
        {"customers": fixtures / "binary.csv"},
        params={"min_age": 60},
    )
    df = read_table(out)
    src = read_table(fixtures / "binary.csv")
    assert len(df) == int((src["age"] >= 60).sum()) and (df["age"] >= 60).all()
    rec = read_lineage(out)
    assert rec["output"] == {"path": "old.csv", "sha256": sha256_file(out), "rows": len(df)}
    assert rec["params"] == {"min_age": 60} and rec["engine"]["name"] == "duckdb"
    sql_ref, table_ref = rec["inputs"]
    assert sql_ref["role"] == "sql" and sql_ref["sha256"] == sha256_file(customers_sql)
    assert table_ref["name"] == "customers" and table_ref["sha256"] == sha256_file(fixtures / "binary.csv")
    text = (tmp_path / "out" / "old.csv.lineage.json").read_text()
    assert str(tmp_path) not in text and '"/' not in text  # no absolute path anywhere
    assert "60" not in customers_sql.read_text()  # the parameter was bound, not pasted


def test_fetch_from_a_duckdb_database(tmp_path: Path, customers_sql: Path, fixtures: Path) -> None:
    import duckdb

    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE customers AS SELECT * FROM read_csv(?)", [str(fixtures / "binary.csv")])
    out = fetch(customers_sql, tmp_path / "old.parquet", database=db, params={"min_age": 70})
    assert len(read_table(out)) > 0
    roles = [i["role"] for i in read_lineage(out)["inputs"]]
    assert roles == ["sql", "database"] and read_lineage(out)["inputs"][1]["path"] == "warehouse.duckdb"


@pytest.mark.parametrize(
    ("sql", "params", "words"),
    [
        ("SELEC 1\n", {}, "Parser Error"),
        ("SELECT *\nFROM missing_table\n", {}, "missing_table does not exist"),
        ("SELECT * FROM customers WHERE age > $min_age\n", {}, "min_age"),
    ],
)
def test_sql_errors_name_the_file_and_leave_no_output(
    tmp_path: Path, fixtures: Path, sql: str, params: dict, words: str
) -> None:
    q = tmp_path / "bad.sql"
    q.write_text(sql)
    out = tmp_path / "out.csv"
    out.write_text("keep me\n")
    with pytest.raises(QueryError) as info:
        fetch(q, out, {"customers": fixtures / "binary.csv"}, params=params)
    msg = str(info.value)
    assert msg.startswith(str(q)) and words in msg and "\n" not in msg
    assert out.read_text() == "keep me\n" and not (tmp_path / "out.csv.lineage.json").exists()


def test_sql_error_from_the_cli_is_one_line(cli, tmp_path: Path, fixtures: Path) -> None:
    q = tmp_path / "bad.sql"
    q.write_text("SELECT *\nFROM nowhere\n")
    r = cli("data", "fetch", "--sql", str(q), "--output", str(tmp_path / "o.csv"), cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "bad.sql:2:" in r.stderr
    assert not (tmp_path / "o.csv").exists()


# --- evaluation in SQL agrees with pandas ---------------------------------------------------------


def _predictions(truth: pd.DataFrame, id_col: str, target: str, task: str, seed: int = 0) -> pd.DataFrame:
    "Imperfect predictions: the truth with some rows changed (seeded)."
    rng = np.random.default_rng(seed)
    y = truth[target].to_numpy()
    if task == "regression":
        pred = y + rng.normal(0, 10, len(y))
    else:
        labels = np.unique(y)
        pred = np.where(rng.random(len(y)) < 0.3, rng.choice(labels, len(y)), y)
    order = rng.permutation(len(y))  # another row order than the truth
    return pd.DataFrame({id_col: truth[id_col].to_numpy()[order], "prediction": pred[order]})


@pytest.mark.parametrize(
    ("name", "task", "id_col", "target"),
    [
        ("binary.csv", "classification", "customer_id", "churned"),
        ("multiclass.csv", "classification", "row_id", "label"),
        ("regression.csv", "regression", "house_id", "price"),
    ],
)
def test_sql_and_pandas_engines_agree(
    tmp_path: Path, fixtures: Path, name: str, task: str, id_col: str, target: str
) -> None:
    truth = read_table(fixtures / name)
    preds = _predictions(truth, id_col, target, task)
    pfile = write_table(preds, tmp_path / "pred.jsonl")
    by_sql = evaluate_sql(pfile, fixtures / name, task, id_col, target)
    by_pandas = evaluate_from_data(read_table(pfile), truth, task, id_col, target)
    shared = [k for k in by_sql if k in by_pandas and isinstance(by_pandas[k], float)]
    expected = {"regression": {"rmse", "mae", "r2", "mape"}}.get(
        task, {"accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro"}
    )
    assert set(shared) == expected
    for k in shared:
        assert math.isclose(by_sql[k], by_pandas[k], rel_tol=0, abs_tol=1e-9), (k, by_sql[k], by_pandas[k])
    if task == "classification":
        cm_pandas = by_pandas["confusion_matrix"]
        cm_sql = by_sql["confusion_matrix"]
        assert [str(x) for x in cm_pandas["labels"]] == cm_sql["labels"] or sorted(
            map(str, cm_pandas["labels"])
        ) == cm_sql["labels"]
        assert np.asarray(cm_sql["matrix"]).sum() == len(truth)
        json.dumps(by_sql)


def test_sql_evaluation_refuses_duplicated_and_missing_ids(tmp_path: Path, fixtures: Path) -> None:
    truth = read_table(fixtures / "regression.csv")
    preds = _predictions(truth, "house_id", "price", "regression")
    dup = write_table(pd.concat([preds, preds.head(1)]), tmp_path / "dup.csv")
    with pytest.raises(DataError, match=r"dup\.csv: column 'house_id': duplicated id in the predictions"):
        evaluate_sql(dup, fixtures / "regression.csv", "regression", "house_id", "price")
    short = write_table(preds.iloc[1:], tmp_path / "short.csv")
    with pytest.raises(DataError, match="id of the truth without a prediction"):
        evaluate_sql(short, fixtures / "regression.csv", "regression", "house_id", "price")
