"""evaluate: sklearn's metrics on a one-to-one join by id; missing or duplicated ids named; layers agree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from typer.testing import CliRunner

from mlprod.cli import app
from mlprod.errors import ConfigError, DataError, SchemaError
from mlprod.evaluate import evaluate_from_data, evaluate_from_path
from mlprod.io import sha256_file
from mlprod.tables import read_table, write_table

TRUTH = pd.DataFrame(
    {"id": ["a", "b", "c", "d", "e", "f"], "label": ["x", "y", "y", "z", "x", "z"]}
)  # (6, 2)
PROBA = np.array(
    [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.4, 0.4, 0.2], [0.2, 0.5, 0.3]]
)  # (6, 3): columns x, y, z


def _predictions() -> pd.DataFrame:
    labels = np.array(["x", "y", "z"])[PROBA.argmax(axis=1)]  # (6,)
    p = pd.DataFrame({"id": TRUTH["id"], "prediction": labels})
    p[["proba_x", "proba_y", "proba_z"]] = PROBA
    return p.iloc[[5, 3, 1, 0, 2, 4]]  # another order than the truth's


def test_classification_metrics_are_sklearns() -> None:
    m = evaluate_from_data(_predictions(), TRUTH, "classification", "id", "label")
    y, pred = TRUTH["label"], np.array(["x", "y", "z"])[PROBA.argmax(axis=1)]
    assert m["task"] == "classification" and m["rows"] == 6
    assert m["accuracy"] == skm.accuracy_score(y, pred) == 4 / 6
    assert m["balanced_accuracy"] == skm.balanced_accuracy_score(y, pred)
    assert m["f1_macro"] == skm.f1_score(y, pred, average="macro")
    assert m["precision_macro"] == skm.precision_score(y, pred, average="macro", zero_division=0)
    assert m["recall_macro"] == skm.recall_score(y, pred, average="macro")
    assert m["roc_auc"] == skm.roc_auc_score(y, PROBA, multi_class="ovr", labels=["x", "y", "z"])
    assert m["log_loss"] == skm.log_loss(y, PROBA, labels=["x", "y", "z"])
    assert m["confusion_matrix"] == {"labels": ["x", "y", "z"], "matrix": [[2, 0, 0], [1, 1, 0], [0, 1, 1]]}


def test_binary_roc_auc_uses_the_second_class_whatever_the_column_order() -> None:
    truth = pd.DataFrame({"id": [1, 2, 3, 4, 5], "y": [0, 0, 1, 1, 1]})
    p1 = np.array([0.1, 0.6, 0.35, 0.8, 0.9])  # (5,) probability of class 1
    preds = pd.DataFrame(
        {"id": [1, 2, 3, 4, 5], "prediction": (p1 > 0.5).astype(int), "proba_1": p1, "proba_0": 1 - p1}
    )
    m = evaluate_from_data(preds, truth, "classification", "id", "y")
    assert m["roc_auc"] == skm.roc_auc_score(truth["y"], p1) == pytest.approx(5 / 6)
    assert m["log_loss"] == skm.log_loss(truth["y"], np.column_stack([1 - p1, p1]))
    assert m["confusion_matrix"]["labels"] == [0, 1]  # numeric labels stay numbers
    # Without probabilities, the probability metrics are null rather than made up.
    m = evaluate_from_data(preds[["id", "prediction"]], truth, "classification", "id", "y")
    assert m["roc_auc"] is None and m["log_loss"] is None and m["accuracy"] == 0.6


def test_labels_as_text_and_as_numbers_match() -> None:
    truth = pd.DataFrame({"id": [1, 2, 3], "y": ["0", "1", "1"]})  # e.g. read from a CSV of quoted labels
    preds = pd.DataFrame(
        {"id": [1, 2, 3], "prediction": [0, 1, 0], "proba_0": [0.9, 0.2, 0.6], "proba_1": [0.1, 0.8, 0.4]}
    )
    m = evaluate_from_data(preds, truth, "classification", "id", "y")
    assert m["accuracy"] == 2 / 3 and m["roc_auc"] == 1.0


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_one_class_in_the_truth_leaves_roc_auc_null() -> None:
    truth = pd.DataFrame({"id": [1, 2], "y": [1, 1]})
    preds = pd.DataFrame({"id": [1, 2], "prediction": [1, 0], "proba_0": [0.2, 0.7], "proba_1": [0.8, 0.3]})
    m = evaluate_from_data(preds, truth, "classification", "id", "y")
    assert m["roc_auc"] is None and m["accuracy"] == 0.5 and m["log_loss"] is not None


def test_regression_metrics_are_sklearns() -> None:
    truth = pd.DataFrame({"house": [10, 11, 12, 13], "price": [100.0, 150.0, 200.0, 120.0]})
    preds = pd.DataFrame({"house": [13, 12, 11, 10], "prediction": [130.0, 190.0, 155.0, 90.0]})
    m = evaluate_from_data(preds, truth, "regression", "house", "price")
    y, p = truth["price"], np.array([90.0, 155.0, 190.0, 130.0])
    assert m == {
        "task": "regression",
        "rows": 4,
        "rmse": skm.root_mean_squared_error(y, p),
        "mae": skm.mean_absolute_error(y, p),
        "r2": skm.r2_score(y, p),
        "mape": skm.mean_absolute_percentage_error(y, p),
    }
    assert m["mae"] == 8.75


@pytest.mark.parametrize(
    ("preds", "truth", "error", "fragment"),
    [
        (lambda p: p.iloc[1:], TRUTH, DataError, "1 ids of the truth have no prediction: 'f'"),
        (lambda p: p, TRUTH.iloc[:4], DataError, "2 predicted ids are not in the truth: 'f', 'e'"),
        (
            lambda p: pd.concat([p, p.iloc[:2]]),
            TRUTH,
            DataError,
            "duplicated ids in the predictions: 'f', 'd'",
        ),
        (
            lambda p: p,
            pd.concat([TRUTH, TRUTH]),
            DataError,
            "duplicated ids in the truth: 'a', 'b', 'c', 'd', 'e' (and 1 more)",
        ),
        (lambda p: p.drop(columns="id"), TRUTH, SchemaError, "the predictions have no column 'id'"),
        (lambda p: p, TRUTH.rename(columns={"label": "y"}), SchemaError, "the truth have no column 'label'"),
        (lambda p: p.assign(prediction=None), TRUTH, DataError, "column 'prediction': 6 rows have no value"),
        (
            lambda p: p.assign(proba_y=["0.1", "high", "0.2", "0.3", "0.4", "0.5"]),
            TRUTH,
            DataError,
            "column 'proba_y': row 2 (id 'd'): 'high' is not a number",
        ),
        (
            lambda p: p.assign(proba_z=[0.1, None, 0.2, 0.3, 0.4, 0.5]),
            TRUTH,
            DataError,
            "column 'proba_z': row 2 (id 'd'): a missing value",
        ),
    ],
    ids=[
        "missing prediction",
        "missing truth",
        "duplicated prediction",
        "duplicated truth",
        "no id",
        "no target",
        "empty",
        "text proba",
        "missing proba",
    ],
)
def test_bad_joins_name_a_few_ids(preds, truth: pd.DataFrame, error: type, fragment: str) -> None:
    with pytest.raises(error) as e:
        evaluate_from_data(preds(_predictions()), truth, "classification", "id", "label")
    assert fragment in str(e.value), str(e.value)


def test_regression_needs_numbers_and_a_known_task() -> None:
    truth = pd.DataFrame({"id": [1, 2], "y": [1.0, 2.0]})
    with pytest.raises(DataError, match="column 'prediction': 'high' is not a number"):
        evaluate_from_data(
            pd.DataFrame({"id": [1, 2], "prediction": [1.0, "high"]}), truth, "regression", "id", "y"
        )
    with pytest.raises(ConfigError, match="column 'task': unknown task 'ranking'"):
        evaluate_from_data(truth.rename(columns={"y": "prediction"}), truth, "ranking", "id", "y")


def test_evaluate_from_path_writes_metrics_and_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_table(_predictions(), "preds.jsonl")
    write_table(TRUTH.assign(extra=1), "truth.parquet")
    got = evaluate_from_path(
        "preds.jsonl",
        "truth.parquet",
        "out/metrics.json",
        task="classification",
        id_col="id",
        target_col="label",
    )
    assert json.loads(Path("out/metrics.json").read_text()) == got
    assert got["inputs"] == {
        "predictions": {"path": "preds.jsonl", "rows": 6, "sha256": sha256_file("preds.jsonl")},
        "truth": {"path": "truth.parquet", "rows": 6, "sha256": sha256_file("truth.parquet")},
    }


def test_a_failed_evaluation_leaves_no_output_and_keeps_the_old_one(tmp_path: Path) -> None:
    write_table(_predictions().iloc[1:], tmp_path / "preds.csv")
    write_table(TRUTH, tmp_path / "truth.csv")
    out = tmp_path / "metrics.json"
    out.write_text('{"old": true}\n')
    with pytest.raises(DataError, match=r"preds\.csv: column 'id': 1 ids of the truth have no prediction"):
        evaluate_from_path(
            tmp_path / "preds.csv",
            tmp_path / "truth.csv",
            out,
            task="classification",
            id_col="id",
            target_col="label",
        )
    assert out.read_text() == '{"old": true}\n'
    with pytest.raises(ConfigError, match="column 'target_col': evaluate needs target_col"):
        evaluate_from_path(
            tmp_path / "preds.csv",
            tmp_path / "truth.csv",
            tmp_path / "m2.json",
            task="classification",
            id_col="id",
        )
    with pytest.raises(DataError, match="the output would overwrite an input"):
        evaluate_from_path(
            tmp_path / "preds.csv",
            tmp_path / "truth.csv",
            tmp_path / "truth.csv",
            task="classification",
            id_col="id",
            target_col="label",
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "preds.csv", "truth.csv"]


def test_three_layers_give_the_same_metrics(tmp_path: Path, fixtures: Path) -> None:
    from mlprod.bundle import save_bundle
    from mlprod.predict import Predictor
    from mlprod.train import train_from_data

    df = read_table(fixtures / "regression.csv")  # (300, 6)
    config = {
        "name": "house",
        "task": "regression",
        "target": "price",
        "id_col": "house_id",
        "estimator": {"class": "sklearn.linear_model.Ridge"},
    }
    bundle = train_from_data(config, df)
    root = tmp_path / "models" / "house"
    save_bundle(bundle, root)
    predictions = Predictor(bundle).predict(df)  # (300, 2)
    write_table(predictions, tmp_path / "preds.csv")
    in_memory = evaluate_from_data(predictions, df, "regression", "house_id", "price")
    from_path = evaluate_from_path(
        tmp_path / "preds.csv", fixtures / "regression.csv", tmp_path / "a.json", model_dir=root
    )
    r = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--predictions",
            str(tmp_path / "preds.csv"),
            "--truth",
            str(fixtures / "regression.csv"),
        ]
        + [
            "--output",
            str(tmp_path / "b.json"),
            "--task",
            "regression",
            "--id-col",
            "house_id",
            "--target-col",
            "price",
        ],
    )
    assert r.exit_code == 0 and "regression, 300 rows: rmse" in r.stdout, r.output
    from_cli = json.loads((tmp_path / "b.json").read_text())
    assert (
        from_cli == from_path
        and {k: v for k, v in from_path.items() if k not in ("inputs", "engine")} == in_memory
    )
