"""Custom transformers: every column a step adds reaches the model; NumPy and DataFrame transformers; user packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlprod.bundle import load_bundle, save_bundle
from mlprod.data import iris_frame
from mlprod.errors import ConfigError, SchemaError
from mlprod.predict import Predictor
from mlprod.train import train_from_data, train_from_path

BIN = Path(sys.executable).parent
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

# The seed article's transformer (NumPy in, NumPy with one more column out), and others; each names its output
# columns (get_feature_names_out), as the transformer contract asks (mlprod.contracts).
USER_MODULE = """
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class PetalAreaTransformer(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        petal_length = X[:, 2]
        petal_width = X[:, 3]
        return np.c_[X, petal_length * petal_width]

    def get_feature_names_out(self, input_features=None):
        return np.asarray([*input_features, "petalarea"], dtype=object)


class PetalAreaFrame(BaseEstimator, TransformerMixin):
    "A DataFrame transformer that adds a column and declares nothing."

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X.assign(petal_area=X["petal_length"] * X["petal_width"])

    def get_feature_names_out(self, input_features=None):
        return np.asarray([*input_features, "petal_area"], dtype=object)


class Broken(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        raise RuntimeError("nothing works here")

    def get_feature_names_out(self, input_features=None):
        return np.asarray(input_features, dtype=object)


class AddsText(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X.assign(size=np.where(X["petal_length"] > 3, "big", "small"))

    def get_feature_names_out(self, input_features=None):
        return np.asarray([*input_features, "size"], dtype=object)
"""


@pytest.fixture
def user_pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    "A package of the user's own, `my_feats_<n>` (a new name per test), importable in this process: its name."
    name = f"my_feats_{abs(hash(str(tmp_path))) % 10**8}"
    pkg = tmp_path / "site" / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "transformers.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield name
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]


def iris_config(transformers: list[dict], **extra: object) -> dict:
    return {
        "name": "iris_custom",
        "task": "classification",
        "target": "species",
        "id_col": "flower_id",
        "estimator": {
            "class": "sklearn.ensemble.RandomForestClassifier",
            "params": {"n_estimators": 20, "max_depth": 4},
        },
        "preprocessing": {"transformers": transformers},
        "seed": 0,
        **extra,
    }


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    return iris_frame()  # (150, 6)


def test_seed_article_numpy_transformer_reaches_the_model(user_pkg: str, iris: pd.DataFrame) -> None:
    cfg = iris_config([{"class": f"{user_pkg}.transformers.PetalAreaTransformer"}])
    b = train_from_data(cfg, iris)
    est = b.model.steps[-1][1]
    assert est.n_features_in_ == 5
    names = list(est.feature_names_in_)
    assert names[:4] == FEATURES and names[4] == "petalarea"
    # the new column is the product, as the article computes it (imputation leaves complete rows alone)
    Xt = b.model[:-1].transform(iris[FEATURES])  # (150, 5)
    np.testing.assert_allclose(Xt["petalarea"], iris["petal_length"] * iris["petal_width"])
    assert b.schema.model_features == names


def test_dataframe_transformer_adds_a_column_without_declaring_it(user_pkg: str, iris: pd.DataFrame) -> None:
    cfg = iris_config([{"class": f"{user_pkg}.transformers.PetalAreaFrame"}])
    cfg["preprocessing"]["scale"] = True
    b = train_from_data(cfg, iris)
    est = b.model.steps[-1][1]
    assert est.n_features_in_ == 5 and list(est.feature_names_in_) == [*FEATURES, "petal_area"]
    from sklearn.preprocessing import StandardScaler

    numeric_side = b.model.named_steps["preprocess"].named_transformers_["num"]
    scaler = numeric_side.named_transformers_["remainder"].named_steps["scale"]
    assert isinstance(scaler, StandardScaler)
    assert list(scaler.feature_names_in_) == [*FEATURES, "petal_area"]  # the new column is scaled too


def test_shipped_transformers_name_their_columns(iris: pd.DataFrame) -> None:
    cfg = iris_config(
        [
            {
                "class": "mlprod.features.ColumnProduct",
                "params": {"columns": ["petal_length", "petal_width"], "name": "area"},
            },
            {
                "class": "mlprod.features.ColumnRatio",
                "params": {"numerator": "sepal_length", "denominator": "sepal_width", "name": "r"},
            },
        ]
    )
    b = train_from_data(cfg, iris)
    assert list(b.model.steps[-1][1].feature_names_in_) == [*FEATURES, "area", "r"]


@pytest.mark.parametrize(
    ("cls", "words"),
    [
        ("Broken", ["Broken", "nothing works here", "a DataFrame", "NumPy"]),
        ("AddsText", ["AddsText", "'size'", "numbers"]),
    ],
)
def test_a_bad_transformer_is_a_config_error_naming_it(
    user_pkg: str, iris: pd.DataFrame, cls: str, words: list[str]
) -> None:
    cfg = iris_config([{"class": f"{user_pkg}.transformers.{cls}"}])
    with pytest.raises(ConfigError) as e:
        train_from_data(cfg, iris)
    msg = str(e.value)
    assert "preprocessing.transformers[0]" in msg
    for w in words:
        assert w in msg, msg


def _write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _fresh_python(code: str, pythonpath: Path | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("MLPROD")}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_user_package_class_trains_from_path_and_loads_in_a_fresh_process(
    user_pkg: str, iris: pd.DataFrame, tmp_path: Path
) -> None:
    data = tmp_path / "iris.csv"
    iris.to_csv(data, index=False)
    cfg = _write_config(
        tmp_path / "c.yaml", iris_config([{"class": f"{user_pkg}.transformers.PetalAreaTransformer"}])
    )
    v = train_from_path(cfg, data, tmp_path / "models")
    schema = json.loads((v / "schema.json").read_text())
    assert schema["model_features"] == [*FEATURES, "petalarea"]
    expected = Predictor.load(v).predict(iris)["prediction"].tolist()
    code = (
        "import json, sys; import pandas as pd; from mlprod.predict import Predictor\n"
        f"p = Predictor.load({str(v)!r})\n"
        f"print(json.dumps(p.predict(pd.read_csv({str(data)!r}))['prediction'].tolist()))\n"
    )
    r = _fresh_python(code, tmp_path / "site")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == expected
    r = _fresh_python(code, None)  # the loading side needs the package: without it, no model
    assert r.returncode != 0 and user_pkg in r.stderr


def test_user_package_class_through_the_command(user_pkg: str, iris: pd.DataFrame, tmp_path: Path) -> None:
    data = tmp_path / "iris.csv"
    iris.to_csv(data, index=False)
    cfg = _write_config(
        tmp_path / "c.yaml", iris_config([{"class": f"{user_pkg}.transformers.PetalAreaFrame"}])
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPROD")}
    env["PYTHONPATH"] = str(tmp_path / "site")
    root = tmp_path / "models"
    args = ["train", "--config", str(cfg), "--train-data", str(data), "--out-dir", str(root)]
    r = subprocess.run([str(BIN / "mlprod"), *args], capture_output=True, text=True, env=env, timeout=180)
    assert r.returncode == 0, r.stderr
    (v,) = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert json.loads((v / "schema.json").read_text())["model_features"] == [*FEATURES, "petal_area"]
    out = tmp_path / "pred.jsonl"
    args = ["predict", "--model-dir", str(root), "--input", str(data), "--output", str(out)]
    r = subprocess.run([str(BIN / "mlprod"), *args], capture_output=True, text=True, env=env, timeout=180)
    assert r.returncode == 0, r.stderr
    assert len(out.read_text().splitlines()) == len(iris)


def test_user_classes_in_the_skops_format(user_pkg: str, iris: pd.DataFrame, tmp_path: Path) -> None:
    from mlprod.errors import UntrustedTypeError

    cfg = iris_config(
        [
            {"class": f"{user_pkg}.transformers.PetalAreaTransformer"},
            {"class": f"{user_pkg}.transformers.PetalAreaFrame"},
        ]
    )
    b = train_from_data(cfg, iris)
    v = save_bundle(b, tmp_path / "m", model_format="skops")
    own = [f"{user_pkg}.transformers.PetalAreaTransformer", f"{user_pkg}.transformers.PetalAreaFrame"]
    trusted = ["numpy.dtype", "sklearn.tree._tree.Tree", "mlprod.features.FrameAdapter", *own]
    loaded = load_bundle(v, trusted_types=trusted)
    assert (loaded.model.predict(iris[FEATURES]) == b.model.predict(iris[FEATURES])).all()
    with pytest.raises(UntrustedTypeError, match="PetalAreaTransformer"):
        load_bundle(v, trusted_types=trusted[:3])


# --- Predictor.predict on a NumPy array ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iris_predictor(iris: pd.DataFrame) -> Predictor:
    return Predictor(train_from_data(iris_config([]), iris))


def test_predict_a_numpy_array_in_schema_order(iris_predictor: Predictor, iris: pd.DataFrame) -> None:
    arr = iris[FEATURES].to_numpy()  # (150, 4)
    out = iris_predictor.predict(arr, proba=True)
    framed = iris_predictor.predict(iris, proba=True)
    assert "flower_id" not in out.columns and list(out.columns) == list(framed.columns[1:])
    assert out["prediction"].tolist() == framed["prediction"].tolist()
    np.testing.assert_allclose(out.iloc[:, 1:].to_numpy(), framed.iloc[:, 2:].to_numpy())
    one = iris_predictor.predict(np.array([[5.1, 3.5, 1.4, 0.2]]))
    assert one["prediction"].tolist() == ["setosa"] and list(one.index) == [0]


@pytest.mark.parametrize("shape", [(2, 3), (2, 5), (4,)])
def test_predict_a_numpy_array_of_the_wrong_shape(iris_predictor: Predictor, shape: tuple[int, ...]) -> None:
    with pytest.raises(SchemaError) as e:
        iris_predictor.predict(np.ones(shape))
    msg = str(e.value)
    assert str(shape) in msg and "sepal_length, sepal_width, petal_length, petal_width" in msg, msg


def test_the_model_card_lists_the_final_features(user_pkg: str, iris: pd.DataFrame, tmp_path: Path) -> None:
    from mlprod.card import model_card

    b = train_from_data(iris_config([{"class": f"{user_pkg}.transformers.PetalAreaTransformer"}]), iris)
    v = save_bundle(b, tmp_path / "m")
    summary = model_card(v)["summary"]
    assert f"- model features (5): {', '.join(FEATURES)}, petalarea" in summary.splitlines(), summary
