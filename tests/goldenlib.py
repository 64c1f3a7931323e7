"""Golden cases: fixed configs on fixed seeded splits of the tiny fixtures, with committed predictions and floors.

`tests/test_golden.py` runs every case and fails, naming what changed, when the predictions differ from the
committed files in `tests/golden/` or a metric falls past its committed floor. After an intended change of the
model (a new default, a new dependency version), regenerate the predictions and review the diff:

    .venv/bin/python tests/goldenlib.py --update

Floors (`tests/golden/floors.json`) are written by hand, never by this script: a floor is a promise about
model quality, not a snapshot. Each is a minimum for a higher-is-better metric and a maximum for a
lower-is-better one (rmse, mae, mape, log_loss).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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


def golden_failures(name: str, predictions: pd.DataFrame, metrics: dict[str, Any]) -> list[str]:
    "Every way `predictions` and `metrics` break the committed golden file and floors of case `name`."
    from mlprod.evaluate import higher_is_better
    from mlprod.tables import read_table

    problems = []
    want = read_table(golden_file(name))  # (n_test, n_columns)
    rel = golden_file(name).relative_to(ROOT)
    if list(want.columns) != list(predictions.columns) or len(want) != len(predictions):
        problems.append(
            f"{name}: columns/rows {list(predictions.columns)} x {len(predictions)} differ from {rel}: "
            f"{list(want.columns)} x {len(want)}"
        )
    else:
        for col in want.columns:
            have, was = predictions[col].to_numpy(), want[col].to_numpy()  # (n_test,)
            if np.issubdtype(was.dtype, np.floating) or np.issubdtype(have.dtype, np.floating):
                same = np.isclose(have.astype(float), was.astype(float), rtol=FLOAT_RTOL, atol=1e-12)
            else:
                same = have.astype(str) == was.astype(str)
            if not same.all():
                i = int(np.flatnonzero(~same)[0])
                problems.append(
                    f"{name}: {int((~same).sum())} of {len(same)} values of {col!r} differ from {rel} "
                    f"(first: row {i + 1}, {have[i]!r}, was {was[i]!r})"
                )
    floors = json.loads((GOLDEN / "floors.json").read_text(encoding="utf-8"))[name]
    for metric, bound in floors.items():
        value = metrics.get(metric)
        ok = value is not None and (value >= bound if higher_is_better(metric) else value <= bound)
        if not ok:
            side = "below the floor" if higher_is_better(metric) else "above the ceiling"
            problems.append(f"{name}: {metric} {value} is {side} {bound} (tests/golden/floors.json)")
    return problems


def update(names: list[str]) -> None:
    "Rewrite the golden predictions of `names`; print each case's metrics to compare with its floors."
    from mlprod.tables import write_table

    for name in names:
        predictions, metrics = run_case(name)
        write_table(predictions, golden_file(name))
        scalars = {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}
        print(f"wrote {golden_file(name).relative_to(ROOT)}: {scalars}")


if __name__ == "__main__":
    if sys.argv[1:2] != ["--update"]:
        sys.exit(
            "usage: python tests/goldenlib.py --update [CASE ...]   (rewrites tests/golden/*.predictions.csv)"
        )
    update(sys.argv[2:] or list(CASES))
