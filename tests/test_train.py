"""train: the config is validated with errors naming the key; seeds, candidates, metadata; three layers agree."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from mlprod.bundle import load_bundle
from mlprod.cli import app
from mlprod.data import split_positions
from mlprod.errors import ConfigError, DataError, SchemaError
from mlprod.evaluate import evaluate_from_data
from mlprod.io import sha256_file
from mlprod.schema import validate
from mlprod.tables import read_table
from mlprod.train import load_config, parse_config, train_candidates, train_from_data, train_from_path

BASE: dict[str, Any] = {
    "name": "churn",
    "task": "classification",
    "target": "churned",
    "id_col": "customer_id",
    "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500}},
    "preprocessing": {"scale": True},
    "seed": 0,
}


@pytest.fixture(scope="module")
def binary() -> pd.DataFrame:
    return read_table(Path(__file__).parent / "fixtures" / "binary.csv")  # (300, 8)


def _write(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


def _est(cls: str, **params: Any) -> dict[str, Any]:
    return {"class": cls, "params": params}


BAD_CONFIGS = [
    ("unknown key", BASE | {"estimater": {}}, "estimater", "unknown key"),
    ("unknown nested key", BASE | {"preprocessing": {"scal": True}}, "preprocessing.scal", "unknown key"),
    ("wrong type", BASE | {"seed": "zero"}, "seed", "'zero' is a str"),
    ("bool for a number", BASE | {"validation": {"test_size": True}}, "validation.test_size", "is a boolean"),
    ("bad task", BASE | {"task": "clustering"}, "task", "unknown task 'clustering'"),
    ("missing target", _without(BASE, "target"), "target", "missing key"),
    ("no estimator", _without(BASE, "estimator"), "estimator", "give exactly one"),
    (
        "estimator and candidates",
        BASE | {"candidates": [{"name": "a", "class": "sklearn.dummy.DummyClassifier"}]},
        "candidates",
        "give exactly one",
    ),
    (
        "nonexistent estimator",
        BASE | {"estimator": _est("sklearn.ensemble.NoSuchForest")},
        "estimator.class",
        "has no 'NoSuchForest'",
    ),
    ("nonexistent module", BASE | {"estimator": _est("nosuch.Model")}, "estimator.class", "cannot import"),
    (
        "estimator of the other task",
        BASE | {"estimator": _est("sklearn.linear_model.Ridge")},
        "estimator.class",
        "is a regressor, the task is classification",
    ),
    (
        "unknown hyperparameter",
        BASE | {"estimator": _est("sklearn.linear_model.LogisticRegression", max_iterations=5)},
        "estimator.params",
        "unexpected keyword argument 'max_iterations'",
    ),
    (
        "bad hyperparameter value",
        BASE | {"estimator": _est("sklearn.ensemble.RandomForestClassifier", n_estimators=-3)},
        "estimator.params",
        "'n_estimators' parameter",
    ),
    ("metric of the other task", BASE | {"select_by": "rmse"}, "select_by", "unknown metric 'rmse'"),
    (
        "test size out of range",
        BASE | {"validation": {"test_size": 1.5}},
        "validation.test_size",
        "out of range",
    ),
    (
        "stratified regression",
        BASE
        | {
            "task": "regression",
            "estimator": _est("sklearn.linear_model.Ridge"),
            "validation": {"stratify": True},
        },
        "validation.stratify",
        "classification only",
    ),
    ("target as a feature", BASE | {"features": ["age", "churned"]}, "features", "cannot be a feature"),
    (
        "kind of a non-feature",
        BASE | {"features": ["age"], "categorical": ["city"]},
        "categorical",
        "not among",
    ),
    (
        "duplicate candidate names",
        _without(BASE, "estimator")
        | {"candidates": [_est("sklearn.dummy.DummyClassifier") | {"name": "a"}] * 2},
        "candidates",
        "two candidates are named 'a'",
    ),
    (
        "bad transformer",
        BASE | {"preprocessing": {"transformers": [{"class": "mlprod.features.NoSuch"}]}},
        "preprocessing.transformers[0]",
        "has no 'NoSuch'",
    ),
    ("bad preprocessing value", BASE | {"preprocessing": {"scale": "yes"}}, "preprocessing.scale", "invalid"),
]


@pytest.mark.parametrize(
    ("config", "key", "fragment"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_names_key_file_and_line(
    tmp_path: Path, config: dict[str, Any], key: str, fragment: str
) -> None:
    path = _write(tmp_path / "bad.yaml", config)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert e.value.column == key and f"column '{key}'" in msg and fragment in msg, msg
    assert msg.startswith(str(path)), msg
    if key in config or key.split(".")[0] in config:  # a key that is there is located by its line
        assert e.value.line is not None and msg.startswith(f"{path}:{e.value.line}: "), msg


def test_config_errors_give_the_line_of_the_key(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "name: m\ntask: regression\ntarget: price\nid_col: house_id\n"
        "estimator:\n  class: sklearn.linear_model.Ridge\n  params:\n    alpha: -1\n"
    )
    with pytest.raises(ConfigError, match=r"m\.yaml:7: column 'estimator\.params': The 'alpha' parameter"):
        load_config(path)
    path.write_text("name: m\ntask: [regression\n")
    with pytest.raises(ConfigError, match=r"m\.yaml:3: not valid YAML"):
        load_config(path)
    path.write_text("")
    with pytest.raises(ConfigError, match="empty config"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_shipped_configs_load() -> None:
    configs = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))
    loaded = {p.stem: load_config(p) for p in configs}
    assert {"iris_rf", "churn_logreg", "house_price_ridge", "churn_candidates"} <= set(loaded)
    rf = loaded["iris_rf"].candidates[0]
    assert rf.cls == "sklearn.ensemble.RandomForestClassifier" and rf.params == {
        "n_estimators": 100,
        "max_depth": 5,
    }
    assert loaded["iris_rf"].seed == 42
    assert len(loaded["churn_candidates"].candidates) >= 2
    assert {c.task for c in loaded.values()} == {"classification", "regression", "recommend"}


def test_the_seed_reaches_every_estimator_that_takes_one(binary: pd.DataFrame) -> None:
    cfg = _without(BASE, "estimator") | {
        "candidates": [
            {"name": "rf", **_est("sklearn.ensemble.RandomForestClassifier", n_estimators=5)},
            {
                "name": "rf_fixed",
                **_est("sklearn.ensemble.RandomForestClassifier", n_estimators=5, random_state=3),
            },
            {"name": "nb", **_est("sklearn.naive_bayes.GaussianNB")},  # takes no random_state
        ]
    }
    result = train_candidates(cfg, binary, seed=11)
    params = {c["name"]: c["params"] for c in result.best.config["candidates"]}
    assert params["rf"]["random_state"] == 11 and params["rf_fixed"]["random_state"] == 3
    assert "random_state" not in params["nb"] and result.best.config["seed"] == 11
    assert result.bundles["rf"].model.steps[-1][1].random_state == 11
    # The saved config alone reproduces the model: retraining from it gives the same predictions.
    again = train_from_data(result.bundles["rf"].config, binary)
    X = validate(again.schema, binary)  # (300, 6)
    np.testing.assert_array_equal(again.model.predict_proba(X), result.bundles["rf"].model.predict_proba(X))


def test_metrics_are_what_evaluate_gives_on_the_validation_rows(binary: pd.DataFrame) -> None:
    # refit: false keeps the scored model, so its own predictions reproduce the figures (refit: tests/test_refit.py)
    bundle = train_from_data(BASE | {"validation": {"refit": False}}, binary)
    _, val = split_positions(
        len(binary), 0.2, 0, binary["churned"].to_numpy()
    )  # the default validation split
    rows = binary.iloc[val]  # (60, 8)
    X = validate(bundle.schema, rows)
    predictions = pd.DataFrame(
        {"customer_id": rows["customer_id"], "prediction": bundle.model.predict(X)}
    ).join(pd.DataFrame(bundle.model.predict_proba(X), columns=["proba_0", "proba_1"], index=rows.index))
    expected = evaluate_from_data(predictions, rows, "classification", "customer_id", "churned")
    skip = ("candidates", "selection", "validation", "saved_model")
    assert {k: v for k, v in bundle.metrics.items() if k not in skip} == expected
    assert bundle.metrics["validation"]["rows"] == 60 and bundle.metrics["saved_model"]["fit_rows"] == 240
    assert bundle.metrics["rows"] == 60 and bundle.metadata["split"]["train_rows"] == 240
    assert bundle.golden is not None and set(bundle.golden["customer_id"]) <= set(rows["customer_id"])


def _regression_candidates(select_by: str) -> dict[str, Any]:
    return {
        "name": "house",
        "task": "regression",
        "target": "price",
        "id_col": "house_id",
        "candidates": [
            {"name": "mean", "class": "sklearn.dummy.DummyRegressor"},
            {"name": "ridge", "class": "sklearn.linear_model.Ridge"},
        ],
        "select_by": select_by,
    }


@pytest.mark.parametrize("select_by", ["rmse", "r2", "mape"])
def test_the_best_candidate_wins_in_the_metric_direction(fixtures: Path, select_by: str) -> None:
    df = read_table(fixtures / "regression.csv")
    result = train_candidates(_regression_candidates(select_by), df)
    scores = {n: m[select_by] for n, m in result.best.metrics["candidates"].items()}
    assert result.selected == "ridge", scores  # the constant predictor loses whichever way the metric points
    assert result.best.metrics["selection"] == {
        "select_by": select_by,
        "higher_is_better": select_by == "r2",
        "selected": "ridge",
    }


def test_keep_candidates_saves_each_as_a_version(tmp_path: Path, fixtures: Path) -> None:
    cfg = _write(tmp_path / "house.yaml", _regression_candidates("rmse"))
    root = tmp_path / "models" / "house"
    best = train_from_path(cfg, fixtures / "regression.csv", root, keep_candidates=True)
    versions = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(versions) == 2 and best in versions
    assert json.loads((root / "aliases.json").read_text())["latest"] == best.name
    other = load_bundle(next(v for v in versions if v != best))
    assert other.config["estimator"] == {"class": "sklearn.dummy.DummyRegressor", "params": {}}
    assert other.metadata["candidate"] == "mean" and other.metadata["selected"] is False
    assert (
        set(other.metrics["candidates"]) == {"mean", "ridge"}
        and other.metrics["selection"]["selected"] == "ridge"
    )
    assert load_bundle(root).metadata["candidate"] == "ridge"
    # Without --keep-candidates: only the best is saved.
    train_from_path(cfg, fixtures / "regression.csv", tmp_path / "only_best")
    assert (
        len([p for p in (tmp_path / "only_best").iterdir() if p.is_dir() and not p.name.startswith(".")]) == 1
    )


def _absolute_strings(doc: Any) -> list[str]:
    if isinstance(doc, dict):
        return [s for v in doc.values() for s in _absolute_strings(v)]
    if isinstance(doc, list):
        return [s for v in doc for s in _absolute_strings(v)]
    return [doc] if isinstance(doc, str) and (doc.startswith("/") or doc[1:3] == ":\\") else []


def test_training_files_are_recorded_relative(
    tmp_path: Path, fixtures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    cfg = _write(work / "churn.yaml", BASE)
    data = (fixtures / "binary.csv").resolve()  # given absolute: recorded relative all the same
    version = train_from_path("churn.yaml", data, "models/churn")
    meta = json.loads((version / "metadata.json").read_text())
    (record,) = meta["training_data"]
    bundle_path = record.pop("bundle_path")  # relative to the version folder, for mlprod.lineage
    assert (version / bundle_path).resolve() == data
    assert record == {"path": os.path.relpath(data), "rows": 300, "sha256": sha256_file(data)}
    assert meta["config_file"] == {"path": "churn.yaml", "sha256": sha256_file(cfg)}
    for f in ("metadata.json", "metrics.json", "config.yaml", "schema.json"):
        doc = yaml.safe_load((version / f).read_text())  # JSON is YAML too
        assert _absolute_strings(doc) == [], f  # no absolute path anywhere


@pytest.mark.parametrize(
    ("change", "error", "fragment"),
    [
        (
            lambda df: df.drop(columns="churned"),
            SchemaError,
            "column 'churned': the target is not in the data",
        ),
        (lambda df: df.assign(customer_id="same"), DataError, "duplicated ids in the training data: 'same'"),
        (lambda df: df.assign(churned=1), SchemaError, "only one class"),
        (
            lambda df: df.assign(age=df["age"].astype(object).where(df.index != 4, "old")),
            SchemaError,
            "row 5",
        ),
    ],
    ids=["no target", "duplicated ids", "one class", "bad value"],
)
def test_bad_training_data_names_the_file_and_saves_nothing(
    tmp_path: Path, binary: pd.DataFrame, change: Any, error: type, fragment: str
) -> None:
    from mlprod.tables import write_table

    data = write_table(change(binary), tmp_path / "train.csv")
    cfg = _write(tmp_path / "churn.yaml", BASE | {"numeric": ["age"]})  # age: numbers, even if text appears
    with pytest.raises(error) as e:
        train_from_path(cfg, data, tmp_path / "models")
    assert str(e.value).startswith(str(data)) and fragment in str(e.value), str(e.value)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_regression_target_must_be_numbers(fixtures: Path) -> None:
    df = read_table(fixtures / "regression.csv")
    df["price"] = df["price"].astype(object).where(df.index != 9, "expensive")
    with pytest.raises(DataError, match="column 'price': row 10: target 'expensive' is not a finite number"):
        train_from_data(_regression_candidates("rmse"), df)


def test_three_layers_give_the_same_model(tmp_path: Path, fixtures: Path, binary: pd.DataFrame) -> None:
    cfg = _write(tmp_path / "churn.yaml", BASE)
    in_memory = train_from_data(load_config(cfg), binary)
    from_path = load_bundle(train_from_path(cfg, fixtures / "binary.csv", tmp_path / "a"))
    r = CliRunner().invoke(
        app,
        [
            "train",
            "--config",
            str(cfg),
            "--train-data",
            str(fixtures / "binary.csv"),
            "--out-dir",
            str(tmp_path / "b"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "candidate LogisticRegression: validation accuracy" in r.stdout and "wrote " in r.stdout
    from_cli = load_bundle(tmp_path / "b")
    X = validate(in_memory.schema, binary)  # (300, 6)
    for bundle in (from_path, from_cli):
        assert bundle.metrics == in_memory.metrics and bundle.config == in_memory.config
        np.testing.assert_array_equal(bundle.model.predict_proba(X), in_memory.model.predict_proba(X))


def test_cli_seed_overrides_and_settings_seed_fills_in(tmp_path: Path, fixtures: Path) -> None:
    cfg = _write(tmp_path / "churn.yaml", _without(BASE, "seed"))
    ini = tmp_path / "settings.ini"
    ini.write_text("[mlprod]\nseed = 5\n")
    runner = CliRunner()
    data = str(fixtures / "binary.csv")
    r = runner.invoke(
        app,
        [
            "--settings",
            str(ini),
            "train",
            "--config",
            str(cfg),
            "--train-data",
            data,
            "--out-dir",
            str(tmp_path / "a"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert load_bundle(tmp_path / "a").config["seed"] == 5
    r = runner.invoke(
        app,
        [
            "--settings",
            str(ini),
            "train",
            "--config",
            str(cfg),
            "--train-data",
            data,
            "--out-dir",
            str(tmp_path / "b"),
            "--seed",
            "9",
        ],
    )
    assert r.exit_code == 0, r.output
    assert load_bundle(tmp_path / "b").config["estimator"]["params"]["random_state"] == 9


def test_parse_config_fills_every_default() -> None:
    cfg = parse_config(BASE)
    d = cfg.to_dict()
    assert (
        d["validation"] == {"test_size": 0.2, "stratify": True, "refit": True}
        and d["select_by"] == "accuracy"
    )
    assert d["preprocessing"]["one_hot"] is True and d["preprocessing"]["scale"] is True
    assert parse_config(d) == cfg  # the saved form parses back to the same config
