"""Tasks as objects (mlprod.tasks): the registry, the unknown-task messages, each task's metrics and their
direction, and a task of a test's own, registered by name, showing what every phase asks a task."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlprod.bundle import load_bundle, save_bundle
from mlprod.errors import ConfigError, QueryError, SchemaError
from mlprod.evaluate import evaluate_from_data
from mlprod.predict import Predictor
from mlprod.query import evaluate_sql
from mlprod.schema import capture_schema
from mlprod.tasks import (
    TASKS,
    Classification,
    Recommendation,
    Regression,
    Task,
    find_task,
    higher_is_better,
    keys_elsewhere,
    metric_names,
    register,
    task_for,
    task_names,
    unregister,
)
from mlprod.train import parse_config, train_from_data

from conftest import FIXTURES


def test_each_task_is_found_by_its_name() -> None:
    assert TASKS == ("classification", "regression", "recommend")
    for name, cls in zip(TASKS, (Classification, Regression, Recommendation), strict=True):
        task = task_for(name)
        assert isinstance(task, cls) and task.name == name
        assert find_task(name) is task
    assert find_task("forecast") is None
    assert find_task(None) is None  # a schema or metrics file without a task


def test_an_unknown_task_is_the_callers_error_naming_the_tasks() -> None:
    with pytest.raises(ConfigError) as e:
        task_for("forecast", column="task")
    assert str(e.value) == (
        "column 'task': unknown task 'forecast' (expected classification or regression or recommend)"
    )
    with pytest.raises(SchemaError, match=r"unknown task 'forecast' \(expected classification or regression"):
        capture_schema(pd.DataFrame({"a": [1, 2], "y": [0, 1]}), "forecast", "y", None)
    with pytest.raises(ConfigError, match="column 'task': unknown task 'ranking'"):
        evaluate_from_data(pd.DataFrame({"id": [1]}), pd.DataFrame({"id": [1]}), "ranking", "id", "y")
    with pytest.raises(
        ConfigError,
        match=r"column 'task': unknown task 'forecast' \(expected classification or regression or recommend",
    ):
        parse_config({"name": "m", "task": "forecast"})


def test_the_sql_evaluation_names_the_tasks_it_evaluates(tmp_path: Path) -> None:
    p, t = tmp_path / "p.csv", tmp_path / "t.csv"
    p.write_text("id,prediction\n1,1\n")
    t.write_text("id,y\n1,1\n")
    with pytest.raises(QueryError) as e:
        evaluate_sql(p, t, "forecast", "id", "y")
    assert e.value.message == "no SQL evaluation for task 'forecast'"
    assert e.value.expected == "classification, regression or recommend"


@pytest.mark.parametrize(
    "name, first, best, worst",
    [
        ("classification", "accuracy", ["accuracy", "roc_auc", "f1_macro"], ["log_loss"]),
        ("regression", "rmse", ["r2"], ["rmse", "mae", "mape"]),
        ("recommend", "precision@5", ["ndcg@10", "coverage@5"], ["popularity@10"]),
    ],
)
def test_each_task_names_its_metrics_and_their_direction(
    name: str, first: str, best: list[str], worst: list[str]
) -> None:
    task = task_for(name)
    names = task.metric_names()
    assert names[0] == first and metric_names(name) == names
    assert task.default_select_by() in names  # the default metric is one of the task's
    for m in best:
        assert higher_is_better(m), m
    for m in worst:
        assert not higher_is_better(m), m
    assert all(m in names for m in best + worst if not m.startswith("popularity@"))


def test_ranking_metrics_follow_the_k_values() -> None:
    task = task_for("recommend")
    assert task.metric_names([3, 1, 3]) == tuple(
        f"{m}@{k}" for m in ("precision", "recall", "map", "ndcg", "coverage") for k in (1, 3)
    )
    assert task.default_select_by([3, 7]) == "ndcg@7"
    assert task.default_select_by() == "ndcg@10"
    scalars = task.scalar_metrics(
        {"task": "recommend", "rows": 9, "ndcg@10": 0.5, "popularity@5": 2.0, "x@y": 1}
    )
    assert list(scalars) == ["popularity@5", "ndcg@10"]  # k by k, counts and non-metrics left out


def test_what_each_task_declares() -> None:
    c, r, rec = (task_for(n) for n in TASKS)
    assert (c.data, r.data, rec.data) == ("table", "table", "interactions")
    assert (c.target, r.target, rec.target) == ("labels", "numbers", "items")
    assert (c.stratify, r.stratify, rec.stratify) == (True, False, False)
    assert (c.estimator_kind, rec.estimator_kind) == ("estimator", "recommender")
    assert [k for k, _ in keys_elsewhere(c)] == list(rec.own_keys)
    assert dict(keys_elsewhere(rec))["target"] == ["classification", "regression"]
    assert rec.key_hint("id_col") == "user_col and item_col" and c.key_hint("user_col") is None
    assert [t for t, _ in c.figures + c.proba_figures][:2] == ["Confusion matrix", "ROC curve"]
    assert dict(rec.payload_extras) == {"popularity_bias": "popularity_bias_summary"}
    assert (c.importance_fallback, r.importance_fallback) == ("accuracy", "r2")


def test_register_needs_a_name() -> None:
    with pytest.raises(ConfigError, match="Task has no name"):
        register(Task())


class Forecast(Regression):
    "A task of the test's own: regression under another name, its metrics fewer, every question recorded."

    name = "forecast"
    metrics = ("mae", "rmse")
    select_by = "mae"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def metric_names(self, k_values: Sequence[int] | None = None) -> tuple[str, ...]:
        self.asked.append("metric_names")
        return super().metric_names(k_values)

    def default_select_by(self, k_values: Sequence[int] | None = None) -> str:
        self.asked.append("default_select_by")
        return super().default_select_by(k_values)

    def has_proba(self, model: Any) -> bool:
        self.asked.append("has_proba")
        return super().has_proba(model)

    def output_columns(self, model: Any, classes: Sequence[Any] | None) -> list[str]:
        self.asked.append("output_columns")
        return super().output_columns(model, classes)

    def baselines(self, config: Any) -> dict[str, Any]:
        self.asked.append("baselines")
        return super().baselines(config)


@pytest.fixture
def forecast() -> Iterator[Forecast]:
    task = register(Forecast())
    yield task
    unregister("forecast")
    assert "forecast" not in task_names()


def test_a_registered_task_goes_through_every_phase(forecast: Forecast, tmp_path: Path) -> None:
    df = pd.read_csv(FIXTURES / "regression.csv")  # (n_rows, 6): house_id, 4 features, price
    config = {
        "name": "houses",
        "task": "forecast",
        "target": "price",
        "id_col": "house_id",
        "estimator": {"class": "sklearn.linear_model.Ridge"},
    }
    with pytest.raises(ConfigError, match="unknown metric 'r2' for forecast.*one of mae, rmse"):
        parse_config(config | {"select_by": "r2"})  # the task's metrics, not regression's
    with pytest.raises(
        ConfigError, match="column 'user_col': user_col applies to recommend, not to forecast"
    ):
        parse_config(config | {"user_col": "u"})
    with pytest.raises(ConfigError, match="stratify applies to classification only"):
        parse_config(config | {"validation": {"stratify": True}})
    forecast.asked.clear()
    bundle = train_from_data(config, df)
    assert bundle.config["select_by"] == "mae" and bundle.schema.task == "forecast"
    assert bundle.metrics["selection"] == {"select_by": "mae", "higher_is_better": False, "selected": "Ridge"}
    assert {"default_select_by", "metric_names", "baselines", "has_proba"} <= set(forecast.asked)
    forecast.asked.clear()
    loaded = load_bundle(save_bundle(bundle, tmp_path / "houses"))  # the golden check asks the task
    assert "output_columns" in forecast.asked
    predictions = Predictor(loaded).predict(df, proba=True)  # (n_rows, 2): no probabilities for numbers
    assert list(predictions.columns) == ["house_id", "prediction"]
    metrics = evaluate_from_data(predictions, df, "forecast", "house_id", "price")
    assert metrics["task"] == "forecast" and metrics["rmse"] == pytest.approx(
        ((predictions["prediction"] - df["price"]) ** 2).mean() ** 0.5
    )
