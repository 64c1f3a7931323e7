"""A config's `class:` names a class of the kind mlprod expects (an estimator, a transformer, a recommender),
never an arbitrary callable: the import path is imported and checked BEFORE anything is instantiated or called.
A function, a builtin, a module, an instance or a class of the wrong kind is a ConfigError naming the key and
its line, and the callable never runs (each case would create a marker file if it did)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlprod.cli import app
from mlprod.errors import ConfigError
from mlprod.features import import_object, make_object
from mlprod.train import load_config, train_from_path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"


class MarkerOnInit:
    "A class (not an estimator, not a transformer) whose construction leaves a marker file."

    def __init__(self, marker: str = "") -> None:
        Path(marker).write_text("instantiated")


class MarkerFitOnly:
    "Has fit but neither predict nor transform; constructing it leaves a marker file."

    def __init__(self, marker: str = "") -> None:
        Path(marker).write_text("instantiated")

    def fit(self, X: Any, y: Any = None) -> MarkerFitOnly:
        return self


def _table(estimator: dict[str, Any], transformers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "name": "churn",
        "task": "classification",
        "target": "churned",
        "id_col": "customer_id",
    }
    if transformers is not None:
        cfg["preprocessing"] = {"transformers": transformers}
    return cfg | {"estimator": estimator}


LOGREG = {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 200}}


def _cases(marker: Path) -> list[tuple[str, dict[str, Any], str, str]]:
    "(id, config, the key named, a fragment of the message) for every way a `class:` can name the wrong thing."
    m = str(marker)
    system = {"class": "os.system", "params": {"command": f"touch {m}"}}
    popen = {"class": "subprocess.Popen", "params": {"args": ["touch", m]}}
    evil = {"class": "builtins.eval", "params": {"source": f"open({m!r}, 'w').write('x')"}}
    on_init = {"class": "test_config_classes.MarkerOnInit", "params": {"marker": m}}
    fit_only = {"class": "test_config_classes.MarkerFitOnly", "params": {"marker": m}}
    module = {"class": "os.path", "params": {}}
    instance = {"class": "mlprod.features.PREPROCESSING_DEFAULTS", "params": {}}
    tr = "preprocessing.transformers[0]"
    return [
        ("estimator-os.system", _table(system), "estimator.class", "a function"),
        ("estimator-eval", _table(evil), "estimator.class", "not a class"),
        ("estimator-Popen", _table(popen), "estimator.class", "not an estimator"),
        ("estimator-init-marker", _table(on_init), "estimator.class", "not an estimator"),
        ("estimator-fit-only", _table(fit_only), "estimator.class", "not an estimator"),
        ("estimator-module", _table(module), "estimator.class", "a module"),
        ("estimator-instance", _table(instance), "estimator.class", "not a class"),
        ("transformer-os.system", _table(LOGREG, [system]), tr, "a function"),
        ("transformer-eval", _table(LOGREG, [evil]), tr, "not a class"),
        ("transformer-Popen", _table(LOGREG, [popen]), tr, "not a transformer"),
        ("transformer-init-marker", _table(LOGREG, [on_init]), tr, "not a transformer"),
        ("transformer-fit-only", _table(LOGREG, [fit_only]), tr, "not a transformer"),
        ("transformer-module", _table(LOGREG, [module]), tr, "a module"),
        ("transformer-estimator", _table(LOGREG, [LOGREG]), tr, "not a transformer"),
        (
            "recommender-Popen",
            {
                "name": "recs",
                "task": "recommend",
                "user_col": "user_id",
                "item_col": "item_id",
                "estimator": popen,
            },
            "estimator.class",
            "not a recommender",
        ),
    ]


CASE_IDS = [c[0] for c in _cases(Path("m"))]


def _case(tmp_path: Path, case_id: str) -> tuple[Path, Path, str, str]:
    "The config file of case `case_id`, its marker (absent), the key it must name and a message fragment."
    marker = tmp_path / "MARKER"
    (_, cfg, key, fragment) = next(c for c in _cases(marker) if c[0] == case_id)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path, marker, key, fragment


def _line_of(path: Path, key: str) -> int:
    "The 1-based line of `key` (`estimator.class`: its `class:`; `preprocessing.transformers[0]`: its item)."
    lines = path.read_text().splitlines()
    top = key.split(".")[0]
    start = next(i for i, t in enumerate(lines) if t.startswith(f"{top}:"))
    last = key.rsplit(".", 1)[-1]
    if last.endswith("[0]"):  # the first item of the list `last` names
        at = next(i for i in range(start, len(lines)) if lines[i].strip() == f"{last[:-3]}:")
        return next(i for i in range(at, len(lines)) if lines[i].lstrip().startswith("- ")) + 1
    return next(i for i in range(start, len(lines)) if lines[i].lstrip(" -").startswith(f"{last}:")) + 1


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_a_class_of_the_wrong_kind_is_a_config_error_and_never_runs(tmp_path: Path, case_id: str) -> None:
    path, marker, key, fragment = _case(tmp_path, case_id)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert not marker.exists(), f"{case_id}: the named callable ran while the config was validated"
    assert e.value.column == key and fragment in msg, msg
    assert e.value.line == _line_of(path, key) and msg.startswith(f"{path}:{e.value.line}: "), msg
    assert "expected" in msg, msg  # says what a `class:` may be


@pytest.mark.parametrize("case_id", ["estimator-os.system", "transformer-os.system", "transformer-Popen"])
def test_train_never_reads_the_data_nor_runs_the_callable(tmp_path: Path, case_id: str) -> None:
    path, marker, key, _ = _case(tmp_path, case_id)
    root = tmp_path / "models"
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        train_from_path(path, tmp_path / "no-such-data.csv", root)  # the config fails before the data is read
    assert not marker.exists() and not root.exists()


@pytest.mark.parametrize(
    "case_id", ["transformer-os.system", "transformer-init-marker", "estimator-fit-only"]
)
def test_the_command_exits_2_with_one_line_and_runs_nothing(tmp_path: Path, case_id: str) -> None:
    path, marker, key, _ = _case(tmp_path, case_id)
    root = tmp_path / "models"
    args = [
        "train",
        "--config",
        str(path),
        "--train-data",
        str(FIXTURES / "binary.csv"),
        "--out-dir",
        str(root),
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and "config error" in r.stderr and key in r.stderr, (
        r.stderr
    )
    assert "Traceback" not in r.output
    assert not marker.exists() and not root.exists()


def test_the_installed_command_runs_nothing(tmp_path: Path) -> None:
    path, marker, key, _ = _case(tmp_path, "transformer-os.system")
    exe = Path(sys.executable).parent / "mlprod"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPROD")} | {"PYTHONPATH": str(HERE)}
    args = ["train", "--config", str(path), "--train-data", str(FIXTURES / "binary.csv")]
    r = subprocess.run(
        [str(exe), *args, "--out-dir", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert key in r.stderr and "Traceback" not in r.stderr
    assert not marker.exists() and not (tmp_path / "m").exists()


def test_make_object_checks_the_kind_before_it_calls(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    for path, params in [
        ("os.system", {"command": f"touch {marker}"}),
        ("subprocess.Popen", {"args": ["touch", str(marker)]}),
        ("test_config_classes.MarkerOnInit", {"marker": str(marker)}),
    ]:
        with pytest.raises(ConfigError, match="expected"):
            make_object(path, params, "k", kind="transformer")
        with pytest.raises(ConfigError, match="expected"):
            make_object(path, params, "k", kind="estimator")
        assert not marker.exists(), path
    with pytest.raises(ConfigError, match="a function"):
        import_object("os.system", "k")  # whatever the kind: a config names classes only
    with pytest.raises(ValueError, match="unknown kind"):  # a programming error, not a config one
        import_object("sklearn.linear_model.Ridge", "k", kind="gadget")


def test_classes_of_the_right_kind_still_load(tmp_path: Path) -> None:
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    from mlprod.features import ColumnRatio
    from mlprod.recsys import ItemKNNRecommender

    assert import_object("sklearn.linear_model.Ridge", "k", kind="estimator") is Ridge
    assert isinstance(
        make_object("sklearn.preprocessing.StandardScaler", {}, "k", kind="transformer"), StandardScaler
    )
    ratio = make_object(
        "mlprod.features.ColumnRatio", {"numerator": "a", "denominator": "b"}, "k", kind="transformer"
    )
    assert isinstance(ratio, ColumnRatio)
    assert import_object("mlprod.recsys.ItemKNNRecommender", "k", kind="recommender") is ItemKNNRecommender
    with pytest.raises(ConfigError, match="not a recommender"):
        import_object("sklearn.linear_model.Ridge", "k", kind="recommender")
    ok = _table(LOGREG, [{"class": "sklearn.preprocessing.StandardScaler"}])
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(ok, sort_keys=False), encoding="utf-8")
    assert load_config(path).candidates[0].cls == "sklearn.linear_model.LogisticRegression"
