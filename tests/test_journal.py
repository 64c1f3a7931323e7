"""The promotion journal (issue 22): every alias change of a model root is one line of history.jsonl, committed
under the root's lock with the change; a SIGKILL between the two leaves them consistent; racing writers keep a
journal whose every line is a real alias change; `models verify` reports a journal that disagrees."""

from __future__ import annotations

import json
import multiprocessing
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bad_inputs import figures

from mlprod.bundle import Bundle, save_bundle
from mlprod.gates import rollback
from mlprod.journal import HISTORY, applied, journal_problems, noting, read_journal
from mlprod.registry import list_versions, promote, read_aliases

from conftest import churn_bundle


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return churn_bundle()


def _consistent(root: Path) -> list[dict]:
    "The journal agrees with aliases.json, every line is a change to a real version; its applied lines."
    aliases = read_aliases(root)
    assert journal_problems(root, aliases) == []
    lines = applied(read_journal(root), aliases)
    versions = {r["version"] for r in list_versions(root)}
    for x in lines:
        assert x["to"] in versions and x["from"] != x["to"], x
    return lines


def test_every_alias_change_is_one_journal_line(bundle: Bundle, tmp_path: Path) -> None:
    root = tmp_path / "churn"
    v1, v2 = save_bundle(bundle, root), save_bundle(bundle, root)
    promote(root, v1.name)
    with noting(reason="v2 is better"):
        promote(root, v2.name)
    promote(root, v2.name)  # no change: no line
    lines = _consistent(root)
    got = [(x["alias"], x["from"], x["to"], x["reason"]) for x in lines]
    assert got == [
        ("latest", None, v1.name, None),
        ("latest", v1.name, v2.name, None),
        ("champion", None, v1.name, None),
        ("champion", v1.name, v2.name, "v2 is better"),
    ]
    for x in lines:
        assert {"time", "user", "host", "command"} <= set(x) and x["host"] and x["user"]


def test_rollback_returns_to_the_previous_version_and_is_journaled(
    bundle: Bundle, tmp_path: Path, cli
) -> None:
    root = tmp_path / "churn"
    v1, v2, v3 = (save_bundle(bundle, root) for _ in range(3))
    for v in (v1, v2, v3):
        promote(root, v.name)
    assert rollback(root, reason="v3 regressed")[0] == v2.name
    assert rollback(root)[0] == v1.name  # twice: two versions back
    with pytest.raises(Exception, match="no earlier version of 'champion'"):
        rollback(root)
    last = _consistent(root)[-1]
    assert last["rollback"] and (last["from"], last["to"]) == (v2.name, v1.name)
    promote(root, v3.name)
    r = cli("models", "rollback", str(root), "--reason", "again", cwd=tmp_path)
    assert r.returncode == 0 and v1.name in r.stdout, r.stderr
    r = cli("models", "history", str(root), cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.count("\n") == len(_consistent(root)), r.stderr
    assert "(rollback)" in r.stdout.splitlines()[-1] and "reason: again" in r.stdout.splitlines()[-1]


def test_models_verify_reports_a_journal_that_does_not_parse_or_disagrees(
    bundle: Bundle, tmp_path: Path, cli
) -> None:
    root = tmp_path / "churn"
    v1, v2 = save_bundle(bundle, root), save_bundle(bundle, root)
    promote(root, v1.name)
    r = cli("models", "verify", str(root), cwd=tmp_path)
    assert r.returncode == 0 and "journal (3 lines) agrees with aliases.json" in r.stdout, r.stderr
    good = (root / HISTORY).read_text()
    (root / HISTORY).write_text(good + "{not json\n")
    r = cli("models", "verify", str(root), cwd=tmp_path)
    assert r.returncode == 2 and "history.jsonl:4: journal line does not parse" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    (root / HISTORY).write_text(good)
    (root / "aliases.json").write_text(json.dumps({"latest": v2.name, "champion": v2.name}))  # by hand
    r = cli("models", "verify", str(root), cwd=tmp_path)
    assert r.returncode == 2 and "disagree with aliases.json" in r.stderr, r.stderr


_KILL_BETWEEN = """
import os, signal, sys
import mlprod.io
from mlprod.registry import promote
def write_json(path, obj):  # the journal is committed; die before aliases.json is written
    os.kill(os.getpid(), signal.SIGKILL)
mlprod.io.write_json = write_json
promote(sys.argv[1], sys.argv[2])
"""


@figures.passed_only
def test_a_sigkill_between_journal_and_aliases_leaves_them_consistent(bundle: Bundle, tmp_path: Path) -> None:
    root = tmp_path / "churn"
    v1, v2 = save_bundle(bundle, root), save_bundle(bundle, root)
    promote(root, v1.name)
    before = _consistent(root)
    r = subprocess.run(
        [sys.executable, "-c", _KILL_BETWEEN, str(root), v2.name], capture_output=True, timeout=60
    )
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert read_journal(root)[-1]["to"] == v2.name  # the line was written ...
    assert read_aliases(root)["champion"] == v1.name  # ... the change was not
    assert _consistent(root) == before  # so the line is not applied, and nothing disagrees
    promote(root, v2.name)  # the next change drops the unapplied line
    lines = _consistent(root)
    assert len(read_journal(root)) == len(lines) == len(before) + 1
    assert (lines[-1]["from"], lines[-1]["to"]) == (v1.name, v2.name)
    figures.hostile("crash", "sigkill between journal and aliases")


_PROMOTE_FOREVER = """
import sys
from mlprod.registry import promote
root, versions = sys.argv[1], sys.argv[2:]
print("ready", flush=True)
i = 0
while True:
    promote(root, versions[i % len(versions)])
    i += 1
"""


@figures.passed_only
def test_sigkills_during_promote_leave_aliases_and_journal_consistent(bundle: Bundle, tmp_path: Path) -> None:
    root = tmp_path / "churn"
    versions = [save_bundle(bundle, root).name for _ in range(3)]
    kills = 10
    for trial in range(kills):
        p = subprocess.Popen(
            [sys.executable, "-c", _PROMOTE_FOREVER, str(root), *versions], stdout=subprocess.PIPE
        )
        assert p.stdout.readline() == b"ready\n"
        time.sleep(random.Random(trial).uniform(0.05, 0.4))
        p.send_signal(signal.SIGKILL)
        p.wait()
        _consistent(root)
    promote(root, versions[0])
    promote(root, versions[1])
    lines = _consistent(root)
    assert lines[-1]["to"] == versions[1] == read_aliases(root)["champion"]
    figures.hostile("crash", "sigkill during promote", runs=kills)


def _promote_many(root: str, versions: list[str], start: multiprocessing.synchronize.Event, n: int) -> None:
    start.wait()
    for i in range(n):
        promote(root, versions[i % len(versions)])


def _train_many(root: str, start: multiprocessing.synchronize.Event, n: int) -> None:
    b = churn_bundle()
    start.wait()
    for _ in range(n):
        save_bundle(b, root)


@figures.passed_only
def test_two_promotions_racing_a_training_keep_a_true_journal(bundle: Bundle, tmp_path: Path) -> None:
    root = tmp_path / "churn"
    versions = [save_bundle(bundle, root).name for _ in range(2)]
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [
        ctx.Process(target=_promote_many, args=(str(root), versions, start, 30)),
        ctx.Process(target=_promote_many, args=(str(root), versions[::-1], start, 30)),
        ctx.Process(target=_train_many, args=(str(root), start, 4)),
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    lines = _consistent(root)
    assert len(read_journal(root)) == len(lines)  # nothing unapplied: no writer died
    latest = [x for x in lines if x["alias"] == "latest"]
    assert len(latest) == 2 + 4  # every save moved latest once, each journaled once
    champion = [x for x in lines if x["alias"] == "champion"]
    assert champion and all(a["to"] == b["from"] for a, b in zip(champion, champion[1:], strict=False))
    assert champion[-1]["to"] == read_aliases(root)["champion"]
    assert not [p.name for p in root.iterdir() if p.name.startswith(".")]
    figures.hostile("crash", "two promotions racing a training")
