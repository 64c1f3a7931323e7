"""Hostile values: numbers a model cannot take, probabilities out of range, fetch parameters and column types the
writers cannot take, a query that fails while its rows stream, and a full disk under `data split` and `data fetch`.

Each is refused with one `MlprodError` line naming the file (and the column, and a row where there is one): through
the Python function and through the command (exit 2, one line on stderr, no traceback), nothing written, an
earlier output byte-identical and no hidden temporary left.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from bad_inputs import figures
from typer.testing import CliRunner

from mlprod.cli import app
from mlprod.errors import DataError, OutputError, QueryError

from conftest import small_tmpfs

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OLD = "an earlier output: no failure may touch it\n"
FOREST = {
    "name": "churn_forest",
    "task": "classification",
    "target": "churned",
    "id_col": "customer_id",
    "features": ["age", "income", "tenure_months", "score", "city", "plan"],
    "estimator": {
        "class": "sklearn.ensemble.RandomForestClassifier",
        "params": {"n_estimators": 5, "random_state": 0},
    },
    "validation": {"test_size": 0.2},
    "seed": 0,
}
BEYOND_FLOAT32 = ["1e39", "1e308", "-1e39"]  # finite float64s that float32 cannot hold


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), prog_name="mlprod")


def _one_line(r: Any, kind: str, *fragments: str) -> str:
    "The command failed as promised: exit 2, one line of `kind` on stderr naming `fragments`, no traceback."
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code == 2, (r.exit_code, r.stderr)
    assert r.stdout == "", r.stdout
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"mlprod: {kind}: "), r.stderr
    assert "Traceback" not in r.stderr
    for f in fragments:
        assert f in r.stderr, (f, r.stderr)
    return r.stderr


def _snapshot(d: Path) -> dict[str, bytes | None]:
    "Every entry under `d`, hidden temporaries included: files by content, folders as None."
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None) for p in sorted(d.rglob("*"))}


# --- float32 overflow inside a forest ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def forest() -> Iterator[Path]:
    "A folder with a small random forest trained on the churn fixture (models/forest), and its data."
    from mlprod.tables import read_table, write_table
    from mlprod.train import train_from_path

    d = Path(tempfile.mkdtemp(prefix="mlprod-hostile-values-"))
    try:
        frame = read_table(FIXTURES / "binary.csv").head(60)  # (60, 8)
        write_table(frame, d / "data.csv")
        (d / "forest.yaml").write_text(yaml.safe_dump(FOREST, sort_keys=False))
        train_from_path(d / "forest.yaml", d / "data.csv", d / "models" / "forest")
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _with_value(src: Path, dst: Path, value: str, row: int = 5, column: str = "income") -> Path:
    "A copy of the CSV `src` whose data row `row` (1-based) holds `value` in `column`, written as text."
    lines = src.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    dst.write_text("\n".join(lines) + "\n")
    return dst


@pytest.fixture
def run_dir(forest: Path, tmp_path: Path) -> Path:
    "A folder for one run, with an earlier output that no failure may touch."
    (tmp_path / "old.jsonl").write_text(OLD)
    return tmp_path


@pytest.mark.parametrize("value", BEYOND_FLOAT32)
@pytest.mark.parametrize("workers", [1, 2])
@figures.passed_only
def test_predict_from_path_beyond_float32(forest: Path, run_dir: Path, value: str, workers: int) -> None:
    from mlprod.predict import predict_from_path

    inp = _with_value(forest / "data.csv", run_dir / "big.csv", value)
    before = _snapshot(run_dir)
    with pytest.raises(DataError) as info:
        predict_from_path(
            forest / "models" / "forest", inp, run_dir / "old.jsonl", workers=workers, chunk_rows=7
        )
    msg = str(info.value)
    assert "\n" not in msg and str(inp) in msg and "column 'income'" in msg, msg
    assert "row 5" in msg and "'c0004'" in msg and "float32" in msg, msg
    assert _snapshot(run_dir) == before
    figures.hostile("tracebacks", f"predict_from_path beyond float32 {value} workers={workers}")


@pytest.mark.parametrize("value", BEYOND_FLOAT32)
@pytest.mark.parametrize("workers", ["1", "2"])
@figures.passed_only
def test_predict_command_beyond_float32(forest: Path, run_dir: Path, value: str, workers: str) -> None:
    inp = _with_value(forest / "data.csv", run_dir / "big.csv", value)
    before = _snapshot(run_dir)
    r = _cli(
        "predict",
        "--model-dir",
        str(forest / "models" / "forest"),
        "--input",
        str(inp),
        "--output",
        str(run_dir / "old.jsonl"),
        "--workers",
        workers,
        "--quiet",
    )
    _one_line(r, "data error", str(inp), "column 'income'", "row 5", "'c0004'", "float32")
    assert _snapshot(run_dir) == before
    figures.hostile("tracebacks", f"mlprod predict beyond float32 {value} workers={workers}")


@pytest.mark.parametrize("value", [1e39, 1e308, -1e39])
@figures.passed_only
def test_predictor_beyond_float32(forest: Path, value: float) -> None:
    "Predictor.predict on a frame and predict_one on a record: a DataError naming the column and the row."
    from mlprod.predict import Predictor
    from mlprod.tables import read_table

    p = Predictor.load(forest / "models" / "forest")
    df = read_table(forest / "data.csv").head(10)  # (10, 8)
    df.loc[3, "income"] = value
    with pytest.raises(DataError) as info:
        p.predict(df, proba=True)
    msg = str(info.value)
    assert "column 'income'" in msg and "row 4" in msg and "'c0003'" in msg and "float32" in msg, msg
    record = df.iloc[3].to_dict()
    with pytest.raises(DataError) as info:
        p.predict_one(record)
    assert "column 'income'" in str(info.value) and "float32" in str(info.value), info.value
    good = p.predict(df.drop(index=3), proba=True)  # the other rows still predict
    assert len(good) == 9
    figures.hostile("tracebacks", f"Predictor beyond float32 {value}", runs=3)


@pytest.mark.parametrize("value", BEYOND_FLOAT32)
@figures.passed_only
def test_train_beyond_float32_blames_the_data(forest: Path, tmp_path: Path, value: str) -> None:
    "Training a forest on such a value names the data file, the column and the row: not the config."
    from mlprod.train import train_from_path

    data = _with_value(forest / "data.csv", tmp_path / "train.csv", value, row=7)
    root = tmp_path / "models"
    with pytest.raises(DataError) as info:
        train_from_path(forest / "forest.yaml", data, root)
    msg = str(info.value)
    assert str(data) in msg and "column 'income'" in msg and "row 7" in msg and "'c0006'" in msg, msg
    assert "float32" in msg, msg
    r = _cli(
        "train", "--config", str(forest / "forest.yaml"), "--train-data", str(data), "--out-dir", str(root)
    )
    _one_line(r, "data error", str(data), "column 'income'", "row 7", "float32")
    assert not root.exists() or not [p for p in root.iterdir() if not p.name.startswith(".")]
    figures.hostile("tracebacks", f"train beyond float32 {value}", runs=2)


@figures.passed_only
def test_float64_models_take_large_values(forest: Path, tmp_path: Path) -> None:
    "The control: a logistic regression computes in float64; 1e39 is a number to it, not an error."
    from mlprod.predict import predict_from_path
    from mlprod.train import train_from_path

    cfg = FOREST | {
        "name": "churn_logreg",
        "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 300}},
    }
    (tmp_path / "logreg.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    root = train_from_path(tmp_path / "logreg.yaml", forest / "data.csv", tmp_path / "models")
    inp = _with_value(forest / "data.csv", tmp_path / "big.csv", "1e39")
    out = predict_from_path(root, inp, tmp_path / "out.jsonl", workers=1)
    assert len(out.read_text().splitlines()) == 60


@figures.passed_only
def test_missing_value_for_a_model_without_imputation(forest: Path, tmp_path: Path) -> None:
    "impute_numeric: none and a logistic regression, which cannot take NaN: a missing age is named, not a traceback."
    from mlprod.predict import Predictor, predict_from_path
    from mlprod.tables import read_table, write_table
    from mlprod.train import train_from_path

    cfg = FOREST | {
        "name": "churn_no_impute",
        "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 300}},
        "preprocessing": {"impute_numeric": "none", "scale": True},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    full = read_table(forest / "data.csv")
    full = full.dropna(subset=["age", "income", "tenure_months", "score"])  # (n_rows, 8): no value missing
    write_table(full, tmp_path / "full.csv")
    root = train_from_path(tmp_path / "cfg.yaml", tmp_path / "full.csv", tmp_path / "models")
    inp = _with_value(tmp_path / "full.csv", tmp_path / "gap.csv", "", row=3, column="age")
    ident = str(full["customer_id"].iloc[2])
    (tmp_path / "old.jsonl").write_text(OLD)
    before = _snapshot(tmp_path)
    with pytest.raises(DataError) as info:
        predict_from_path(root, inp, tmp_path / "old.jsonl", workers=1)
    msg = str(info.value)
    assert str(inp) in msg and "column 'age'" in msg and "row 3" in msg and repr(ident) in msg, msg
    with pytest.raises(DataError, match="column 'age'"):
        Predictor.load(root).predict_one(read_table(inp).iloc[2].to_dict())
    r = _cli(
        "predict", "--model-dir", str(root), "--input", str(inp), "--output", str(tmp_path / "old.jsonl")
    )
    _one_line(r, "data error", str(inp), "column 'age'", "row 3")
    assert _snapshot(tmp_path) == before
    with pytest.raises(DataError) as info:  # training on it: the data file is named, not the config
        train_from_path(tmp_path / "cfg.yaml", inp, tmp_path / "models")
    assert str(inp) in str(info.value) and "column 'age'" in str(info.value), info.value
    figures.hostile("tracebacks", "a missing value for a model without imputation", runs=4)


# --- probabilities out of range in a predictions file ----------------------------------------------------


def _predictions(d: Path, value: str) -> tuple[Path, Path]:
    "predictions.csv (row 4, id c0003, has proba_1 = `value`) and truth.csv for the same ten ids."
    from mlprod.tables import read_table, write_table

    src = Path(__file__).parent / "bad_inputs" / "rows" / "predictions_good.csv"
    preds = _with_value(src, d / "predictions.csv", value, row=4, column="proba_1")
    write_table(read_table(FIXTURES / "binary.csv").head(10), d / "truth.csv")
    return preds, d / "truth.csv"


BAD_PROBAS = [("1.5", "not a probability"), ("-0.2", "not a probability"), ("nan", ""), ("inf", "")]


@pytest.mark.parametrize(("value", "what"), BAD_PROBAS)
@pytest.mark.parametrize("engine", ["pandas", "sql"])
@figures.passed_only
def test_evaluate_probability_out_of_range(tmp_path: Path, value: str, what: str, engine: str) -> None:
    from mlprod.evaluate import evaluate_from_path

    preds, truth = _predictions(tmp_path, value)
    out = tmp_path / "old.json"
    out.write_text(OLD)
    before = _snapshot(tmp_path)
    kw = {"task": "classification", "id_col": "customer_id", "target_col": "churned", "engine": engine}
    with pytest.raises(DataError) as info:
        evaluate_from_path(preds, truth, out, **kw)
    msg = str(info.value)
    assert "\n" not in msg and str(preds) in msg and "column 'proba_1'" in msg, msg
    assert "row 4" in msg and "'c0003'" in msg and what in msg, msg
    r = _cli(
        "evaluate",
        "--predictions",
        str(preds),
        "--truth",
        str(truth),
        "--output",
        str(out),
        "--task",
        "classification",
        "--id-col",
        "customer_id",
        "--target-col",
        "churned",
        "--engine",
        engine,
    )
    _one_line(r, "data error", str(preds), "column 'proba_1'", "row 4", "'c0003'")
    assert _snapshot(tmp_path) == before
    figures.hostile("tracebacks", f"evaluate proba {value} engine={engine}", runs=2)


# --- data fetch: parameters, column types, a query failing while it streams --------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
@figures.passed_only
def test_fetch_param_not_finite(tmp_path: Path, value: str) -> None:
    from mlprod.query import fetch, parse_value

    sql = tmp_path / "q.sql"
    sql.write_text("SELECT * FROM t WHERE income > $min_income\n")
    out = tmp_path / "old.csv"
    out.write_text(OLD)
    before = _snapshot(tmp_path)
    with pytest.raises(QueryError) as info:
        fetch(sql, out, tables={"t": FIXTURES / "binary.csv"}, params={"min_income": parse_value(value)})
    msg = str(info.value)
    assert "\n" not in msg and str(sql) in msg and "min_income" in msg and "finite" in msg, msg
    r = _cli(
        "data",
        "fetch",
        "--sql",
        str(sql),
        "--table",
        f"t={FIXTURES / 'binary.csv'}",
        "--param",
        f"min_income={value}",
        "--output",
        str(out),
    )
    _one_line(r, "query error", str(sql), "min_income", "finite")
    assert _snapshot(tmp_path) == before
    figures.hostile("tracebacks", f"fetch --param {value}", runs=2)


# (SQL expression, formats it cannot be written to faithfully): refused naming the column and its type
TYPES = [
    ("'\\xAA\\x00'::BLOB", ("csv", "jsonl"), "BLOB"),
    ("INTERVAL 3 DAY", ("csv", "jsonl", "parquet"), "INTERVAL"),
    ("'0101'::BIT", ("csv", "jsonl", "parquet"), "BIT"),
    ("1::UNION(i INTEGER, s VARCHAR)", ("csv", "jsonl", "parquet"), "UNION"),
    ("MAP {'k': 1}", ("csv", "jsonl", "parquet"), "MAP"),
    ("{'a': 1, 'b': 'x'}", ("csv",), "STRUCT"),
    ("[1, 2]", ("csv",), "INTEGER[]"),
    ("[INTERVAL 1 DAY]", ("csv", "jsonl", "parquet"), "INTERVAL[]"),
    ("170141183460469231731687303715884105727::HUGEINT", (), ""),
    ("1::UHUGEINT", (), ""),
    ("uuid()", (), ""),
    ("TIME '12:34:56'", (), ""),
    ("DATE '2020-01-31'", (), ""),
    ("TIMESTAMPTZ '2020-01-01 00:00:00+00'", (), ""),
    ("123.45::DECIMAL(38,2)", (), ""),
    ("'a'::ENUM('a', 'b')", (), ""),
]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize(("expr", "refused", "type_name"), TYPES, ids=[t[0][:30] for t in TYPES])
@figures.passed_only
def test_fetch_column_types(
    tmp_path: Path, expr: str, refused: tuple[str, ...], type_name: str, fmt: str
) -> None:
    from mlprod.query import fetch
    from mlprod.tables import read_table

    sql = tmp_path / "q.sql"
    sql.write_text(f"SELECT i AS n, {expr} AS c FROM range(3) t(i)\n")
    out = tmp_path / f"old.{fmt}"
    out.write_bytes(OLD.encode())
    before = _snapshot(tmp_path)
    if fmt not in refused:  # written: it reads back, three rows
        fetch(sql, tmp_path / f"new.{fmt}")
        assert len(read_table(tmp_path / f"new.{fmt}", allow_empty=True)) == 3
        figures.hostile("tracebacks", f"fetch {expr} to {fmt} (written)")
        return
    with pytest.raises(QueryError) as info:
        fetch(sql, out)
    msg = str(info.value)
    assert "\n" not in msg and str(sql) in msg and "column 'c'" in msg and type_name in msg, msg
    r = _cli("data", "fetch", "--sql", str(sql), "--output", str(out))
    _one_line(r, "query error", str(sql), "column 'c'", type_name)
    assert _snapshot(tmp_path) == before
    figures.hostile("tracebacks", f"fetch {expr} to {fmt} (refused)", runs=2)


LATE_FAILURES = [
    "SELECT CAST(CASE WHEN i < 250000 THEN CAST(i AS VARCHAR) ELSE 'x' || i END AS INTEGER) AS v FROM range(300000) t(i)",
    "SELECT i // (299999 - i) AS v FROM range(300000) t(i)",
]


@pytest.mark.parametrize("query", LATE_FAILURES, ids=["cast", "division_by_zero"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@figures.passed_only
def test_fetch_fails_while_streaming(tmp_path: Path, query: str, fmt: str) -> None:
    "The query fails after the first batches were written: one line, the earlier output intact, no temporaries."
    from mlprod.query import fetch

    sql = tmp_path / "late.sql"
    sql.write_text(f"-- fails late\n{query}\n")
    out = tmp_path / f"old.{fmt}"
    out.write_bytes(OLD.encode())
    before = _snapshot(tmp_path)
    with pytest.raises(QueryError) as info:
        fetch(sql, out, batch_rows=10_000)
    msg = str(info.value)
    assert "\n" not in msg and f"{sql}:2:" in msg, msg
    assert _snapshot(tmp_path) == before
    r = _cli("data", "fetch", "--sql", str(sql), "--output", str(out))
    _one_line(r, "query error", f"{sql}:2:")
    assert _snapshot(tmp_path) == before
    figures.hostile("tracebacks", f"fetch failing while streaming ({query[:12]}) to {fmt}", runs=2)


# --- a full disk under data split and data fetch -----------------------------------------------------------


def _big_table(path: Path, copies: int = 40) -> Path:
    "The churn fixture repeated with fresh ids: about 600 KB of CSV."
    import pandas as pd

    df = pd.read_csv(FIXTURES / "binary.csv", dtype={"customer_id": str})
    big = pd.concat([df] * copies, ignore_index=True)
    big["customer_id"] = [f"c{i:07d}" for i in range(len(big))]
    big.to_csv(path, index=False)
    return path


def _split_args(inp: Path, d: Path) -> list[str]:
    return ["data", "split", str(inp), "--train-out", str(d / "train.csv"), "--test-out", str(d / "test.csv")]


def _fetch_args(inp: Path, d: Path) -> list[str]:
    sql = d.parent / "all.sql"
    sql.write_text("SELECT * FROM t\n")
    return ["data", "fetch", "--sql", str(sql), "--table", f"t={inp}", "--output", str(d / "train.csv")]


def _earlier_outputs(d: Path) -> None:
    for name in ("train.csv", "test.csv"):
        (d / name).write_text(OLD)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    "A 256 KiB tmpfs: a real ENOSPC. Skipped where mounting is not allowed (not root, no CAP_SYS_ADMIN)."
    with small_tmpfs(tmp_path / "disk", "256k") as d:
        yield d


@pytest.mark.parametrize("command", ["split", "fetch"])
@figures.passed_only
def test_disk_full_on_a_small_tmpfs(tmp_path: Path, small_disk: Path, command: str) -> None:
    from mlprod.data import split_file
    from mlprod.query import fetch

    inp = _big_table(tmp_path / "big.csv")
    _earlier_outputs(small_disk)
    before = _snapshot(small_disk)
    args = (_split_args if command == "split" else _fetch_args)(inp, small_disk)
    with pytest.raises(OutputError) as info:
        if command == "split":
            split_file(inp, small_disk / "train.csv", small_disk / "test.csv")
        else:
            fetch(args[3], small_disk / "train.csv", tables={"t": inp})
    msg = str(info.value)
    assert "\n" not in msg and str(small_disk) in msg and os.strerror(errno.ENOSPC) in msg, msg
    assert _snapshot(small_disk) == before
    r = _cli(*args)
    _one_line(r, "output error", str(small_disk), os.strerror(errno.ENOSPC))
    assert _snapshot(small_disk) == before
    figures.hostile("hangs", f"data {command} on a full tmpfs", runs=2)


@pytest.mark.parametrize("command", ["split", "fetch"])
@figures.passed_only
def test_disk_full_injected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    "ENOSPC injected into the table writer (split: once the train part is written): one line, nothing left."
    import mlprod.tables

    inp = _big_table(tmp_path / "big.csv", copies=2)
    d = tmp_path / "out"
    d.mkdir()
    _earlier_outputs(d)
    before = _snapshot(d)
    real = mlprod.tables.TableWriter.write
    calls = {"n": 0}
    fail_at = 2 if command == "split" else 1  # split: the test part, after the train part was written

    def full(self: Any, *a: Any, **k: Any) -> Any:
        calls["n"] += 1
        if calls["n"] >= fail_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *a, **k)

    monkeypatch.setattr(mlprod.tables.TableWriter, "write", full)
    args = (_split_args if command == "split" else _fetch_args)(inp, d)
    r = _cli(*args)
    _one_line(r, "output error", str(d), os.strerror(errno.ENOSPC))
    assert calls["n"] >= fail_at
    assert _snapshot(d) == before
    figures.hostile("hangs", f"data {command} with ENOSPC injected")


def _limit_file_size(limit: int) -> None:
    "In the child, before exec: a write past `limit` bytes fails with EFBIG instead of killing the process."
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("command", ["split", "fetch"])
@figures.passed_only
def test_file_size_limit_in_the_installed_command(tmp_path: Path, command: str) -> None:
    inp = _big_table(tmp_path / "big.csv")
    d = tmp_path / "out"
    d.mkdir()
    _earlier_outputs(d)
    before = _snapshot(d)
    args = (_split_args if command == "split" else _fetch_args)(inp, d)
    exe = Path(sys.executable).parent / "mlprod"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPROD")} | {
        "PYTHONDONTWRITEBYTECODE": "1"
    }
    r = subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        preexec_fn=lambda: _limit_file_size(100_000),  # noqa: PLW1509 (no threads in this child yet)
    )
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("mlprod: output error: "), r.stderr
    assert str(d) in r.stderr and os.strerror(errno.EFBIG) in r.stderr, r.stderr
    assert _snapshot(d) == before
    figures.hostile("hangs", f"data {command} under RLIMIT_FSIZE")


@pytest.mark.parametrize("workers", ["1", "2"])
@figures.passed_only
def test_the_installed_command_prints_no_warning_before_its_one_line(
    forest: Path, run_dir: Path, workers: str
) -> None:
    "NumPy's 'overflow encountered in cast' (and the like) would print lines of its own before mlprod's one line."
    inp = _with_value(forest / "data.csv", run_dir / "big.csv", "1e39")
    args = ["predict", "--model-dir", str(forest / "models" / "forest"), "--input", str(inp)]
    args += ["--output", str(run_dir / "old.jsonl"), "--workers", workers, "--quiet"]
    r = subprocess.run(
        [str(Path(sys.executable).parent / "mlprod"), *args], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("mlprod: data error: "), r.stderr
    figures.hostile("tracebacks", f"no warning before the one line, workers={workers}")
