"""A very wide CSV: 100,000 columns (a header and a few rows), with and without an id column, is read in seconds by
`read_table` and by `mlprod predict`. Reading an id column as written once cost a per-column dictionary of missing
value spellings over every other column (~20 s of CPU for 100,000 columns); these tests hold the reader to a
generous bound of CPU seconds (what a loaded machine does not inflate) and of wall seconds (nothing hangs), and to
reading the ids as written all the same.
"""

from __future__ import annotations

import csv
import json
import resource
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from bad_inputs import figures

from mlprod.tables import read_table
from mlprod.train import train_from_path

from conftest import CHURN_CONFIG, FIXTURES, run_cli

WIDE = 100_000  # columns in the file
ROWS = 3
CPU_BOUND = 10.0  # CPU seconds of the read, or of the command's processes (about 2-6 s; before: 15-20 s)
WALL_BOUND = 100.0  # wall seconds: nothing hangs (a load of 12 on 2 cores made 5 s of CPU 50 s)
IDS = ["007", "", "NA"]  # an id as written: leading zeros, an empty field, a spelling of missing elsewhere


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def _numbers(n_rows: int, n_cols: int) -> list[list[str]]:
    "(n_rows, n_cols) decimal texts, seeded."
    values = np.random.default_rng(0).random((n_rows, n_cols)).round(3)  # (n_rows, n_cols)
    return [[repr(float(v)) for v in row] for row in values]


def _wide_table(tmp_path: Path, with_id: bool) -> Path:
    "WIDE columns: (id,) f0, f1, ...; f0 of the second row is NA (missing), the id column's texts are IDS."
    n = WIDE - with_id
    rows = _numbers(ROWS, n)
    rows[1][0] = "NA"
    if with_id:
        rows = [[i, *row] for i, row in zip(IDS, rows, strict=True)]
    header = (["id"] if with_id else []) + [f"f{j}" for j in range(n)]
    return _write(tmp_path / f"wide{'_id' if with_id else ''}.csv", header, rows)


@pytest.mark.parametrize("with_id", [True, False], ids=["id", "no-id"])
@figures.passed_only
def test_a_100k_column_csv_is_read_by_read_table_in_seconds(tmp_path: Path, with_id: bool) -> None:
    path = _wide_table(tmp_path, with_id)
    t0, cpu0 = time.perf_counter(), time.process_time()
    df = read_table(path, ids=["id"] if with_id else [])
    took, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert df.shape == (ROWS, WIDE)
    assert cpu < CPU_BOUND and took < WALL_BOUND, (
        f"read_table: {cpu:.1f} s CPU, {took:.1f} s for {WIDE:,} columns"
    )
    if with_id:
        assert df["id"].tolist() == IDS  # as written: never 7, never missing
    assert df["f0"].dtype == np.float64 and df["f0"].isna().tolist() == [
        False,
        True,
        False,
    ]  # NA is missing here
    assert df["f1"].dtype == np.float64
    figures.hostile("hangs", "wide_csv_100k", runs=1)


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    "A churn model (id column customer_id) trained on the fixture."
    d = tmp_path_factory.mktemp("wide_model")
    (d / "churn.yaml").write_text(yaml.safe_dump(CHURN_CONFIG), encoding="utf-8")
    return train_from_path(d / "churn.yaml", FIXTURES / "binary.csv", d / "models" / "churn")


def _wide_input(tmp_path: Path, with_id: bool) -> Path:
    "The fixture's first rows (customer ids IDS; with_id=False: no id column) and WIDE columns in all."
    base = read_table(FIXTURES / "binary.csv", ids=["customer_id"]).head(ROWS).drop(columns="churned")
    base["customer_id"] = IDS
    if not with_id:
        base = base.drop(columns="customer_id")
    n = WIDE - len(base.columns)
    header = [*base.columns, *(f"f{j}" for j in range(n))]
    texts = base.astype(str).to_numpy().tolist()  # (ROWS, n_model_columns)
    rows = [[*a, *b] for a, b in zip(texts, _numbers(ROWS, n), strict=True)]
    return _write(tmp_path / f"wide{'_id' if with_id else ''}.csv", header, rows)


def _children_cpu() -> float:
    "CPU seconds (user + system) of this process's children that have ended, and of theirs."
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@pytest.mark.slow  # 7-15 s each on the loaded machine (make test-slow); the read_table tests run in make test
@pytest.mark.parametrize("with_id", [True, False], ids=["id", "no-id"])
@figures.passed_only
def test_a_100k_column_csv_is_predicted_or_refused_by_the_command_in_seconds(
    churn: Path, tmp_path: Path, with_id: bool
) -> None:
    src = _wide_input(tmp_path, with_id)
    with open(src, newline="", encoding="utf-8") as f:
        assert len(next(csv.reader(f))) == WIDE
    out = tmp_path / "out" / "p.jsonl"
    t0, cpu0 = time.perf_counter(), _children_cpu()
    r = run_cli("predict", "--model-dir", str(churn), "--input", str(src), "--output", str(out), "--quiet")
    took, cpu = (
        time.perf_counter() - t0,
        _children_cpu() - cpu0,
    )  # the command, its workers: start-up included
    assert cpu < CPU_BOUND and took < WALL_BOUND, (
        f"mlprod predict: {cpu:.1f} s CPU, {took:.1f} s for {WIDE:,} columns"
    )
    if with_id:
        assert r.returncode == 0, r.stderr[-2000:]
        got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [g["customer_id"] for g in got] == IDS  # each id as written
        assert all(g["prediction"] in (0, 1) for g in got)
    else:  # the model's id column is missing: one line, exit 2, nothing written
        assert r.returncode == 2, r.stderr[-2000:]
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "missing column: customer_id" in lines[0], r.stderr[-2000:]
        assert not out.parent.exists() or not any(out.parent.iterdir())
    figures.hostile("hangs", "wide_csv_100k", runs=1)
