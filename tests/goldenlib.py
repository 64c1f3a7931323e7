"""Golden cases: fixed configs on fixed seeded splits of the tiny fixtures, with committed predictions and floors.

`tests/test_golden.py` runs every case and fails, naming what changed, when the predictions differ from the
committed files in `tests/golden/` or a metric falls past its committed floor (`mlprod.testing`'s
`assert_golden` and `assert_floors`). After an intended change of the model (a new default, a new dependency
version), regenerate the predictions and review the diff:

    .venv/bin/pytest tests/test_golden.py --update-golden

Floors (`tests/golden/floors.json`) are written by hand, never by a tool: a floor is a promise about model
quality, not a snapshot. Each is a minimum for a higher-is-better metric and a maximum for a lower-is-better one
(rmse, mae, mape, log_loss, popularity@k), as `mlprod.tasks` says.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
FIXTURES = ROOT / "tests" / "fixtures"
FLOAT_RTOL = (
    1e-9  # float outputs must match to 1e-9 (relative): BLAS may differ in the last bits across machines
)


@dataclass(frozen=True)
class Case:
    config: str  # under configs/
    data: str  # a fixture file name, or "iris" for mlprod.data.iris_frame()
    split_seed: int
    stratify: bool


CASES = {
    "iris_rf": Case("iris_rf.yaml", "iris", 42, True),
    "churn_logreg": Case("churn_logreg.yaml", "binary.csv", 0, True),
    "churn_candidates": Case("churn_candidates.yaml", "binary.csv", 0, True),
    "house_price_ridge": Case("house_price_ridge.yaml", "regression.csv", 0, False),
    "interactions_itemknn": Case("interactions_itemknn.yaml", "interactions.csv", 0, False),
}
UNSEEN_USER = "unseen-user"  # recommend cases also predict for this user, to pin the popular fallback


def case_frames(name: str) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """The case's config and its (train, test) frames: the same split as `mlprod data split --test-size 0.25`;
    for a recommender, each user's latest interaction held out (`mlprod.recsys.split_interactions`)."""
    from mlprod.data import iris_frame, split_frame
    from mlprod.recsys import split_interactions
    from mlprod.tables import read_table
    from mlprod.train import load_config

    case = CASES[name]
    cfg = load_config(ROOT / "configs" / case.config)
    df = iris_frame() if case.data == "iris" else read_table(FIXTURES / case.data)  # (n_rows, n_columns)
    if cfg.task == "recommend":
        train, test = split_interactions(
            df, cfg.user_col, cfg.item_col, cfg.timestamp_col, 1, case.split_seed
        )
        return cfg, train, test
    train, test = split_frame(df, 0.25, case.split_seed, cfg.target if case.stratify else None)
    return cfg, train, test


def run_case(
    name: str,
    train_transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None,  # e.g. shuffle the labels
    config_transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,  # e.g. drop a feature
) -> tuple[pd.DataFrame, dict[str, Any]]:
    "Train the case's config on its train part; predict and evaluate its test part: (predictions, metrics)."
    from mlprod.evaluate import evaluate_from_data
    from mlprod.predict import Predictor
    from mlprod.train import parse_config, train_from_data

    cfg, train, test = case_frames(name)
    if config_transform is not None:
        cfg = parse_config(config_transform(cfg.to_dict()))
    if train_transform is not None:
        train = train_transform(train)
    if cfg.task == "recommend":
        return _run_recommend_case(cfg, train, test)
    predictions = Predictor(train_from_data(cfg, train)).predict(
        test, proba=True
    )  # (n_test, 2 [+ n_classes])
    metrics = evaluate_from_data(predictions, test, cfg.task, cfg.id_col, cfg.target)
    return predictions.reset_index(drop=True), metrics


def _run_recommend_case(
    cfg: Any, train: pd.DataFrame, test: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A recommender's case: recommendations for the held-out users (and one unseen user) in long form, one row
    per (user, rank): user, rank, item, score, fallback; ranking metrics against the held-out interactions."""
    from mlprod.evaluate import evaluate_from_data, recommend_options
    from mlprod.predict import Predictor
    from mlprod.train import train_from_data

    bundle = train_from_data(cfg, train)
    user = cfg.user_col
    users = pd.concat(
        [test[[user]].drop_duplicates(), pd.DataFrame({user: [UNSEEN_USER]})], ignore_index=True
    )
    recs = Predictor(bundle).predict(users)  # (n_users + 1, 4): user, items, scores, fallback
    options = recommend_options(bundle.model, bundle.config)
    metrics = evaluate_from_data(recs, test, cfg.task, user, cfg.item_col, **options)
    long = recs.explode(["items", "scores"], ignore_index=True)  # (n_users * k, 4)
    rank = long.groupby(user, sort=False).cumcount() + 1
    predictions = pd.DataFrame(
        {
            user: long[user],
            "rank": rank,
            "item": long["items"],
            "score": long["scores"].astype("float64"),
            "fallback": long["fallback"],
        }
    )
    return predictions, metrics


def golden_file(name: str) -> Path:
    return GOLDEN / f"{name}.predictions.csv"


def floors(name: str) -> dict[str, float]:
    "The hand-written floors of case `name` (tests/golden/floors.json)."
    return json.loads((GOLDEN / "floors.json").read_text(encoding="utf-8"))[name]


def case_task(name: str) -> str:
    "The task of case `name`'s config."
    from mlprod.train import load_config

    return load_config(ROOT / "configs" / CASES[name].config).task


def golden_failures(name: str, predictions: pd.DataFrame, metrics: dict[str, Any]) -> list[str]:
    "Every way `predictions` and `metrics` break the committed golden file and floors of case `name`."
    from mlprod.testing import check_floors, check_golden

    golden = check_golden(predictions, golden_file(name), rtol=FLOAT_RTOL)
    return golden + check_floors(metrics, floors(name), task=case_task(name))
