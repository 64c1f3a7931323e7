"""A data fetch reads only the tables it was given and writes only its output; a failed one runs nothing twice.

Each case goes through the Python function (`mlprod.query.fetch`) and through the command (`mlprod data fetch`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mlprod.errors import ConfigError, MlprodError, QueryError
from mlprod.io import sha256_file
from mlprod.query import evaluate_sql, fetch
from mlprod.tables import read_table


def _tree(root: Path) -> dict[str, str]:
    "Every file under `root` (hidden ones too) with its sha256: what a run may not change."
    return {
        str(p.relative_to(root)): sha256_file(p) if p.is_file() else "->" + os.readlink(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def _table(tmp_path: Path) -> Path:
    t = tmp_path / "data" / "t.csv"
    t.parent.mkdir(exist_ok=True)
    t.write_text("id,x\n1,10\n2,20\n3,30\n")
    return t


def _run(how: str, cli, tmp_path: Path, sql: Path, out: Path, tables: dict[str, Path], **kw) -> str:
    "Run the fetch one way; return the one-line error (a QueryError / ConfigError from Python, stderr from the CLI)."
    if how == "python":
        with pytest.raises(MlprodError) as info:
            fetch(sql, out, tables, **kw)
        return str(info.value)
    args = ["data", "fetch", "--sql", str(sql), "--output", str(out)]
    for name, path in tables.items():
        args += ["--table", f"{name}={path}"]
    if kw.get("database") is not None:
        args += ["--database", str(kw["database"])]
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    kind = re.match(r"mlprod: [a-z ]+ error: ", r.stderr)
    assert kind, r.stderr
    return r.stderr[kind.end() :].strip()


HOW = ["python", "cli"]


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    "Every test runs in its own folder (the command too): a relative path a query wrote would land there."
    monkeypatch.chdir(tmp_path)


# --- a failed run has no side effects: nothing runs twice ----------------------------------------------------


@pytest.mark.parametrize("how", HOW)
def test_a_failed_fetch_runs_its_earlier_statements_once(how: str, cli, tmp_path: Path) -> None:
    t = _table(tmp_path)
    q = tmp_path / "steps.sql"
    # Running the file a second time to find the line would fail on line 1 (the table exists by then).
    q.write_text(
        "CREATE TEMP TABLE seen AS SELECT id FROM t;\nINSERT INTO seen VALUES (4);\n\nSELECT *\nFROM nowhere\n"
    )
    before = _tree(tmp_path)
    msg = _run(how, cli, tmp_path, q, tmp_path / "out.csv", {"t": t})
    assert msg.startswith(f"{q}:5: ") and "nowhere does not exist" in msg, msg
    assert "already exists" not in msg
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("how", HOW)
def test_a_failing_middle_statement_is_named_by_its_line(how: str, cli, tmp_path: Path) -> None:
    t = _table(tmp_path)
    q = tmp_path / "steps.sql"
    q.write_text(
        "-- a header\nCREATE TEMP TABLE seen (n INTEGER);\n\nINSERT INTO seen\n  VALUES ('not a number');\n"
        "SELECT * FROM seen\n"
    )
    msg = _run(how, cli, tmp_path, q, tmp_path / "out.csv", {"t": t})
    assert msg.startswith(f"{q}:") and "not a number" in msg, msg
    line = int(msg[len(str(q)) + 1 :].split(":", 1)[0])
    assert line in (4, 5), msg  # the statement's first line, or the line DuckDB points at


@pytest.mark.parametrize("how", HOW)
def test_a_copy_before_a_failure_writes_nothing(how: str, cli, tmp_path: Path) -> None:
    t = _table(tmp_path)
    q = tmp_path / "copy.sql"
    q.write_text("COPY (SELECT 1 AS one) TO 'copied.csv';\nSELECT * FROM nowhere\n")
    before = _tree(tmp_path)
    msg = _run(how, cli, tmp_path, q, tmp_path / "out.csv", {"t": t})
    assert msg.startswith(f"{q}:1: "), msg  # the COPY is refused where it stands
    assert not (tmp_path / "copied.csv").exists() and _tree(tmp_path) == before


def test_the_last_statement_must_be_a_query_and_is_checked_first(tmp_path: Path) -> None:
    "A file ending in a command is refused by the parser's word, before any statement runs (the COPY too)."
    t = _table(tmp_path)
    q = tmp_path / "q.sql"
    q.write_text("SELECT 1;\nCREATE TEMP TABLE s AS\n  SELECT * FROM t;\n-- the end\n")
    with pytest.raises(QueryError, match=r"q\.sql:2: the SQL file holds no query"):
        fetch(q, tmp_path / "out.csv", {"t": t})
    assert not (tmp_path / "out.csv").exists()


def test_parameters_reach_the_statements_that_name_them(tmp_path: Path) -> None:
    t = _table(tmp_path)
    q = tmp_path / "q.sql"
    q.write_text(
        "CREATE TEMP TABLE s AS SELECT * FROM t WHERE x > $lo;\nSELECT * FROM s WHERE x < $HI ORDER BY id\n"
    )
    out = fetch(q, tmp_path / "out.csv", {"t": t}, params={"lo": 10, "hi": 30})
    assert read_table(out)["x"].tolist() == [20]
    with pytest.raises(QueryError, match=r"q\.sql:2: .*unused"):  # a parameter no statement takes
        fetch(q, tmp_path / "out2.csv", {"t": t}, params={"lo": 10, "hi": 30, "unused": 1})


# --- a fetch reads only its tables and writes only its output -------------------------------------------------

ESCAPES = {
    "copy_to": "COPY (SELECT * FROM t) TO '{dir}/stolen.csv'",
    "copy_to_relative": "COPY t TO 'stolen.parquet' (FORMAT parquet)",
    "read_csv": "SELECT * FROM read_csv('/etc/passwd')",
    "read_text": "SELECT * FROM read_text('/etc/passwd')",
    "read_blob": "SELECT * FROM read_blob('/etc/hostname')",
    "replacement_scan": "SELECT * FROM '/etc/passwd'",
    "glob": "SELECT * FROM glob('{dir}/*')",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "attach": "ATTACH '{dir}/other.duckdb' AS other",
    "export": "EXPORT DATABASE '{dir}/exported'",
    "set_external_access": "SET enable_external_access = true",
    "set_allowed": "SET allowed_directories = ['/']",
    "reset_allowed": "RESET allowed_paths",
}


# Each escape on line 2, followed by a query; the queries also as the last statement (where only a query can be).
CASES = [(e, False) for e in sorted(ESCAPES)] + [
    (e, True) for e in sorted(ESCAPES) if ESCAPES[e].startswith("SELECT")
]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(
    ("escape", "last"), CASES, ids=[f"{e}-{'last' if last else 'then_select'}" for e, last in CASES]
)
def test_escapes_are_refused_on_their_line(how: str, escape: str, last: bool, cli, tmp_path: Path) -> None:
    t = _table(tmp_path)
    q = tmp_path / "escape.sql"
    stmt = ESCAPES[escape].format(dir=tmp_path)
    q.write_text(f"SELECT 1;\n{stmt}" + ("\n" if last else ";\nSELECT * FROM t\n"))
    out = tmp_path / "out.csv"
    before = _tree(tmp_path)
    msg = _run(how, cli, tmp_path, q, out, {"t": t})
    assert msg.startswith(f"{q}:2: ") and "refused" in msg, msg
    assert "root:" not in msg  # nothing of /etc/passwd
    assert _tree(tmp_path) == before and not out.exists()


@pytest.mark.parametrize("how", HOW)
def test_the_database_is_opened_read_only(how: str, cli, tmp_path: Path) -> None:
    import duckdb

    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS id FROM range(5)")
    q = tmp_path / "write.sql"
    q.write_text("INSERT INTO t VALUES (99);\nSELECT * FROM t\n")
    before = _tree(tmp_path)
    msg = _run(how, cli, tmp_path, q, tmp_path / "out.csv", {}, database=db)
    assert msg.startswith(f"{q}:1: "), msg
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("how", HOW)
def test_tables_given_are_read_by_any_spelling(how: str, cli, tmp_path: Path) -> None:
    "The sandbox lets through the files given, also when the SQL reads them by path (and also via a symlink)."
    t = _table(tmp_path)
    link = tmp_path / "link.csv"
    link.symlink_to(t)
    q = tmp_path / "q.sql"
    q.write_text(f"SELECT a.id, b.x FROM t AS a JOIN read_csv('{t}') AS b USING (id) ORDER BY id\n")
    out = tmp_path / "o" / "out.csv"
    if how == "python":
        fetch(q, out, {"t": link})
    else:
        r = cli("data", "fetch", "--sql", str(q), "--output", str(out), "--table", "t=link.csv", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    assert read_table(out)["x"].tolist() == [10, 20, 30]


# --- the output is never one of the inputs --------------------------------------------------------------------


def _same_file_spellings(tmp_path: Path, t: Path) -> dict[str, Path]:
    link = tmp_path / "link.csv"
    link.symlink_to(t)
    hard = tmp_path / "hard.csv"
    os.link(t, hard)
    return {
        "same": t,
        "dotdot": tmp_path / "data" / ".." / "data" / "t.csv",
        "symlink": link,
        "hardlink": hard,
    }


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("spelling", ["same", "dotdot", "symlink", "hardlink", "relative"])
def test_output_equal_to_a_table_is_refused(how: str, spelling: str, cli, tmp_path: Path) -> None:
    t = _table(tmp_path)
    outs = _same_file_spellings(tmp_path, t)
    q = tmp_path / "q.sql"
    q.write_text("SELECT * FROM t WHERE id > 1\n")
    before = _tree(tmp_path)
    if spelling == "relative":  # the table by absolute path, the output relative to the working folder
        out = Path("./data/../data/t.csv")
    else:
        out = outs[spelling]
    msg = _run(how, cli, tmp_path, q, out, {"t": t})
    assert "is also an input" in msg and "t.csv" in msg, msg
    assert _tree(tmp_path) == before  # the input byte-identical, the links untouched, nothing new


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("which", ["sql", "database"])
def test_output_equal_to_the_sql_or_the_database_is_refused(
    how: str, which: str, cli, tmp_path: Path
) -> None:
    import duckdb

    # Named as tables so that the output's format is known and only the new check can refuse them.
    db = tmp_path / "w.parquet"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS id FROM range(3)")
    q = tmp_path / "q.csv"
    q.write_text("SELECT * FROM t\n")
    out = q if which == "sql" else db
    before = _tree(tmp_path)
    msg = _run(how, cli, tmp_path, q, out, {}, database=db)
    assert "is also an input" in msg, msg
    assert _tree(tmp_path) == before


def test_output_check_comes_before_the_query_runs(tmp_path: Path) -> None:
    "The refusal is a ConfigError raised before DuckDB sees the SQL (a SQL error would otherwise come first)."
    t = _table(tmp_path)
    q = tmp_path / "q.sql"
    q.write_text("SELEC broken\n")
    with pytest.raises(ConfigError, match="is also an input"):
        fetch(q, t, {"t": t})


# --- what the sandbox must keep working -----------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["csv", "csv.gz", "jsonl", "parquet"])
def test_every_table_format_reads_in_the_sandbox(tmp_path: Path, fixtures: Path, ext: str) -> None:
    from mlprod.tables import write_table

    src = read_table(fixtures / "binary.csv")
    table = write_table(src, tmp_path / f"customers.{ext}")
    q = tmp_path / "q.sql"
    q.write_text("SELECT count(*) AS n, max(age) AS oldest FROM customers\n")
    out = fetch(q, tmp_path / "out.csv", {"customers": table})
    got = read_table(out)
    assert got["n"].tolist() == [len(src)] and got["oldest"].tolist() == [src["age"].max()]


def test_the_demo_fetch_and_sql_evaluation_run_in_the_sandbox(cli, tmp_path: Path) -> None:
    "make demo's fetch (sql/iris_train.sql, the table by a relative path), then `evaluate --engine sql` on it."
    from conftest import ROOT

    assert cli("data", "iris", "--output", "raw/iris.csv", cwd=tmp_path).returncode == 0
    sql = ROOT / "sql" / "iris_train.sql"
    r = cli(
        "data",
        "fetch",
        "--sql",
        str(sql),
        "--table",
        "iris_raw=raw/iris.csv",
        "--output",
        "iris.csv",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    iris = read_table(tmp_path / "iris.csv")
    assert len(iris) == 150 and iris["flower_id"].is_monotonic_increasing
    iris[["flower_id", "species"]].rename(columns={"species": "prediction"}).to_csv(
        tmp_path / "pred.csv", index=False
    )
    args = ["--task", "classification", "--id-col", "flower_id", "--target-col", "species", "--engine", "sql"]
    r = cli(
        "evaluate",
        "--predictions",
        "pred.csv",
        "--truth",
        "iris.csv",
        "--output",
        "m.json",
        *args,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "accuracy 1" in r.stdout, r.stdout


def test_sql_evaluation_runs_in_the_sandbox(
    tmp_path: Path, fixtures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    "evaluate_sql reads the predictions and truth it is given (a symlink too) under the same locked connection."
    import pandas as pd

    from mlprod.tables import write_table

    truth = read_table(fixtures / "regression.csv")
    preds = write_table(
        pd.DataFrame({"house_id": truth["house_id"], "prediction": truth["price"] + 1.0}), tmp_path / "p.csv"
    )
    link = tmp_path / "truth.csv"
    link.symlink_to(fixtures / "regression.csv")
    got = evaluate_sql(preds, link, "regression", "house_id", "price")
    assert got["rows"] == len(truth) and abs(got["mae"] - 1.0) < 1e-9
    bad_dir = tmp_path / "sql"
    bad_dir.mkdir()
    (bad_dir / "evaluate_regression.sql").write_text(
        "COPY truth TO 'leak.csv';\nSELECT 'rmse' AS metric, NULL AS label, NULL AS predicted, 0.0 AS value\n"
    )
    with pytest.raises(QueryError, match=r"evaluate_regression\.sql:1: .*refused"):
        evaluate_sql(preds, link, "regression", "house_id", "price", sql_dir=bad_dir)
    assert not (tmp_path / "leak.csv").exists()
