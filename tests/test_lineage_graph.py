"""Lineage is a graph: each record is read and stored once, and a record of the wrong shape is a DataError."""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from bad_inputs import figures
from typer.testing import CliRunner

from mlprod.cli import app
from mlprod.errors import DataError
from mlprod.lineage import SUFFIX, chain, chain_summary, render, trace, write_lineage

FIXTURE = Path(__file__).parent / "fixtures" / "binary.csv"
CONFIG = """name: churn
task: classification
target: churned
id_col: customer_id
seed: 0
preprocessing: {scale: true}
estimator: {class: sklearn.linear_model.LogisticRegression, params: {max_iter: 500}}
"""
N = 30


@contextmanager
def _within(seconds: int) -> Iterator[None]:
    "Fail (rather than hang the suite) when the block takes longer than `seconds`."

    def _stop(*_: object) -> None:
        raise TimeoutError(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, _stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    "d0.csv .. d29.csv, each (from d2 on) with a record naming the previous two files."
    work = tmp_path_factory.mktemp("graph")
    for i in range(N):
        f = work / f"d{i}.csv"
        shutil.copy(FIXTURE, f)
        if i >= 2:
            inputs = [
                {"path": work / f"d{i - 1}.csv", "role": "data"},
                {"path": work / f"d{i - 2}.csv", "role": "data"},
            ]
            write_lineage(f, "merge", inputs, params={"i": i})
    return work


@figures.passed_only
def test_a_graph_of_30_records_is_walked_once(graph: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(graph)
    last = graph / f"d{N - 1}.csv"
    with _within(20):
        t0 = time.perf_counter()
        stored = chain(last)
        lines = render(trace(last))
        r = CliRunner().invoke(app, ["lineage", str(last)])
        elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, elapsed
    assert r.exit_code == 0, r.output
    assert len(json.dumps(stored)) < 100_000
    # every record of the graph is shown in full once: the rest are references to it
    full = [line for line in r.stdout.splitlines() if "[merge]" in line and "shown above" not in line]
    assert sorted(line.split(": ", 1)[1].split()[0] for line in full) == sorted(
        f"d{i}.csv" for i in range(2, N)
    )
    assert r.stdout.splitlines() == lines
    assert len(lines) < 4 * N
    summary = chain_summary(stored)
    assert summary[-1].startswith(f"-> merge: d{N - 1}.csv")
    assert sum(line.startswith("-> merge") for line in summary) == N - 2
    assert {"data: d0.csv", "data: d1.csv"} <= {line.split(" (")[0] for line in summary}
    figures.hostile("lineage", "a graph of 30 records, each naming the previous two", runs=3)


@figures.passed_only
def test_training_on_the_graph_stores_each_record_once(graph: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(graph)
    (graph / "churn.yaml").write_text(CONFIG)
    with _within(60):
        t0 = time.perf_counter()
        r = CliRunner().invoke(
            app, ["train", "--config", "churn.yaml", "--train-data", f"d{N - 1}.csv", "--out-dir", "models/m"]
        )
        took = time.perf_counter() - t0
    assert r.exit_code == 0, r.output
    meta_file = next((graph / "models" / "m").glob("*/metadata.json"))
    assert meta_file.stat().st_size < 200_000, meta_file.stat().st_size
    assert took < 30
    with _within(20):
        t0 = time.perf_counter()
        shown = CliRunner().invoke(app, ["models", "show", "models/m"])
        walked = CliRunner().invoke(app, ["lineage", str(meta_file.parent)])
        assert time.perf_counter() - t0 < 2.0
    assert shown.exit_code == 0, shown.output
    assert f"-> merge: d{N - 1}.csv" in shown.stdout and "data: d0.csv" in shown.stdout
    assert walked.exit_code == 0, walked.output
    assert "d0.csv" in walked.stdout
    figures.hostile("lineage", "training on a graph of 30 records", runs=3)


def test_an_old_nested_chain_in_metadata_still_reads() -> None:
    old = {
        "format": 1,
        "step": "split",
        "output": {"path": "train.csv", "sha256": "ab" * 32, "rows": 9},
        "inputs": [
            {
                "role": "data",
                "path": "all.parquet",
                "sha256": "cd" * 32,
                "upstream": {
                    "format": 1,
                    "step": "fetch",
                    "output": {"path": "all.parquet", "sha256": "cd" * 32},
                    "inputs": [{"role": "sql", "path": "q.sql", "sha256": "ef" * 32}],
                },
            }
        ],
    }
    assert chain_summary(old) == [
        f"sql: q.sql (sha256 {'ef' * 6})",
        f"-> fetch: all.parquet (sha256 {'cd' * 6})",
        f"-> split: train.csv (sha256 {'ab' * 6}, 9 rows)",
    ]


def _record(inputs: object = (), **over: object) -> dict:
    rec = {"format": 1, "step": "split", "output": {"path": "a.csv"}, "inputs": list(inputs)}  # type: ignore[call-overload]
    return {**rec, **over}


BAD: dict[str, dict[str, bytes]] = {
    "a list": {"a.csv": b"[1, 2]"},
    "inputs a string": {"a.csv": json.dumps(_record(inputs="b.csv")).encode()},
    "no inputs key": {"a.csv": json.dumps({k: v for k, v in _record().items() if k != "inputs"}).encode()},
    "an input without a path": {"a.csv": json.dumps(_record([{"role": "data"}])).encode()},
    "not UTF-8": {"a.csv": b'{"format": 1, "step": "\xff\xfe", "inputs": []}'},
    "naming itself": {"a.csv": json.dumps(_record([{"path": "a.csv", "role": "data"}])).encode()},
    "a cycle": {
        "a.csv": json.dumps(_record([{"path": "b.csv", "role": "data"}])).encode(),
        "b.csv": json.dumps(_record([{"path": "c.csv", "role": "data"}])).encode(),
        "c.csv": json.dumps(_record([{"path": "a.csv", "role": "data"}])).encode(),
    },
}


@pytest.fixture(params=sorted(BAD))
def bad(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    for name, content in BAD[request.param].items():
        (tmp_path / name).write_text("x,y\n1,2\n")
        (tmp_path / f"{name}{SUFFIX}").write_bytes(content)
    return tmp_path / "a.csv", request.param


@figures.passed_only
def test_a_record_of_the_wrong_shape_is_a_data_error(bad: tuple[Path, str]) -> None:
    target, case = bad
    for walk in (chain, trace):
        with _within(10), pytest.raises(DataError) as e:
            walk(target)
        assert SUFFIX in str(e.value) and "\n" not in str(e.value), (case, str(e.value))
    if case in ("a cycle", "naming itself"):
        assert "cycle" in str(e.value) or "itself" in str(e.value)
    figures.hostile("lineage", f"a lineage record: {case}", runs=2)


@figures.passed_only
def test_the_command_says_one_line_for_a_record_of_the_wrong_shape(
    bad: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target, case = bad
    monkeypatch.chdir(target.parent)
    with _within(10):
        r = CliRunner().invoke(app, ["lineage", "a.csv"])
    assert r.exit_code == 2, (case, r.output)
    assert r.stdout == "", (case, r.output)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlprod: data error: ") and SUFFIX in lines[0], (
        case,
        r.stderr,
    )
    assert "Traceback" not in r.output
    figures.hostile("lineage", f"a lineage record: {case}")
