"""mlprod.testing: golden predictions and metric floors for any mlprod project, and its pytest plugin's
--update-golden (registered by the package's pytest11 entry point)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlprod.tables import write_table
from mlprod.testing import assert_floors, assert_golden, check_floors, check_golden

WANT = pd.DataFrame(
    {"id": ["007", "008", "009"], "prediction": ["no", "yes", "yes"], "proba_yes": [0.25, 0.5, 0.75]}
)


@pytest.fixture
def golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "golden" / "demo.predictions.csv"
    write_table(WANT, path)
    return path


def test_golden_mismatch_names_the_row_the_column_and_both_values(golden: Path) -> None:
    assert check_golden(WANT, golden) == []
    have = WANT.assign(prediction=["no", "no", "yes"])
    assert check_golden(have, golden) == [
        "golden/demo.predictions.csv: row 2 (id 008), column 'prediction': expected 'yes', got 'no'"
    ]
    with pytest.raises(AssertionError, match=r"row 2 \(id 008\), column 'prediction'"):
        assert_golden(have, golden)


def test_golden_floats_within_the_tolerance_only(golden: Path) -> None:
    assert check_golden(WANT.assign(proba_yes=WANT["proba_yes"] * (1 + 1e-12)), golden) == []
    lines = check_golden(WANT.assign(proba_yes=[0.25, 0.5, 0.75 + 1e-6]), golden)
    assert lines == [
        "golden/demo.predictions.csv: row 3 (id 009), column 'proba_yes': expected 0.75, got 0.750001"
    ]
    assert check_golden(WANT.assign(proba_yes=[0.25, 0.5, 0.75 + 1e-6]), golden, rtol=1e-5) == []


def test_many_differences_are_listed_up_to_ten_then_counted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    want = pd.DataFrame({"user": [f"u{i:02d}" for i in range(25)], "score": [i / 7 for i in range(25)]})
    write_table(want, tmp_path / "scores.csv")
    lines = check_golden(want.assign(score=want["score"] + 1), Path("scores.csv"))
    assert len(lines) == 11 and lines[0].startswith("scores.csv: row 1 (user u00), column 'score'")
    assert lines[-1] == "scores.csv: and 15 more differences (25 in all, in 'score')"


def test_a_missing_golden_file_says_how_to_make_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    lines = check_golden(WANT, tmp_path / "golden" / "new.csv")
    assert len(lines) == 1
    assert lines[0].startswith("golden/new.csv: no golden file yet: run pytest with --update-golden"), lines
    assert not (tmp_path / "golden").exists()


def test_other_columns_or_rows_are_one_line(golden: Path) -> None:
    (line,) = check_golden(WANT.drop(columns="proba_yes"), golden)
    assert (
        "columns ['id', 'prediction'] differ from the golden file's ['id', 'prediction', 'proba_yes']" in line
    )
    (line,) = check_golden(WANT.head(2), golden)
    assert line == "golden/demo.predictions.csv: 2 rows predicted, the golden file has 3"


def test_a_floor_missed_names_the_metric() -> None:
    metrics = {"accuracy": 0.91, "roc_auc": 0.78, "log_loss": 0.41}
    assert (
        check_floors(metrics, {"accuracy": 0.9, "roc_auc": 0.7, "log_loss": 0.45}, task="classification")
        == []
    )
    lines = check_floors(metrics, {"roc_auc": 0.8, "log_loss": 0.4}, task="classification")
    assert lines == ["roc_auc 0.78 is below the floor 0.8", "log_loss 0.41 is above the ceiling 0.4"]
    with pytest.raises(AssertionError, match="roc_auc 0.78 is below the floor 0.8"):
        assert_floors(metrics, {"roc_auc": 0.8}, task="classification")
    assert_floors(metrics, {"accuracy": 0.9}, task="classification")


def test_an_unknown_or_missing_metric_is_a_problem() -> None:
    metrics = {"accuracy": 0.91}
    (unknown,) = check_floors(metrics, {"acuracy": 0.9}, task="classification")
    assert unknown.startswith("acuracy: not a metric of task 'classification'"), unknown
    (missing,) = check_floors(metrics, {"f1_macro": 0.7}, task="classification")
    assert missing.startswith("f1_macro: not among the metrics"), missing
    assert check_floors({"r2": 0.9}, {"ndcg@10": 0.3}, task="regression")[0].startswith(
        "ndcg@10: not a metric"
    )
    # a recommender's metrics at any k, popularity@k a ceiling
    recs = {"ndcg@20": 0.5, "popularity@20": 0.7}
    assert check_floors(recs, {"ndcg@20": 0.4, "popularity@20": 0.8}, task="recommend") == []
    assert check_floors(recs, {"popularity@20": 0.6}, task="recommend") == [
        "popularity@20 0.7 is above the ceiling 0.6"
    ]


TEST_FILE = """
import os
from pathlib import Path

import pandas as pd

from mlprod.testing import assert_golden

GOLDEN = Path(__file__).parent / "golden" / "demo.predictions.csv"


def test_predictions():
    score = float(os.environ.get("DEMO_SCORE", "0.75"))
    predictions = pd.DataFrame({"id": ["007", "008", "009"], "prediction": ["no", "yes", "yes"], "proba_yes": [0.25, 0.5, score]})
    assert_golden(predictions, GOLDEN)
"""


def _pytest(folder: Path, *args: str, score: str = "0.75") -> subprocess.CompletedProcess[str]:
    "pytest run as a project runs it, in `folder`: the plugin comes from mlprod's installed entry point."
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "MLPROD"))} | {
        "DEMO_SCORE": score
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_demo.py", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_update_golden_writes_the_file_then_the_test_passes(tmp_path: Path) -> None:
    (tmp_path / "test_demo.py").write_text(TEST_FILE)
    golden = tmp_path / "golden" / "demo.predictions.csv"
    r = _pytest(tmp_path)
    assert r.returncode == 1 and "golden/demo.predictions.csv: no golden file yet" in r.stdout, r.stdout
    assert not golden.exists()
    r = _pytest(tmp_path, "--update-golden")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "--update-golden rewrote 1 golden file(s): golden/demo.predictions.csv" in r.stdout, r.stdout
    assert golden.read_text().splitlines() == [
        "id,prediction,proba_yes",
        "007,no,0.25",
        "008,yes,0.5",
        "009,yes,0.75",
    ]
    written = golden.read_bytes()
    r = _pytest(tmp_path)
    assert r.returncode == 0, r.stdout
    r = _pytest(tmp_path, score="0.8")  # the model changed: the test names the row, and writes nothing
    assert r.returncode == 1
    assert "row 3 (id 009), column 'proba_yes': expected 0.75, got 0.8" in r.stdout, r.stdout
    assert golden.read_bytes() == written
    r = _pytest(tmp_path, "--update-golden", score="0.8")
    assert r.returncode == 0 and "009,yes,0.8" in golden.read_text()


def test_the_plugin_loads_nothing_heavy() -> None:
    code = (
        "import sys, mlprod.testing\n"
        "print([m for m in ('pandas', 'numpy', 'sklearn', 'pyarrow', 'duckdb') if m in sys.modules])"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


def test_update_golden_under_xdist_writes_in_the_workers(tmp_path: Path) -> None:
    (tmp_path / "test_demo.py").write_text(TEST_FILE)
    r = _pytest(tmp_path, "-n", "1", "--update-golden")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mlprod: --update-golden: the workers rewrote the golden files that differed" in r.stdout, r.stdout
    assert (tmp_path / "golden" / "demo.predictions.csv").read_text().splitlines()[1] == "007,no,0.25"
    assert _pytest(tmp_path, "-n", "1").returncode == 0
