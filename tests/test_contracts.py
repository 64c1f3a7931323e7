"""The public contracts of a config's classes (`mlprod.contracts`), checked when the config is loaded: a transformer
without get_feature_names_out, an estimator without get_params, a recommender without recommend are refused naming
the file, the line, the class and the method, and never instantiated; a recommender of the user's own, without
item_popularity, goes through train, predict, evaluate and both reports, which say the popularity bias is absent."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from bad_inputs import figures

from mlprod.contracts import CONTRACTS, Recommender, lacking, popularity_of
from mlprod.errors import ConfigError
from mlprod.evaluate import evaluate_from_path
from mlprod.predict import Predictor, predict_from_path
from mlprod.recsys import ItemKNNRecommender, split_interactions
from mlprod.tables import read_table, write_table
from mlprod.train import load_config, train_from_path

from conftest import FIXTURES

USER_MODULE = """
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from mlprod.recsys import Recommender


class TopItems(Recommender):
    "The most interacted-with items each user does not have; no item_popularity."

    def __init__(self, user_col="user_id", item_col="item_id", weight_col=None, k=5):
        self.user_col, self.item_col, self.weight_col, self.k = user_col, item_col, weight_col, k

    def fit(self, interactions, y=None):
        users = interactions[self.user_col].astype(str)
        items = interactions[self.item_col].astype(str)
        counts = items.value_counts()
        self.top_ = sorted(counts.index, key=lambda i: (-counts[i], i))
        self.seen_ = {u: set(g) for u, g in items.groupby(users)}
        return self

    def recommend(self, user_ids, k=None):
        users = [str(u) for u in user_ids]
        items = [[i for i in self.top_ if i not in self.seen_.get(u, ())][: k or self.k] for u in users]
        return pd.DataFrame(
            {
                self.user_col: users,
                "items": items,
                "scores": [[1.0 / (r + 1) for r in range(len(x))] for x in items],
                "fallback": [u not in self.seen_ for u in users],
            }
        )

    def predict(self, X):
        return np.array([" ".join(x) for x in self.recommend(X[self.user_col])["items"]], dtype=object)


class NoRecommend(BaseEstimator):
    "Has fit and predict, not recommend; constructing it leaves a marker file."

    def __init__(self, marker=""):
        Path(marker).write_text("instantiated")

    def fit(self, interactions, y=None):
        return self

    def predict(self, X):
        return np.array([""] * len(X), dtype=object)


class Forgetful(Recommender):
    "Declares the contract, writes fit and predict only: recommend stays abstract."

    def __init__(self, user_col="user_id", item_col="item_id"):
        self.user_col, self.item_col = user_col, item_col

    def fit(self, interactions, y=None):
        return self

    def predict(self, X):
        return np.array([""] * len(X), dtype=object)


class NoNames(BaseEstimator, TransformerMixin):
    "The seed article's transformer: fit and transform, nothing that names its columns; leaves a marker if made."

    def __init__(self, marker=""):
        Path(marker).write_text("instantiated")

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


class NoParams:
    "fit and predict, but not scikit-learn-compatible (no get_params)."

    def fit(self, X, y):
        return self

    def predict(self, X):
        return np.zeros(len(X))
"""


@pytest.fixture
def user_pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    "A package of the user's own in tmp_path, importable here and in a report's kernel (PYTHONPATH): its name."
    name = f"my_recs_{abs(hash(str(tmp_path))) % 10**8}"
    site = tmp_path / "site"
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text("")
    (site / name / "models.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    )
    yield name
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]


RECOMMEND = {
    "name": "top_items",
    "task": "recommend",
    "user_col": "user_id",
    "item_col": "item_id",
    "weight_col": "weight",
    "timestamp_col": "timestamp",
    "validation": {"holdout": 1},
    "evaluate": {"k_values": [3, 5]},
    "seed": 0,
}
TABLE = {"name": "churn", "task": "classification", "target": "churned", "id_col": "customer_id"}
LOGREG = {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 200}}


def _write(tmp_path: Path, cfg: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def _line(path: Path, text: str) -> int:
    "The 1-based line of the first line of `path` holding `text`."
    return next(i for i, t in enumerate(path.read_text().splitlines(), 1) if text in t)


# -- refused when the config is loaded ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "cls", "method"),
    [("duck", "NoRecommend", "recommend"), ("subclass", "Forgetful", "recommend()")],
)
def test_a_recommender_without_recommend_is_refused_naming_the_method(
    user_pkg: str, tmp_path: Path, kind: str, cls: str, method: str
) -> None:
    marker = tmp_path / "MARKER"
    params = {"marker": str(marker)} if kind == "duck" else {}
    path = _write(
        tmp_path, RECOMMEND | {"estimator": {"class": f"{user_pkg}.models.{cls}", "params": params}}
    )
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}:{_line(path, 'class:')}: column 'estimator.class': "), msg
    assert f"{user_pkg}.models.{cls}" in msg and method in msg and "expected" in msg, msg
    assert not marker.exists()


def test_a_transformer_without_get_feature_names_out_is_refused_naming_it(
    user_pkg: str, tmp_path: Path
) -> None:
    marker = tmp_path / "MARKER"
    tr = {"class": f"{user_pkg}.models.NoNames", "params": {"marker": str(marker)}}
    path = _write(tmp_path, TABLE | {"preprocessing": {"transformers": [tr]}, "estimator": LOGREG})
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}:{_line(path, '- class:')}: column 'preprocessing.transformers[0]': "), msg
    assert f"{user_pkg}.models.NoNames has no get_feature_names_out()" in msg, msg
    assert "which names its output columns" in msg, msg
    assert not marker.exists()  # refused on the class: never instantiated


def test_an_estimator_without_get_params_is_refused_naming_it(user_pkg: str, tmp_path: Path) -> None:
    path = _write(tmp_path, TABLE | {"estimator": {"class": f"{user_pkg}.models.NoParams"}})
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}:{_line(path, 'class:')}: column 'estimator.class': "), msg
    assert "has no get_params()" in msg and "scikit-learn-compatible" in msg, msg


@figures.passed_only
@pytest.mark.parametrize("cls", ["NoRecommend", "Forgetful"])
def test_the_command_refuses_a_recommender_without_recommend_in_one_line(
    user_pkg: str, tmp_path: Path, cli, cls: str
) -> None:
    marker = tmp_path / "MARKER"
    params = {"marker": str(marker)} if cls == "NoRecommend" else {}
    path = _write(
        tmp_path, RECOMMEND | {"estimator": {"class": f"{user_pkg}.models.{cls}", "params": params}}
    )
    r = cli(
        "train",
        "--config",
        str(path),
        "--train-data",
        str(FIXTURES / "interactions.csv"),
        "--out-dir",
        "m",
        cwd=tmp_path,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert "config error" in r.stderr and "recommend" in r.stderr and "estimator.class" in r.stderr, r.stderr
    assert not marker.exists() and not (tmp_path / "m").exists()
    figures.hostile("tracebacks", f"a config's recommender without recommend ({cls}), through the command")


def test_the_contract_is_the_one_table() -> None:
    assert set(Recommender.__abstractmethods__) | {"get_params"} == set(CONTRACTS["recommender"])
    assert isinstance(ItemKNNRecommender(), Recommender)  # mlprod's own: by its methods, not by subclassing
    assert lacking(ItemKNNRecommender, "recommender") == []
    assert popularity_of(object()) is None


# -- a recommender without item_popularity, all the way ----------------------------------------------------


@pytest.fixture
def interactions(tmp_path: Path) -> dict[str, Path]:
    "The fixture split by time into files: train.csv, held.csv, users.csv (the held-out users)."
    df = read_table(FIXTURES / "interactions.csv")  # (360, 5)
    train, held = split_interactions(df, "user_id", "item_id", "timestamp")
    paths = {n: tmp_path / f"{n}.csv" for n in ("train", "held", "users")}
    write_table(train, paths["train"])
    write_table(held, paths["held"])
    write_table(held[["user_id"]].drop_duplicates(), paths["users"])
    return paths


def test_a_recommender_without_item_popularity_goes_through_train_predict_evaluate_report(
    user_pkg: str, tmp_path: Path, interactions: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlprod.report import compare_report, evaluate_report

    monkeypatch.chdir(tmp_path)
    cfg = RECOMMEND | {"estimator": {"class": f"{user_pkg}.models.TopItems", "params": {"k": 5}}}
    version = train_from_path(_write(tmp_path, cfg), interactions["train"], tmp_path / "models" / "top")
    predictor = Predictor.load(version)
    assert isinstance(predictor.model, Recommender) and popularity_of(predictor.model) is None
    recs = predict_from_path(version, interactions["users"], tmp_path / "recs.jsonl", workers=1)
    metrics = evaluate_from_path(recs, interactions["held"], tmp_path / "metrics.json", model_dir=version)
    assert 0 <= metrics["ndcg@5"] <= 1 and "popularity@5" not in metrics

    out = evaluate_report(version, interactions["held"], tmp_path / "report")
    payload = json.loads((out / "metrics.json").read_text())
    assert payload["popularity_bias"] == {"absent": "TopItems has no item_popularity()"}
    assert payload["ndcg@5"] == metrics["ndcg@5"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<img alt="Ranking metrics at k"' in html and '<img alt="Popularity bias"' not in html
    assert "Absent: TopItems has no item_popularity()" in html, "the report says what is absent"

    knn = dict(RECOMMEND, name="knn", estimator={"class": "mlprod.recsys.ItemKNNRecommender"})
    other = train_from_path(_write(tmp_path, knn), interactions["train"], tmp_path / "models" / "knn")
    out = compare_report([other, version], interactions["held"], tmp_path / "compare")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<img alt="Popularity bias"' in html  # drawn for the model that has item_popularity
    assert "Absent for TopItems" in html, "and said absent for the one that has not"
