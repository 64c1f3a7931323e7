"""Lineage: fetch -> split -> train -> predict -> evaluate, then `mlprod lineage` walks it back to the SQL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlprod.cli import app
from mlprod.lineage import SUFFIX, trace

SQL = """-- churn modelling table: customers with a known plan
SELECT customer_id, age, income, tenure_months, score, city, plan, churned
FROM customers
WHERE tenure_months >= $min_tenure
ORDER BY customer_id
"""

CONFIG = """name: churn
task: classification
target: churned
id_col: customer_id
seed: 0
preprocessing: {scale: true}
estimator: {class: sklearn.linear_model.LogisticRegression, params: {max_iter: 500}}
"""


def _run(*args: str) -> str:
    r = CliRunner().invoke(app, list(args))
    assert r.exit_code == 0, r.output
    return r.stdout


@pytest.fixture(scope="module")
def chain_dir(
    tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path = Path(__file__).parent / "fixtures"
) -> Path:
    "A scratch project where the whole chain ran through the CLI."
    work = tmp_path_factory.mktemp("chain")
    (work / "sql").mkdir()
    (work / "sql" / "churn.sql").write_text(SQL)
    (work / "churn.yaml").write_text(CONFIG)
    shutil.copy(fixtures_dir / "binary.csv", work / "customers.csv")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        _run(
            "data",
            "fetch",
            "--sql",
            "sql/churn.sql",
            "--table",
            "customers=customers.csv",
            "--param",
            "min_tenure=6",
            "--output",
            "data/churn.parquet",
        )
        _run(
            "data",
            "split",
            "data/churn.parquet",
            "--train-out",
            "data/train.csv",
            "--test-out",
            "data/test.csv",
            "--seed",
            "3",
            "--stratify",
            "churned",
        )
        _run("train", "--config", "churn.yaml", "--train-data", "data/train.csv", "--out-dir", "models/churn")
        _run(
            "predict",
            "--model-dir",
            "models/churn",
            "--input",
            "data/test.csv",
            "--output",
            "out/pred.jsonl",
            "--workers",
            "1",
            "--quiet",
        )
        _run(
            "evaluate",
            "--predictions",
            "out/pred.jsonl",
            "--truth",
            "data/test.csv",
            "--model-dir",
            "models/churn",
            "--output",
            "out/metrics.json",
        )
    return work


def _steps(link) -> list[str]:
    seen, todo = [], [link]
    while todo:
        node = todo.pop(0)
        seen.append((node.step, node.role, node.status))
        todo += node.children
    return seen


def test_lineage_names_every_step_back_to_the_sql(chain_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(chain_dir)
    link = trace("out/metrics.json")
    steps = _steps(link)
    assert link.problems == []
    assert {s for s, _, _ in steps} >= {"evaluate", "predict", "train", "split", "fetch"}
    assert ("sql" in {r for _, r, _ in steps}) and all(st in ("ok", "model") for _, _, st in steps)
    out = _run("lineage", "out/metrics.json")
    for word in ("[evaluate]", "[predict]", "[train]", "[split]", "[fetch]", "sql: sql/churn.sql"):
        assert word in out, word
    show = _run("models", "show", "models/churn")
    assert "churn.sql" in show and "-> fetch: churn.parquet" in show and "-> split: train.csv" in show


def test_every_record_is_relative_and_holds_no_secret(chain_dir: Path) -> None:
    records = list(chain_dir.rglob(f"*{SUFFIX}"))
    assert len(records) == 5  # fetch, split (train and test), predict, evaluate
    for rec in records:
        text = rec.read_text()
        assert str(chain_dir) not in text and '"/' not in text, rec
        for ref in json.loads(text)["inputs"]:
            assert not Path(ref["path"]).is_absolute()
    fetch = json.loads((chain_dir / "data" / f"churn.parquet{SUFFIX}").read_text())
    assert fetch["params"] == {"min_tenure": 6} and fetch["engine"]["name"] == "duckdb"
    meta = json.loads(next((chain_dir / "models" / "churn").glob("*/metadata.json")).read_text())
    assert meta["lineage"]["step"] == "split" and str(chain_dir) not in json.dumps(meta)


def test_an_edited_data_file_is_reported(
    chain_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "copy"
    shutil.copytree(chain_dir, work)
    monkeypatch.chdir(work)
    with open("customers.csv", "a") as f:
        f.write("c9999,40.0,1000.0,12.0,0.1,osaka,basic,1\n")
    problems = trace("out/metrics.json").problems
    assert problems and problems[0].status == "changed" and problems[0].path.endswith("customers.csv")
    r = CliRunner().invoke(app, ["lineage", "out/metrics.json"])
    assert r.exit_code == 2 and "CHANGED" in r.stdout
    assert r.stderr.count("\n") == 1 and "customers.csv" in r.stderr and "changed" in r.stderr


def test_a_reused_pid_does_not_keep_a_dead_runs_temporary(tmp_path: Path) -> None:
    "PIDs come round again: a process that started after a temporary last changed is not the run that made it."
    import os
    import subprocess
    import sys
    import time

    from mlprod.commit import owner_alive

    before = tmp_path / ".p.csv.made-before.tmp"
    before.write_text("")
    time.sleep(2.5)  # a start time is known to within a second: wait well past owner_alive's doubt
    newcomer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        after = tmp_path / ".p.csv.made-after.tmp"
        after.write_text("")
        assert not owner_alive(newcomer.pid, before)  # started after `before` last changed: not its owner
        assert owner_alive(newcomer.pid, after)  # may be its owner: left alone
        assert owner_alive(os.getpid(), before)
    finally:
        newcomer.kill()
        newcomer.wait()
    assert not owner_alive(newcomer.pid, after)  # gone


# -- a chain that starts from a raw export, and a chain with a link lost --------------------------------------


@pytest.fixture(scope="module")
def raw_chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    "A scratch project whose data is a CSV export nobody made with mlprod: split -> train -> predict -> evaluate."
    work = tmp_path_factory.mktemp("raw")
    (work / "churn.yaml").write_text(CONFIG)
    shutil.copy(Path(__file__).parent / "fixtures" / "binary.csv", work / "export.csv")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        _run("data", "split", "export.csv", "--train-out", "data/train.csv", "--test-out", "data/test.csv")
        _run("train", "--config", "churn.yaml", "--train-data", "data/train.csv", "--out-dir", "models/churn")
        _run(
            "predict",
            *("--model-dir", "models/churn", "--input", "data/test.csv", "--output", "out/pred.jsonl"),
            *("--workers", "1", "--quiet"),
        )
        _run(
            "evaluate",
            *("--predictions", "out/pred.jsonl", "--truth", "data/test.csv", "--model-dir", "models/churn"),
            *("--output", "out/metrics.json"),
        )
    return work


def _links(link) -> list:
    out, todo = [], [link]
    while todo:
        node = todo.pop(0)
        out.append(node)
        todo += node.children
    return out


def test_a_raw_source_file_starts_the_chain(raw_chain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(raw_chain)
    link = trace("out/metrics.json")
    assert link.problems == []
    sources = [n for n in _links(link) if n.path == "export.csv"]
    assert sources and all(n.status == "source" for n in sources)  # behind train.csv and test.csv
    r = CliRunner().invoke(app, ["lineage", "out/metrics.json"])
    assert r.exit_code == 0, r.output
    lines = [x for x in r.stdout.splitlines() if "export.csv" in x]
    source = "source file (no record: not made by mlprod)"
    assert lines and all(x.strip().endswith(source) for x in lines), lines
    assert "NO RECORD" not in r.stdout and "missing" not in r.stdout.lower()


def test_a_lost_record_of_a_file_mlprod_made_is_a_missing_link(
    raw_chain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    "data split made train.csv and test.csv: their records gone, the chain is broken there, and says so."
    work = tmp_path / "copy"
    shutil.copytree(raw_chain, work)
    monkeypatch.chdir(work)
    for name in ("train.csv", "test.csv"):
        (work / "data" / f"{name}{SUFFIX}").unlink()
    problems = trace("out/metrics.json").problems
    # test.csv: the predictions' data and the truth; train.csv: the model's training data
    assert {p.path for p in problems} == {"data/train.csv", "data/test.csv"}
    assert all(p.status == "missing" and "split" in p.detail for p in problems), problems
    r = CliRunner().invoke(app, ["lineage", "out/metrics.json"])
    assert r.exit_code == 2 and "MISSING" in r.stdout and "export.csv" not in r.stdout
    assert r.stderr.count("\n") == 1 and "data/" in r.stderr and "missing" in r.stderr
    model = next((work / "models" / "churn").glob("2*"))
    (training,) = trace(model).children
    assert training.role == "training data" and training.status == "missing"


def test_a_record_that_does_not_say_is_worded_neutrally(
    raw_chain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    "A record that does not tell whether its input had a record (written by an older mlprod): neither verdict."
    work = tmp_path / "copy"
    shutil.copytree(raw_chain, work)
    monkeypatch.chdir(work)
    (work / "data" / f"test.csv{SUFFIX}").unlink()
    for rec in work.rglob(f"*{SUFFIX}"):
        record = json.loads(rec.read_text())
        for ref in record["inputs"]:
            ref.pop("made_by", None)
        rec.write_text(json.dumps(record))
    links = [n for n in _links(trace("out/metrics.json")) if n.path in ("data/test.csv", "export.csv")]
    assert {n.path for n in links} == {"data/test.csv", "export.csv"}  # export.csv: behind train.csv
    assert all(n.status == "no record" for n in links), links
    r = CliRunner().invoke(app, ["lineage", "out/metrics.json"])
    lines = [x for x in r.stdout.splitlines() if "data/test.csv " in x or "export.csv" in x]
    assert lines and all("no record" in x and "source file, or" in x for x in lines), lines
    assert "MISSING" not in r.stdout and "not made by mlprod" not in r.stdout and r.exit_code == 0
