"""report: what the report's plots and tables say (importance axis, chart size, plain-text cells, lineage lines)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from mlprod.bundle import save_bundle
from mlprod.card import model_card
from mlprod.figures import (
    DPI,
    importance_figure,
    importance_label,
    permutation_importance_frame,
    plot_importance,
)
from mlprod.scoring import Scored, parameters_table, score
from mlprod.train import train_from_data, train_from_path

from conftest import FIXTURES

N_FEATURES = 64


def _ridge(target: str, id_col: str) -> dict:
    return {
        "name": "wide",
        "task": "regression",
        "target": target,
        "id_col": id_col,
        "preprocessing": {"scale": True},
        "estimator": {"class": "sklearn.linear_model.Ridge", "params": {"alpha": 1.0}},
        "select_by": "rmse",
        "seed": 0,
    }


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scored, pd.DataFrame]:
    "A ridge regression on 64 numeric features of seeded data (the target leans on the first few), scored."
    rng = np.random.default_rng(7)
    X = rng.normal(size=(160, N_FEATURES))  # (n_rows, n_features)
    weights = np.linspace(3.0, 0.0, N_FEATURES)  # (n_features,): f00 matters most, f63 not at all
    df = pd.DataFrame(X, columns=[f"f{i:02d}" for i in range(N_FEATURES)])
    df["y"] = X @ weights + rng.normal(scale=0.1, size=len(df))
    df.insert(0, "row_id", np.arange(len(df)))
    folder = save_bundle(train_from_data(_ridge("y", "row_id"), df), tmp_path_factory.mktemp("wide") / "wide")
    return score(folder, df), df


@pytest.fixture(scope="module")
def wide_importance(wide: tuple[Scored, pd.DataFrame]) -> pd.DataFrame:
    run, df = wide
    return permutation_importance_frame(run, df, "rmse", repeats=2, max_rows=160)


def test_importance_of_a_lower_is_better_metric_is_its_increase(
    wide: tuple[Scored, pd.DataFrame], wide_importance: pd.DataFrame
) -> None:
    "Shuffling a feature makes rmse rise: the bars are positive, and the axis must say 'increase', not 'drop'."
    run, df = wide
    top = wide_importance.iloc[0]
    heaviest = ("f00", "f01", "f02", "f03")
    assert top["feature"] in heaviest and top["importance_mean"] > 0
    shuffled = df.copy()
    shuffled[top["feature"]] = np.random.default_rng(0).permutation(shuffled[top["feature"]].to_numpy())
    assert score(run.model_dir, shuffled).metrics["rmse"] > run.metrics["rmse"]  # the metric rose
    ax = importance_figure({run.label: wide_importance}, "rmse").axes[0]
    assert ax.get_xlabel() == "increase in rmse when the feature is shuffled"


def test_importance_of_a_higher_is_better_metric_is_its_drop(tmp_path: Path) -> None:
    table = pd.DataFrame({"feature": ["a", "b"], "importance_mean": [0.2, 0.1], "importance_std": [0.0, 0.0]})
    for metric in ("accuracy", "roc_auc", "r2"):
        assert importance_label(metric) == f"drop in {metric} when the feature is shuffled"
        assert importance_figure({"m": table}, metric).axes[0].get_xlabel() == importance_label(metric)
    for metric in ("log_loss", "mae", "mape", "rmse"):
        assert importance_label(metric) == f"increase in {metric} when the feature is shuffled"


def test_importance_chart_of_many_features_shows_the_top_20(
    wide: tuple[Scored, pd.DataFrame], wide_importance: pd.DataFrame
) -> None:
    run, _ = wide
    assert len(wide_importance) == N_FEATURES
    png = Image.open(io.BytesIO(plot_importance({run.label: wide_importance}, "rmse")))
    width, height = png.size
    assert height <= 10 * DPI and width <= 10 * DPI, png.size  # was 2,360 px high for 64 features
    ax = importance_figure({run.label: wide_importance}, "rmse").axes[0]
    assert len(ax.patches) == 20  # one bar per shown feature
    shown = [t.get_text() for t in ax.get_yticklabels()][::-1]  # most important at the top
    assert shown == list(wide_importance["feature"][:20])
    assert "top 20 of 64" in ax.get_title()
    # two models: still 20 features (two bars each), the same bounded height
    other = wide_importance.assign(importance_mean=wide_importance["importance_mean"] / 2)
    two = importance_figure({"a": wide_importance, "b": other}, "rmse")
    assert len(two.axes[0].patches) == 40 and two.get_size_inches()[1] * DPI <= 10 * DPI


def test_a_short_importance_chart_shows_every_feature_without_a_top_title() -> None:
    table = pd.DataFrame(
        {"feature": list("abcd"), "importance_mean": [0.4, 0.3, 0.2, 0.1], "importance_std": [0.01] * 4}
    )
    ax = importance_figure({"m": table}, "accuracy").axes[0]
    assert len(ax.patches) == 4 and "top" not in ax.get_title()


def test_parameters_table_shows_plain_text_not_python_reprs() -> None:
    table = parameters_table(
        {
            "model_dir": "models/m",
            "model_dirs": ["models/a", "models/b"],
            "title": "",
            "trusted_types": [],
            "missing": None,
            "options": {"k": 5, "by": "time"},
            "repeats": 5,
            "flag": True,
            "where": Path("out/r"),
        }
    )
    assert table["value"].to_dict() == {
        "model_dir": "models/m",
        "model_dirs": "models/a, models/b",
        "title": "",
        "trusted_types": "",
        "missing": "-",
        "options": '{"k": 5, "by": "time"}',
        "repeats": "5",
        "flag": "true",
        "where": "out/r",
    }


def test_model_card_shows_a_raw_training_file_as_the_chains_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    "A model trained on a CSV export nobody made with mlprod: its lineage starts there, nothing is missing."
    monkeypatch.chdir(tmp_path)
    (tmp_path / "house.yaml").write_text(yaml.safe_dump(_ridge("price", "house_id") | {"name": "house"}))
    (tmp_path / "export.csv").write_bytes((FIXTURES / "regression.csv").read_bytes())
    folder = train_from_path("house.yaml", "export.csv", "models/house")
    lines = model_card(Path(os.path.relpath(folder)))["lineage"]
    (line,) = [x for x in lines if "export.csv" in x]
    assert "source file (no record: not made by mlprod)" in line, lines
    assert not any("missing" in x.lower() or "NO RECORD" in x for x in lines), lines


def test_a_model_without_probabilities_is_measured_and_labelled_on_accuracy(tmp_path: Path) -> None:
    """roc_auc needs probabilities (a comparison's first model may select by it, the second have none):
    permutation importance then measures accuracy, and the axis must say so."""
    from mlprod.figures import importance_metric

    df = pd.read_csv(FIXTURES / "binary.csv")
    cfg = {
        "name": "svm",
        "task": "classification",
        "target": "churned",
        "id_col": "customer_id",
        "preprocessing": {"scale": True},
        "estimator": {"class": "sklearn.svm.LinearSVC", "params": {}},
        "select_by": "accuracy",
        "seed": 0,
    }
    run = score(save_bundle(train_from_data(cfg, df), tmp_path / "svm"), df)
    assert run.proba() is None and importance_metric(run, "roc_auc") == "accuracy"
    table = permutation_importance_frame(run, df, "roc_auc", repeats=1, max_rows=300)
    ax = importance_figure({run.label: table}, importance_metric(run, "roc_auc")).axes[0]
    assert ax.get_xlabel() == "drop in accuracy when the feature is shuffled"
