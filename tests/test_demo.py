"""The demo: `make demo`'s own command lines, run in a scratch folder, and a plain scikit-learn script beside them.

mlprod adds no difference to the model: the demo's test predictions are those of a plain scikit-learn pipeline
built by hand on the same split with the same seed.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mlprod.cli import app
from mlprod.predict import Predictor
from mlprod.tables import read_table

from conftest import ROOT

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def demo_commands() -> list[list[str]]:
    "The `mlprod ...` lines of the Makefile's demo recipe, as argument lists."
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = lines.index("demo: $(STAMP)") + 1
    recipe = []
    for line in lines[start:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return [shlex.split(line)[1:] for line in recipe if line.startswith("$(BIN)/mlprod ")]


def plain_sklearn(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    "What a data scientist would write by hand for configs/iris_rf.yaml: ((n_test,) labels, (n_test, 3) probabilities)."
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    # The config holds out 20% of the training file to score the model, then refits it on every training row.
    fit_rows = train
    pipe = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [("num", Pipeline([("impute", SimpleImputer(strategy="median"))]), FEATURES)]
                ),
            ),
            ("model", RandomForestClassifier(n_estimators=100, max_depth=5, random_state=42)),
        ]
    )
    pipe.fit(fit_rows[FEATURES], fit_rows["species"])
    return pipe.predict(test[FEATURES]), pipe.predict_proba(test[FEATURES])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    "A scratch folder where the demo's commands have run, in order."
    work = tmp_path_factory.mktemp("demo")
    shutil.copytree(ROOT / "configs", work / "configs")
    shutil.copytree(ROOT / "sql", work / "sql")
    commands = demo_commands()
    assert [c[0] for c in commands] == [
        "data",
        "data",
        "data",
        "train",
        "predict",
        "evaluate",
        "report",
        "lineage",
    ]
    commands = [
        c for c in commands if c[0] != "report"
    ]  # reports have their own tests (tests/test_report.py)
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        for args in commands:
            r = runner.invoke(app, args)
            assert r.exit_code == 0, f"mlprod {shlex.join(args)}\n{r.output}"
    return work


def test_demo_writes_every_output_under_outputs(demo: Path) -> None:
    out = demo / "outputs"
    for rel in (
        "demo/iris.csv",
        "demo/train.csv",
        "demo/test.csv",
        "predictions/iris_test.jsonl",
        "demo/metrics.json",
    ):
        assert (out / rel).is_file(), rel
    assert json.loads((out / "models" / "iris_rf" / "aliases.json").read_text())["latest"]
    metrics = json.loads((out / "demo" / "metrics.json").read_text())
    assert metrics["rows"] == 38 and metrics["accuracy"] >= 0.85


def test_demo_predictions_are_plain_sklearns(demo: Path) -> None:
    train = pd.read_csv(demo / "outputs" / "demo" / "train.csv")  # (112, 6)
    test = pd.read_csv(demo / "outputs" / "demo" / "test.csv")  # (38, 6)
    labels, proba = plain_sklearn(train, test)
    # The model the demo saved, loaded and verified, predicts exactly what the plain script predicts ...
    ours = Predictor.load(demo / "outputs" / "models" / "iris_rf").predict(test, proba=True)
    np.testing.assert_array_equal(ours["prediction"].to_numpy(), labels)
    np.testing.assert_array_equal(
        ours[["proba_setosa", "proba_versicolor", "proba_virginica"]].to_numpy(), proba
    )
    # ... and the demo's predictions file carries them, row for row (JSON Lines: floats to 10 decimals).
    written = read_table(demo / "outputs" / "predictions" / "iris_test.jsonl")
    # ids are labels: the text of test.csv's field, as a JSON string
    assert written["flower_id"].tolist() == test["flower_id"].astype(str).tolist()
    np.testing.assert_array_equal(written["prediction"].to_numpy(), labels)
    np.testing.assert_allclose(
        written[["proba_setosa", "proba_versicolor", "proba_virginica"]], proba, rtol=0, atol=1e-10
    )


def test_demo_metrics_are_sklearns_on_the_plain_predictions(demo: Path) -> None:
    from sklearn.metrics import accuracy_score, f1_score

    train = pd.read_csv(demo / "outputs" / "demo" / "train.csv")
    test = pd.read_csv(demo / "outputs" / "demo" / "test.csv")
    labels, _ = plain_sklearn(train, test)
    metrics = json.loads((demo / "outputs" / "demo" / "metrics.json").read_text())
    assert metrics["accuracy"] == accuracy_score(test["species"], labels)
    assert metrics["f1_macro"] == f1_score(test["species"], labels, average="macro")


def test_demo_outputs_trace_back_to_the_data(demo: Path) -> None:
    from mlprod.lineage import trace

    link = trace(demo / "outputs" / "demo" / "metrics.json")
    assert link.problems == []
    steps, todo = [], [link]
    while todo:
        node = todo.pop(0)
        steps.append(node.step)
        todo += node.children
    assert steps[:4] == ["evaluate", "predict", "split", "train"]  # predictions, truth, model; then theirs
    assert "iris" in steps and "fetch" in steps  # the raw export, and the SQL that made the modelling table
