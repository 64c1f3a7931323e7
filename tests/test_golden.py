"""Golden tests: fixed seeds give the committed predictions and metrics at or above the committed floors.

After an intended change of the models: `pytest tests/test_golden.py --update-golden`, then review the diff.
And the safety net works: a pipeline broken on purpose (labels shuffled, a feature dropped) fails them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from goldenlib import CASES, FLOAT_RTOL, case_task, floors, golden_failures, golden_file, run_case

from mlprod.testing import assert_floors, assert_golden


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_predictions_and_floors(name: str) -> None:
    "Under `pytest --update-golden`, a golden file that differs is rewritten instead (review the diff); floors never."
    predictions, metrics = run_case(name)
    assert_golden(predictions, golden_file(name), rtol=FLOAT_RTOL)
    assert_floors(metrics, floors(name), task=case_task(name))


def _shuffle_labels(df: pd.DataFrame) -> pd.DataFrame:
    target = "churned"
    shuffled = np.random.default_rng(0).permutation(df[target].to_numpy())  # (n_train,)
    return df.assign(**{target: shuffled})


def test_shuffled_labels_fail_the_golden_check() -> None:
    predictions, metrics = run_case("churn_logreg", train_transform=_shuffle_labels)
    problems = golden_failures("churn_logreg", predictions, metrics)
    assert any("column 'prediction'" in p for p in problems), problems
    assert any("roc_auc" in p and "below the floor" in p for p in problems), problems


def _drop_tenure(config: dict[str, Any]) -> dict[str, Any]:
    return config | {"features": [f for f in config["features"] if f != "tenure_months"]}


def test_a_dropped_feature_fails_the_golden_check() -> None:
    predictions, metrics = run_case("churn_logreg", config_transform=_drop_tenure)
    problems = golden_failures("churn_logreg", predictions, metrics)
    assert any("column 'proba_1'" in p for p in problems), problems
    assert any("below the floor" in p for p in problems), problems  # tenure carries much of the signal


def test_a_tiny_drift_in_probabilities_fails_the_golden_check() -> None:
    predictions, metrics = run_case("iris_rf")
    nudged = predictions.assign(proba_setosa=predictions["proba_setosa"] + 1e-6)
    problems = golden_failures("iris_rf", nudged, metrics)
    assert problems and all("column 'proba_setosa'" in p for p in problems[:-1]), problems
    every_row = f"more differences ({len(nudged)} in all, in 'proba_setosa')"  # and in no other column
    assert problems[-1].endswith(every_row), problems


def _shuffle_items(df: pd.DataFrame) -> pd.DataFrame:
    "Interactions whose items are shuffled across rows: popularity stays, the users' tastes are gone."
    return df.assign(item_id=np.random.default_rng(0).permutation(df["item_id"].to_numpy()))


def test_shuffled_interactions_fail_the_recommend_golden_check() -> None:
    predictions, metrics = run_case("interactions_itemknn", train_transform=_shuffle_items)
    problems = golden_failures("interactions_itemknn", predictions, metrics)
    assert any("column 'item'" in p for p in problems), problems
    assert any("ndcg@10" in p and "below the floor" in p for p in problems), problems
