"""train: the saved model is refit on every training row (or kept as scored, refit: false); candidates scored by
holdout or K-fold cross-validation; train loads back each version before it becomes `latest`; a model that
cannot be serialised is one line and no model root; `models list` and `--keep-candidates` name the candidates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import BaseEstimator, ClassifierMixin
from typer.testing import CliRunner

from mlprod.bundle import load_bundle
from mlprod.cli import app
from mlprod.data import split_frame, split_positions
from mlprod.errors import BundleError, ConfigError, IntegrityError
from mlprod.evaluate import evaluate_from_data
from mlprod.predict import Predictor
from mlprod.registry import read_aliases
from mlprod.train import load_config, train_candidates, train_from_data, train_from_path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
BIN = Path(sys.executable).parent


def _frame(name: str) -> tuple[pd.DataFrame, str, list[str]]:
    "A dataset shipped with scikit-learn as a frame with an id column: (frame, target, features)."
    from sklearn import datasets

    from mlprod.data import iris_frame

    if name == "iris":
        df = iris_frame()  # (150, 6)
        return df, "species", [c for c in df.columns if c not in ("flower_id", "species")]
    loaded = getattr(datasets, f"load_{name}")(as_frame=True)
    df = loaded.frame.rename(columns={"target": "y"})  # (n_rows, n_features + 1)
    if name == "wine":
        df["y"] = df["y"].map(lambda v: f"class_{v}")
    df.insert(0, "row_id", np.arange(len(df)))
    return df, "y", [c for c in df.columns if c not in ("row_id", "y")]


CASES = {
    # name: (task, estimator class, params, seed)
    "iris": (
        "classification",
        "sklearn.ensemble.RandomForestClassifier",
        {"n_estimators": 100, "max_depth": 5},
        42,
    ),
    "wine": ("classification", "sklearn.ensemble.RandomForestClassifier", {"n_estimators": 50}, 3),
    "diabetes": (
        "regression",
        "sklearn.ensemble.RandomForestRegressor",
        {"n_estimators": 40, "max_depth": 4},
        7,
    ),
}


def _config(name: str, **validation: Any) -> dict[str, Any]:
    task, cls, params, seed = CASES[name]
    df, target, _ = _frame(name)
    return {
        "name": name,
        "task": task,
        "target": target,
        "id_col": df.columns[0],
        "estimator": {"class": cls, "params": params},
        **({"validation": validation} if validation else {}),
        "seed": seed,
    }


def _plain(name: str, train: pd.DataFrame) -> Any:
    "Plain scikit-learn: the pipeline mlprod builds (median imputation of every numeric column), same estimator and seed."
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    from mlprod.features import import_object

    _, cls, params, seed = CASES[name]
    _, target, features = _frame(name)
    pre = ColumnTransformer(
        [("num", Pipeline([("impute", SimpleImputer(strategy="median", fill_value=0))]), features)],
        verbose_feature_names_out=False,
    )
    pipe = Pipeline([("preprocess", pre), ("model", import_object(cls, "x")(**params, random_state=seed))])
    return pipe.fit(train[features], train[target])


def _outputs(name: str, model: Any, test: pd.DataFrame) -> pd.DataFrame:
    "Predictions (and probabilities) of a plain pipeline in mlprod's format: (n_test, 2 [+ n_classes])."
    task = CASES[name][0]
    _, target, features = _frame(name)
    id_col = test.columns[0]
    out = pd.DataFrame({id_col: test[id_col].to_numpy(), "prediction": model.predict(test[features])})
    if task == "classification":
        proba = model.predict_proba(test[features])  # (n_test, n_classes)
        for i, c in enumerate(model.classes_):
            out[f"proba_{c}"] = proba[:, i]
    return out


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, float)}


@pytest.mark.parametrize("name", list(CASES))
def test_refit_gives_plain_sklearns_test_metrics(name: str) -> None:
    df, target, _ = _frame(name)
    task = CASES[name][0]
    train, test = split_frame(df, 0.25, 0, target if task == "classification" else None)
    bundle = train_from_data(_config(name), train)
    ours = evaluate_from_data(Predictor(bundle).predict(test, proba=True), test, task, df.columns[0], target)
    plain = evaluate_from_data(_outputs(name, _plain(name, train), test), test, task, df.columns[0], target)
    assert _scalars(ours).keys() == _scalars(plain).keys() and _scalars(ours)
    for k, v in _scalars(plain).items():
        assert abs(ours[k] - v) <= 1e-12, (k, ours[k], v)
    n_val = len(
        split_positions(len(train), 0.2, CASES[name][3], train[target] if task == "classification" else None)[
            1
        ]
    )
    assert bundle.metrics["validation"] == {
        "method": "holdout",
        "rows": n_val,
        "test_size": 0.2,
        "stratify": task == "classification",
    }
    assert bundle.metrics["saved_model"] == {"refit": True, "fit_rows": len(train)}
    assert bundle.metrics["rows"] == n_val  # the validation figures are of the held-out rows


def test_refit_false_keeps_the_scored_model() -> None:
    df, target, features = _frame("iris")
    bundle = train_from_data(_config("iris", refit=False), df)
    train_pos, _ = split_positions(len(df), 0.2, 42, df[target])
    scored = _plain("iris", df.iloc[train_pos])
    np.testing.assert_array_equal(
        bundle.model.predict_proba(df[features]), scored.predict_proba(df[features])
    )
    assert bundle.metrics["saved_model"] == {"refit": False, "fit_rows": len(train_pos)}
    assert bundle.config["validation"]["refit"] is False


@pytest.mark.parametrize("name", ["wine", "diabetes"])
def test_cv_scores_out_of_fold_and_refits_on_every_row(name: str) -> None:
    from sklearn.model_selection import KFold, StratifiedKFold

    df, target, features = _frame(name)
    task, _, _, seed = CASES[name]
    bundle = train_from_data(_config(name, cv=4), df)
    folds = (StratifiedKFold if task == "classification" else KFold)(4, shuffle=True, random_state=seed)
    parts = []
    for fit_pos, val_pos in folds.split(df, df[target]):
        parts.append(_outputs(name, _plain(name, df.iloc[fit_pos]), df.iloc[val_pos]))
    oof = pd.concat(parts, ignore_index=True)  # (n_rows, 2 [+ n_classes]): every row once, out of fold
    want = evaluate_from_data(oof, df, task, df.columns[0], target)
    for k, v in _scalars(want).items():
        assert abs(bundle.metrics[k] - v) <= 1e-12, (k, bundle.metrics[k], v)
    assert bundle.metrics["validation"] == {
        "method": "cv",
        "rows": len(df),
        "folds": 4,
        "stratify": task == "classification",
    }
    assert bundle.metrics["saved_model"] == {"refit": True, "fit_rows": len(df)}
    plain = _plain(name, df)
    np.testing.assert_array_equal(bundle.model.predict(df[features]), plain.predict(df[features]))
    golden = bundle.golden
    assert len(golden) == 8 and set(golden[df.columns[0]]) <= set(df[df.columns[0]])  # real input rows


def _config_file(tmp_path: Path, validation: dict[str, Any], name: str = "wine") -> tuple[Path, int]:
    "A config file with `validation`; and the line of its `validation:` key."
    path = tmp_path / "c.yaml"
    text = yaml.safe_dump(_config(name) | {"validation": validation}, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path, text.splitlines().index("validation:") + 1


@pytest.mark.parametrize(
    ("validation", "key", "message"),
    [
        ({"cv": 1}, "validation.cv", "1 is out of range"),
        ({"cv": True}, "validation.cv", "True is a boolean"),
        ({"cv": 2.5}, "validation.cv", "2.5 is a float"),
        ({"cv": 3, "test_size": 0.2}, "validation.cv", "give one of test_size and cv"),
        ({"refit": "yes"}, "validation.refit", "'yes' is a str"),
        ({"test_size": 0}, "validation.test_size", "0 is out of range"),
        ({"test_size": 1.0}, "validation.test_size", "1.0 is out of range"),
    ],
)
def test_bad_validation_is_a_config_error_naming_its_line(
    tmp_path: Path, validation: dict[str, Any], key: str, message: str
) -> None:
    path, line = _config_file(tmp_path, validation)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    sub = 1 + list(validation).index(key.split(".")[1])
    assert str(e.value).startswith(f"{path}:{line + sub}: column '{key}': {message}"), str(e.value)


@pytest.mark.parametrize(
    ("cv", "message"),
    [
        (200, "200 folds for 178 rows"),
        (60, "60 folds, but the smallest class 'class_2' has 48 rows"),
    ],
)
def test_cv_larger_than_the_data_is_a_config_error_naming_its_line(
    tmp_path: Path, cv: int, message: str
) -> None:
    path, line = _config_file(tmp_path, {"cv": cv})
    df, _, _ = _frame("wine")
    with pytest.raises(ConfigError) as e:
        train_candidates(load_config(path), df)
    assert str(e.value).startswith(f"{path}:{line + 1}: column 'validation.cv': {message}"), str(e.value)


# --- train loads back what it saved -------------------------------------------------------------------------


class ShiftsAfterReload(ClassifierMixin, BaseEstimator):
    "Test-only: predicts its first class until it is unpickled, then its last: a model that does not reload as saved."

    def fit(self, X: Any, y: Any) -> ShiftsAfterReload:
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.classes_[-1 if getattr(self, "reloaded_", False) else 0])

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.reloaded_ = True


class HoldsAnIndex(ClassifierMixin, BaseEstimator):
    "Test-only: keeps a pandas Index, which skops cannot store."

    def fit(self, X: Any, y: Any) -> HoldsAnIndex:
        self.classes_ = np.unique(y)
        self.columns_ = pd.Index(list(X.columns) if hasattr(X, "columns") else ["x"])
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.classes_[0])


CHURN = {
    "name": "churn",
    "task": "classification",
    "target": "churned",
    "id_col": "customer_id",
    "seed": 0,
}


def _churn(tmp_path: Path, cls: str) -> Path:
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(CHURN | {"estimator": {"class": cls}}, sort_keys=False), encoding="utf-8")
    return path


def _mlprod(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    "The installed command, with this test module importable (its test-only estimators)."
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPROD")}
    env["PYTHONPATH"] = str(Path(__file__).parent)
    exe = shutil.which("mlprod", path=str(BIN)) or "mlprod"
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=180, env=env)


def _versions(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and p.is_dir())


def test_train_from_path_refuses_a_model_that_does_not_reload_as_saved(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        yaml.safe_dump(CHURN | {"estimator": {"class": "sklearn.dummy.DummyClassifier"}}), encoding="utf-8"
    )
    root = tmp_path / "models" / "churn"
    first = train_from_path(good, FIXTURES / "binary.csv", root)
    aliases = read_aliases(root)
    bad = _churn(tmp_path, f"{__name__}.ShiftsAfterReload")
    with pytest.raises(IntegrityError) as e:
        train_from_path(bad, FIXTURES / "binary.csv", root)
    msg = str(e.value)
    assert "\n" not in msg and "golden row 1" in msg and "did not load back" in msg, msg
    assert _versions(root) == [first.name] and read_aliases(root) == aliases  # nothing kept, latest unmoved
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]


def test_mlprod_train_refuses_a_model_that_does_not_reload_as_saved(tmp_path: Path) -> None:
    bad = _churn(tmp_path, "test_refit.ShiftsAfterReload")
    r = _mlprod(
        "train",
        "--config",
        str(bad),
        "--train-data",
        str(FIXTURES / "binary.csv"),
        "--out-dir",
        "m",
        cwd=tmp_path,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("mlprod: integrity error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr and "golden row 1" in r.stderr
    assert not (tmp_path / "m").exists() or _versions(tmp_path / "m") == []
    assert not (tmp_path / "m" / "aliases.json").exists()


def test_a_model_skops_cannot_store_is_one_line_and_no_model_root(tmp_path: Path) -> None:
    cfg = _churn(tmp_path, f"{__name__}.HoldsAnIndex")
    root = tmp_path / "models" / "churn"
    with pytest.raises(BundleError) as e:
        train_from_path(cfg, FIXTURES / "binary.csv", root, model_format="skops")
    assert "\n" not in str(e.value) and "skops" in str(e.value), str(e.value)
    assert not root.exists() and not root.parent.exists()
    cfg = _churn(tmp_path, "test_refit.HoldsAnIndex")
    r = _mlprod(
        "train", "--config", str(cfg), "--train-data", str(FIXTURES / "binary.csv"),
        "--out-dir", "m/churn", "--model-format", "skops", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("mlprod: bundle error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr and "cannot save the model" in r.stderr
    assert not (tmp_path / "m").exists()


def test_models_list_and_keep_candidates_name_every_candidate(tmp_path: Path) -> None:
    cfg = ROOT / "configs" / "churn_candidates.yaml"
    root = tmp_path / "churn"
    runner = CliRunner()
    args = [
        "train",
        "--config",
        str(cfg),
        "--train-data",
        str(FIXTURES / "binary.csv"),
        "--out-dir",
        str(root),
    ]
    r = runner.invoke(app, [*args, "--keep-candidates"])
    assert r.exit_code == 0, r.output
    metrics = json.loads((root / read_aliases(root)["latest"] / "metrics.json").read_text())
    selected = metrics["selection"]["selected"]
    wrote = [line for line in r.stdout.splitlines() if line.startswith("wrote ")]
    assert len(wrote) == 3 and len(_versions(root)) == 3, r.stdout
    for name in ("logreg", "forest", "boosting"):
        (line,) = [w for w in wrote if f"(candidate {name}" in w]
        assert ("selected" in line) == (name == selected), line
        version = line.split()[1]
        assert load_bundle(version).metadata["candidate"] == name
    r = runner.invoke(app, ["models", "list", str(root)])
    assert r.exit_code == 0, r.output
    for name in ("logreg", "forest", "boosting"):
        (row,) = [line for line in r.stdout.splitlines() if f" {name}" in line]
        score = metrics["candidates"][name]["roc_auc"]
        assert f"roc_auc={score:.4g}" in row, row
        assert ("latest" in row) == (name == selected), row
    assert "accuracy=" not in r.stdout  # only the metric the candidates were selected by
