"""Task `recommend` through the phases: config, training (three layers), bundle with ID maps, predict, evaluate
(pandas and SQL), the evaluation report."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from mlprod.bundle import load_bundle
from mlprod.cli import app
from mlprod.errors import BundleError, ConfigError, DataError, IntegrityError, SchemaError
from mlprod.evaluate import evaluate_from_data, evaluate_from_path, recommend_options
from mlprod.predict import Predictor, predict_from_path
from mlprod.recsys import split_interactions
from mlprod.registry import resolve_version
from mlprod.tables import read_table, write_table
from mlprod.train import load_config, train_from_data, train_from_path

from conftest import FIXTURES, ROOT

CONFIG = ROOT / "configs" / "interactions_itemknn.yaml"
UNSEEN = "no-such-user"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    "The fixture split by time (each user's latest interaction held out), as files: train.csv, held.csv, users.csv."
    d = tmp_path_factory.mktemp("recommend")
    df = read_table(FIXTURES / "interactions.csv")  # (360, 5)
    train, held = split_interactions(df, "user_id", "item_id", "timestamp")
    write_table(train, d / "train.csv")
    write_table(held, d / "held.csv")
    users = pd.DataFrame({"user_id": [*held["user_id"].drop_duplicates(), UNSEEN]})  # (41, 1)
    write_table(users, d / "users.csv")
    return d


@pytest.fixture(scope="module")
def version(work: Path) -> Path:
    "The config trained from files (train_from_path): the bundle every other test reads."
    return train_from_path(CONFIG, work / "train.csv", work / "models" / "paths")


def _same_model(a: Path, b: Path) -> None:
    for name in ("config.yaml", "schema.json", "metrics.json", "golden.jsonl", "id_maps/users.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ra, rb = load_bundle(a).model, load_bundle(b).model
    users = read_table(a.parent.parent.parent / "users.csv")["user_id"]
    assert ra.recommend(users).equals(rb.recommend(users))


def test_three_layers_give_the_same_model(work: Path, version: Path) -> None:
    from mlprod.bundle import save_bundle

    cfg = load_config(CONFIG)
    in_memory = save_bundle(train_from_data(cfg, read_table(work / "train.csv")), work / "models" / "data")
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--config",
            str(CONFIG),
            "--train-data",
            str(work / "train.csv"),
            "--out-dir",
            str(work / "models" / "cli"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "candidate ItemKNNRecommender: validation ndcg@10" in result.stdout
    assert "baseline popularity: validation ndcg@10" in result.stdout
    _same_model(version, in_memory)
    _same_model(version, resolve_version(work / "models" / "cli"))


def test_metrics_schema_golden_and_refit(work: Path, version: Path) -> None:
    metrics = json.loads((version / "metrics.json").read_text())
    train = read_table(work / "train.csv")
    _, held = split_interactions(train, "user_id", "item_id", "timestamp")  # what training held out
    assert metrics["task"] == "recommend" and metrics["rows"] == len(held)
    assert metrics["users"] == held["user_id"].nunique()
    for who in (metrics, metrics["baseline"]["popularity"]):
        assert {
            f"{m}@{k}" for m in ("precision", "recall", "map", "ndcg", "coverage") for k in (5, 10)
        } <= set(who)
    assert metrics["ndcg@10"] > metrics["baseline"]["popularity"]["ndcg@10"]
    assert metrics["selection"] == {
        "select_by": "ndcg@10",
        "higher_is_better": True,
        "selected": "ItemKNNRecommender",
    }

    schema = json.loads((version / "schema.json").read_text())
    assert schema["task"] == "recommend" and schema["target"] == "item_id" and schema["id_col"] is None
    assert schema["features"] == [
        {"name": "user_id", "kind": "categorical", "dtype": schema["features"][0]["dtype"]}
    ]

    golden = read_table(version / "golden.jsonl")  # held-out users, then one user unseen at training
    assert len(golden) == 8 and golden["user_id"].iloc[-1] == "unseen-user"
    assert set(golden["user_id"].iloc[:-1]) <= set(held["user_id"])

    meta = json.loads((version / "metadata.json").read_text())
    assert meta["split"]["by"] == "time" and meta["split"]["refit"] is True
    model = load_bundle(version).model
    assert model.X_.nnz == train.groupby(["user_id", "item_id"]).ngroups  # refit on every interaction


def test_bundle_keeps_the_id_maps_beside_a_model_without_ids(work: Path, version: Path) -> None:
    manifest = json.loads((version / "manifest.json").read_text())["files"]
    assert {"id_maps/users.csv", "id_maps/items.csv"} <= set(manifest)
    users = read_table(version / "id_maps" / "users.csv")
    assert list(users.columns) == ["user_id", "index"] and len(users) == 40
    raw = joblib.load(version / "model.joblib")  # unpickled as is: no maps attached
    assert getattr(raw, "user_ids_", None) is None and getattr(raw, "item_ids_", None) is None
    blob = pickle.dumps(raw)
    assert b"u029" not in blob and b"i011" not in blob
    with pytest.raises(BundleError, match="no ID maps"):
        raw.recommend(["u029"])

    tampered = work / "tampered"
    shutil.copytree(version, tampered)
    items = tampered / "id_maps" / "items.csv"
    items.write_text(items.read_text().replace("i011", "i999"))
    with pytest.raises(IntegrityError, match="items.csv"):
        load_bundle(tampered)


def test_predict_a_file_of_users_writes_one_json_line_per_user(work: Path, version: Path) -> None:
    out = predict_from_path(version, work / "users.csv", work / "recs.jsonl", workers=1, chunk_rows=16)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    users = read_table(work / "users.csv")["user_id"].tolist()
    assert [r["user_id"] for r in rows] == users  # in input order, one row each
    assert all(list(r) == ["user_id", "items", "scores", "fallback"] for r in rows)
    assert all(len(r["items"]) == len(r["scores"]) == 10 for r in rows)
    assert [r["user_id"] for r in rows if r["fallback"]] == [UNSEEN]
    train = read_table(work / "train.csv")
    seen = train.groupby("user_id")["item_id"].agg(set)
    assert all(not seen[r["user_id"]] & set(r["items"]) for r in rows if not r["fallback"])

    predictor = Predictor.load(version)
    frame = predictor.predict(read_table(work / "users.csv"))
    one = predictor.predict_one({"user_id": UNSEEN})
    assert one == {
        "user_id": UNSEEN,
        "items": rows[-1]["items"],
        "scores": rows[-1]["scores"],
        "fallback": True,
    }
    assert frame["items"].tolist() == [r["items"] for r in rows] and frame["fallback"].tolist()[-1]
    top3 = predictor.recommend(["u029", "u029", UNSEEN], k=3)
    assert top3["items"].map(len).tolist() == [3, 3, 3] and top3["items"][0] == rows[0]["items"][:3]


def test_predict_errors_name_the_column_row_and_item(work: Path, version: Path) -> None:
    predictor = Predictor.load(version)
    with pytest.raises(SchemaError, match="missing column: user_id"):
        predictor.predict(pd.DataFrame({"customer": ["u001"]}), source="in.csv")
    with pytest.raises(DataError, match="in.csv: column 'user_id': row 12: no user id"):
        predictor.predict(pd.DataFrame({"user_id": ["u001", None]}), source="in.csv", row_offset=10)
    with pytest.raises(DataError, match="unknown item id: 'i404'"):
        predictor.similar_items(["i001", "i404"])
    similar = predictor.similar_items(["i001"], k=4)
    assert len(similar.loc[0, "items"]) == 4 and "i001" not in similar.loc[0, "items"]


def test_evaluate_pandas_and_sql_agree(work: Path, version: Path) -> None:
    recs = work / "recs-eval.jsonl"
    predict_from_path(version, work / "users.csv", recs, workers=1)
    got = {}
    for engine in ("pandas", "sql"):
        got[engine] = evaluate_from_path(
            recs, work / "held.csv", work / f"m-{engine}.json", model_dir=version, engine=engine
        )
    assert got["sql"]["users"] == got["pandas"]["users"] == 40 and got["sql"]["rows"] == got["pandas"]["rows"]
    for name in ("precision@5", "recall@5", "precision@10", "recall@10"):
        assert abs(got["sql"][name] - got["pandas"][name]) < 1e-9, name
    assert got["pandas"]["recall@10"] > 0.5  # unseen interactions found: the model generalises
    assert got["sql"]["inputs"]["predictions"]["rows"] == 41

    # The command, without a model: task, columns and k given; space-separated items in a CSV file work too
    recs_csv = work / "recs.csv"
    write_table(
        read_table(recs).assign(items=lambda d: d["items"].str.join(" "))[["user_id", "items"]], recs_csv
    )
    args = [
        "evaluate",
        "--predictions",
        str(recs_csv),
        "--truth",
        str(work / "held.csv"),
        "--task",
        "recommend",
    ]
    args += ["--id-col", "user_id", "--target-col", "item_id", "--k", "3", "--engine", "sql"]
    result = CliRunner().invoke(app, [*args, "--output", str(work / "m-cli.json")])
    assert result.exit_code == 0, result.output
    by_cli = json.loads((work / "m-cli.json").read_text())
    by_pandas = evaluate_from_data(
        read_table(recs), read_table(work / "held.csv"), "recommend", "user_id", "item_id", k_values=[3]
    )
    assert abs(by_cli["precision@3"] - by_pandas["precision@3"]) < 1e-9 and "precision@10" not in by_cli


def test_refit_false_keeps_the_scored_model(work: Path) -> None:
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["validation"]["refit"] = False
    train = read_table(work / "train.csv")
    bundle = train_from_data(cfg, train)
    _, held = split_interactions(train, "user_id", "item_id", "timestamp")
    users = held["user_id"].drop_duplicates()
    recs = Predictor(bundle).recommend(users)  # the saved model is the one that was scored
    again = evaluate_from_data(
        recs, held, "recommend", "user_id", "item_id", **recommend_options(bundle.model, bundle.config)
    )
    assert {k: again[k] for k in again if "@" in k} == {k: bundle.metrics[k] for k in again if "@" in k}
    assert bundle.model.X_.sum() < train["weight"].sum()  # the held-out interactions are not in it


BAD = [
    ("a table key", {"target": "item_id"}, "target", "target applies to classification and regression"),
    ("no item column", {"item_col": None}, "item_col", "missing key"),
    ("one column twice", {"item_col": "user_id"}, "item_col", "'user_id' is also the user_col"),
    (
        "a bad k",
        {"estimator": {"class": "mlprod.recsys.ItemKNNRecommender", "params": {"k": 0}}},
        "estimator.params.k",
        "k must be a positive integer",
    ),
    (
        "a bad similarity",
        {"estimator": {"class": "mlprod.recsys.ItemKNNRecommender", "params": {"similarity": "pearson"}}},
        "estimator.params.similarity",
        "unknown similarity 'pearson'",
    ),
    (
        "another user column",
        {"estimator": {"class": "mlprod.recsys.ItemKNNRecommender", "params": {"user_col": "who"}}},
        "estimator.params.user_col",
        "'who' differs from the config's user_col",
    ),
    (
        "not a recommender",
        {"estimator": {"class": "sklearn.linear_model.Ridge"}},
        "estimator.class",
        "sklearn.linear_model.Ridge is not a recommender",
    ),
    ("holdout out of range", {"validation": {"holdout": 0}}, "validation.holdout", "0 is out of range"),
    ("a table split", {"validation": {"test_size": 0.2}}, "validation.test_size", "unknown key"),
    ("a bad k value", {"evaluate": {"k_values": [5, 0]}}, "evaluate.k_values[1]", "0 is out of range"),
    (
        "a metric at another k",
        {"select_by": "ndcg@20"},
        "select_by",
        "unknown metric 'ndcg@20' for recommend",
    ),
]


@pytest.mark.parametrize(("change", "key", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_recommend_config_names_the_key(
    tmp_path: Path, change: dict[str, Any], key: str, fragment: str
) -> None:
    cfg = yaml.safe_load(CONFIG.read_text()) | change
    cfg = {k: v for k, v in cfg.items() if v is not None}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}:") and f"column '{key}': {fragment}" in str(e.value), str(e.value)


def test_a_recommender_is_refused_for_a_table_task() -> None:
    from mlprod.train import parse_config

    cfg = {"name": "m", "task": "classification", "target": "y", "id_col": "i"}
    with pytest.raises(
        ConfigError, match="column 'estimator.class': mlprod.recsys.ItemKNNRecommender is a recommender"
    ):
        parse_config(cfg | {"estimator": {"class": "mlprod.recsys.ItemKNNRecommender"}})


def test_bad_interactions_name_the_file_column_and_row(work: Path) -> None:
    train = read_table(work / "train.csv")
    bad = work / "bad.csv"
    write_table(train.drop(columns="timestamp"), bad)
    with pytest.raises(SchemaError, match=r"bad.csv: column 'timestamp': the column is not in the data"):
        train_from_path(CONFIG, bad, work / "models" / "bad")
    write_table(train.assign(weight=train["weight"].where(train.index != 6, -1.0)), bad)
    with pytest.raises(
        DataError, match=r"bad.csv: column 'weight': row 7: weight -1.0 is not a positive number"
    ):
        train_from_path(CONFIG, bad, work / "models" / "bad")
    assert not (work / "models" / "bad").exists() or not any((work / "models" / "bad").iterdir())


def test_the_evaluation_report_runs_for_a_recommender(work: Path, version: Path) -> None:
    from mlprod.report import evaluate_report

    out = evaluate_report(version, work / "held.csv", work / "report")
    html = (out / "report.html").read_text(encoding="utf-8")
    for title in ("Ranking metrics at k", "Popularity bias"):
        assert f'<img alt="{title}"' in html, title
    assert "Permutation feature importance" not in html and "against the popularity baseline" in html
    got = json.loads((out / "metrics.json").read_text())
    recs = work / "recs-report.jsonl"
    users = work / "held-users.csv"
    write_table(read_table(work / "held.csv")[["user_id"]].drop_duplicates(), users)
    predict_from_path(version, users, recs, workers=1)
    expected = evaluate_from_path(recs, work / "held.csv", work / "m-report.json", model_dir=version)
    skip = ("inputs", "popularity_bias")
    assert {k: v for k, v in got.items() if k not in skip} == {
        k: v for k, v in expected.items() if k not in skip
    }
    bias = got["popularity_bias"]
    counts = read_table(work / "train.csv")["item_id"].value_counts()  # the saved model's training rows
    top = len(counts) // 10  # the top 10% most popular items
    assert bias["top_fraction"] == 0.1 and bias["items"] == top and 0 < bias["share_of_recommendations"] < 1
    assert np.isclose(
        bias["share_of_training_interactions"], counts.sort_values().iloc[-top:].sum() / counts.sum()
    )
