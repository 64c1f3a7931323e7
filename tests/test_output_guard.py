"""No output lands inside a model: a version folder or a model root is written only by `train` and `promote`.
And a Parquet file with a column name twice is refused when it is read, so no command writes anything from it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from mlprod.bundle import load_bundle
from mlprod.data import split_file
from mlprod.errors import MlprodError
from mlprod.evaluate import evaluate_from_path
from mlprod.predict import predict_from_path
from mlprod.query import fetch
from mlprod.registry import read_aliases
from mlprod.report import evaluate_report
from mlprod.tables import read_table
from mlprod.train import train_from_path

from conftest import CHURN_CONFIG as CONFIG
from conftest import FIXTURES, run_cli


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    "A workspace (the module's current folder): the binary fixture, one model root with one version, predictions."
    d = tmp_path_factory.mktemp("output_guard")
    shutil.copy(FIXTURES / "binary.csv", d / "binary.csv")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(d)
        (d / "churn.yaml").write_text(yaml.safe_dump(CONFIG))
        train_from_path("churn.yaml", "binary.csv", "models/churn")
        predict_from_path("models/churn", "binary.csv", "preds.jsonl")
        (d / "q.sql").write_text("SELECT * FROM t\n")
        yield d


def _version(work: Path) -> Path:
    return Path("models/churn") / read_aliases(work / "models" / "churn")["latest"]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _targets(work: Path) -> list[Path]:
    "Output paths inside the model: in its version folder, its aliases file, a new folder in either."
    v = _version(work)
    return [
        v / "out.jsonl",
        Path("models/churn/aliases.json"),
        v / "new" / "out.jsonl",
        Path("models/churn/x.jsonl"),
    ]


def _refused(fn, work: Path) -> str:
    "Run `fn`; it must raise an MlprodError naming the model, and leave the model root byte-identical."
    before = _snapshot(work / "models")
    with pytest.raises(MlprodError) as e:
        fn()
    assert _snapshot(work / "models") == before
    load_bundle("models/churn")  # still verifies
    return str(e.value)


@pytest.mark.parametrize("i", range(4))
def test_predict_split_evaluate_fetch_never_write_into_a_model(work: Path, i: int) -> None:
    out = _targets(work)[i]
    csv_out = out.with_suffix(".csv")
    calls = {
        "predict": lambda: predict_from_path("models/churn", "binary.csv", out),
        "split": lambda: split_file("binary.csv", csv_out, "test.csv", 0.25, 0),
        "evaluate": lambda: evaluate_from_path(
            "preds.jsonl", "binary.csv", out.with_suffix(".json"), model_dir="models/churn"
        ),
        "fetch": lambda: fetch("q.sql", csv_out, tables={"t": "binary.csv"}),
    }
    for name, fn in calls.items():
        msg = _refused(fn, work)
        assert "inside the model" in msg, (name, msg)
    assert not Path("test.csv").exists()


def test_the_commands_refuse_too(work: Path) -> None:
    v = _version(work)
    runs = {
        "predict": [
            "predict",
            "--model-dir",
            "models/churn",
            "--input",
            "binary.csv",
            "--output",
            f"{v}/p.jsonl",
        ],
        "split": ["data", "split", "binary.csv", "--train-out", f"{v}/tr.csv", "--test-out", "te.csv"],
        "evaluate": [
            *["evaluate", "--predictions", "preds.jsonl", "--truth", "binary.csv"],
            *["--model-dir", "models/churn", "--output", "models/churn/aliases.json"],
        ],
        "fetch": ["data", "fetch", "--sql", "q.sql", "--table", "t=binary.csv", "--output", f"{v}/f.csv"],
        "train": ["train", "--config", "churn.yaml", "--train-data", "binary.csv", "--out-dir", str(v)],
        "report": [
            *["report", "evaluate", "--model-dir", "models/churn", "--data", "binary.csv"],
            *["--out-dir", f"{v}/report"],
        ],
    }
    before = _snapshot(work / "models")
    for name, args in runs.items():
        r = run_cli(*args)
        assert r.returncode == 2, (name, r.returncode, r.stderr)
        assert "inside the model" in r.stderr and "Traceback" not in r.stderr, (name, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, (name, r.stderr)
    assert _snapshot(work / "models") == before
    assert not Path("te.csv").exists()


def test_train_never_makes_a_model_root_inside_a_model(work: Path) -> None:
    v = _version(work)
    for out_dir in (v, v / "sub", Path("models/churn/sub")):
        msg = _refused(lambda out_dir=out_dir: train_from_path("churn.yaml", "binary.csv", out_dir), work)
        assert "inside the model" in msg, msg
    train_from_path(
        "churn.yaml", "binary.csv", "models/churn"
    )  # the model root itself: a new version, as ever
    train_from_path("churn.yaml", "binary.csv", "models/other")  # a sibling root


def test_a_report_never_goes_inside_a_model(work: Path) -> None:
    msg = _refused(lambda: evaluate_report("models/churn", "binary.csv", _version(work) / "report"), work)
    assert "inside the model" in msg, msg


def test_a_parquet_file_with_a_column_twice_is_refused_when_read(work: Path, tmp_path: Path) -> None:
    t = pa.Table.from_arrays(
        [pa.array([1, 2, 3, 4]), pa.array([5, 6, 7, 8]), pa.array([1, 0, 1, 0])], names=["a", "a", "y"]
    )
    pq.write_table(t, tmp_path / "d.parquet")
    with pytest.raises(MlprodError, match=r"d.parquet: column 'a' appears 2 times"):
        read_table(tmp_path / "d.parquet")
    with pytest.raises(MlprodError, match="appears 2 times"):
        split_file(tmp_path / "d.parquet", tmp_path / "tr.csv", tmp_path / "te.csv", 0.5, 0)
    r = run_cli(
        *["data", "split", str(tmp_path / "d.parquet"), "--train-out", str(tmp_path / "tr.csv")],
        *["--test-out", str(tmp_path / "te.csv"), "--test-size", "0.5"],
    )
    assert r.returncode == 2 and "appears 2 times" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "d.parquet"
    ]  # nothing written, no record, no temporary
