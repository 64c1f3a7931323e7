"""Golden tests: fixed seeds give the committed predictions and metrics at or above the committed floors.

And the safety net works: a pipeline broken on purpose (labels shuffled, a feature dropped) fails them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from goldenlib import CASES, golden_failures, run_case


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_predictions_and_floors(name: str) -> None:
    predictions, metrics = run_case(name)
    assert golden_failures(name, predictions, metrics) == []


def _shuffle_labels(df: pd.DataFrame) -> pd.DataFrame:
    target = "churned"
    shuffled = np.random.default_rng(0).permutation(df[target].to_numpy())  # (n_train,)
    return df.assign(**{target: shuffled})


def test_shuffled_labels_fail_the_golden_check() -> None:
    predictions, metrics = run_case("churn_logreg", train_transform=_shuffle_labels)
    problems = golden_failures("churn_logreg", predictions, metrics)
    assert any("values of 'prediction' differ" in p for p in problems), problems
    assert any("roc_auc" in p and "below the floor" in p for p in problems), problems


def _drop_tenure(config: dict[str, Any]) -> dict[str, Any]:
    return config | {"features": [f for f in config["features"] if f != "tenure_months"]}


def test_a_dropped_feature_fails_the_golden_check() -> None:
    predictions, metrics = run_case("churn_logreg", config_transform=_drop_tenure)
    problems = golden_failures("churn_logreg", predictions, metrics)
    assert any("values of 'proba_1' differ" in p for p in problems), problems
    assert any("below the floor" in p for p in problems), problems  # tenure carries much of the signal


def test_a_tiny_drift_in_probabilities_fails_the_golden_check() -> None:
    predictions, metrics = run_case("iris_rf")
    nudged = predictions.assign(proba_setosa=predictions["proba_setosa"] + 1e-6)
    problems = golden_failures("iris_rf", nudged, metrics)
    assert len(problems) == 1 and "'proba_setosa' differ" in problems[0], problems


def _shuffle_items(df: pd.DataFrame) -> pd.DataFrame:
    "Interactions whose items are shuffled across rows: popularity stays, the users' tastes are gone."
    return df.assign(item_id=np.random.default_rng(0).permutation(df["item_id"].to_numpy()))


def test_shuffled_interactions_fail_the_recommend_golden_check() -> None:
    predictions, metrics = run_case("interactions_itemknn", train_transform=_shuffle_items)
    problems = golden_failures("interactions_itemknn", predictions, metrics)
    assert any("values of 'item' differ" in p for p in problems), problems
    assert any("ndcg@10" in p and "below the floor" in p for p in problems), problems
