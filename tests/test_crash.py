"""Crash safety: SIGKILL at random moments during train, predict (one process, and forked workers) and report.

Each operation runs in a forked child (its own process group, as a scheduler's job would be) that repeats it in
a loop, so a kill at a random time always lands inside some run. After every kill: nothing partial is visible
(hidden temporaries `.NAME.*.tmp` / `.tmp-*` are allowed), what was there before is byte-identical or replaced
whole, no process of the job is left, and at the end the next run succeeds and sweeps the hidden temporaries
the killed runs left.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from bad_inputs import figures

from mlprod.bundle import load_bundle
from mlprod.io import sha256_file
from mlprod.journal import journal_problems
from mlprod.registry import read_aliases
from mlprod.tables import read_table, write_table
from mlprod.verify import verify_files

FIXTURES = Path(__file__).parent / "fixtures"
KILLS = 5  # per operation
CONFIG = {
    "name": "churn",
    "task": "classification",
    "target": "churned",
    "id_col": "customer_id",
    "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 300}},
    "preprocessing": {"scale": True},
}
HIDDEN = re.compile(r"^\.(tmp-\d+-[0-9a-f]+|.+\.\d+-[0-9a-f]+\.tmp|mlprod-report)$")


def files(d: Path) -> dict[str, str]:
    "Every visible file under `d` (relative path -> sha256); hidden temporaries are left out, and listed apart."
    out = {}
    for p in sorted(d.rglob("*")):
        rel = p.relative_to(d)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file():
            out[rel.as_posix()] = sha256_file(p)
    return out


def hidden(d: Path) -> list[str]:
    "The hidden names under `d`; each must look like one of mlprod's temporaries."
    names = [p.name for p in d.rglob(".*")]
    strange = [n for n in names if not HIDDEN.match(n)]
    assert not strange, f"hidden files that are not mlprod temporaries: {strange}"
    return names


def _loop(fn: Callable[[], Any]) -> None:
    "The child: its own process group, then the operation again and again until killed."
    os.setpgid(0, 0)
    try:
        while True:
            fn()
    finally:
        os._exit(1)


def kill_during(
    fn: Callable[[], Any],
    rng: random.Random,
    low: float,
    high: float,
    after: Callable[[], bool] | None = None,
) -> None:
    """Fork a child that repeats `fn`; SIGKILL its whole process group after a random time in [low, high] s,
    counted from when `after()` turns true (e.g. a temporary appeared: the kill lands inside the write)."""
    pid = os.fork()
    if pid == 0:
        _loop(fn)
    os.setpgid(pid, pid)  # as the child does: whichever runs first, the group exists before the kill
    if after is not None:
        deadline = time.monotonic() + 20
        while not after():
            assert time.monotonic() < deadline, "the moment to kill never came"
            time.sleep(0.002)
    time.sleep(rng.uniform(low, high))
    os.killpg(pid, signal.SIGKILL)  # the child and anything it started: workers, a kernel, git
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
        f"the child ended by itself: {status}"
    )
    deadline = time.monotonic() + 5
    while alive(pid):  # the job's other processes (pool workers, a kernel, git) die with it
        assert time.monotonic() < deadline, f"processes of the killed job are still running: {alive(pid)}"
        time.sleep(0.01)


def alive(pgid: int) -> list[int]:
    """The processes of the job `pgid` still running (zombies waiting for init to reap them do not count): its
    process group, and the Jupyter kernels it started. Jupyter starts a kernel in a session of its own, so a kill
    of the group misses it; the kernel sees its parent gone (JPY_PARENT_PID) within a second and exits. Until it
    has, it may still write into the run's hidden folder."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
            kernel = (
                int(group) != pgid
                and f"JPY_PARENT_PID={pgid}\0".encode() in (stat.parent / "environ").read_bytes()
            )
        except (OSError, ValueError):
            continue  # gone meanwhile
        if (int(group) == pgid or kernel) and state != "Z":
            found.append(int(stat.parent.name))
    return found


def duration(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@pytest.fixture
def churn(tmp_path: Path) -> Path:
    "A folder with the config and the training data."
    (tmp_path / "churn.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    shutil.copyfile(FIXTURES / "binary.csv", tmp_path / "train.csv")
    return tmp_path


@pytest.fixture(scope="module", autouse=True)
def _figures(request: pytest.FixtureRequest) -> Iterator[None]:
    "Count this file's runs into the figures `make test` prints, and time it."
    with figures.register(request.config, "tests/test_crash.py"):
        yield


# --- train ---------------------------------------------------------------------------------------------------


@figures.passed_only
def test_sigkill_during_train_loses_nothing(churn: Path) -> None:
    from mlprod.train import train_from_path

    rng = random.Random(9)
    root = churn / "models" / "churn"
    train = lambda: train_from_path(churn / "churn.yaml", churn / "train.csv", root)  # noqa: E731
    with figures.timed("crash"):
        first = train()
        earlier = files(first)
        t = duration(train)  # one whole training, imports warm
        landed = 0
        saving = lambda: any(p.name.startswith(".tmp-") for p in root.iterdir())  # noqa: E731
        for k in range(KILLS):  # every other kill: at a random moment of the save itself
            kill_during(train, rng, 0.0, 0.02, after=saving) if k % 2 else kill_during(train, rng, 0.0, 2 * t)
            figures.count_by("crash.kills", "train")
            names = hidden(root)
            landed += any(n.startswith(".tmp-") for n in names)
            assert files(first) == earlier, "the earlier version changed"
            aliases = read_aliases(root)  # always parses
            versions = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            assert aliases["latest"] in versions
            assert {p.name for p in root.iterdir() if not p.name.startswith(".")} == {
                *versions,
                "aliases.json",
                "history.jsonl",  # mlprod.journal: its applied lines agree with aliases.json
            }
            assert journal_problems(root, aliases) == []
            for v in versions:  # every visible version is whole
                verify_files(root / v, model_bytes=False)
        last = train()  # the next run succeeds
        assert read_aliases(root)["latest"] == last.name and load_bundle(root).version == last.name
        assert not [n for n in hidden(root) if n.startswith(".tmp-")], "dead runs' temporaries were not swept"
    assert landed >= 1, "no kill landed inside a save: the test did not test anything"


# --- predict -------------------------------------------------------------------------------------------------


@pytest.fixture
def scored(churn: Path) -> dict[str, Any]:
    "A saved model, a 6,000-row input, an earlier output (without probabilities) and the new one, as reference."
    from mlprod.predict import predict_from_path
    from mlprod.train import train_from_path

    version = train_from_path(churn / "churn.yaml", churn / "train.csv", churn / "models" / "churn")
    df = read_table(FIXTURES / "binary.csv")  # (300, 8)
    big = df.loc[df.index.repeat(20)].reset_index(drop=True)  # (6000, 8)
    big["customer_id"] = [f"c{i:05d}" for i in range(len(big))]
    write_table(big, churn / "big.csv")
    out_dir = churn / "out"
    out_dir.mkdir()
    predict_from_path(version, churn / "big.csv", out_dir / "p.jsonl")  # the earlier output
    # The reference in the same chunks as the runs below: a model's last bits can depend on the chunk's size
    # (its arithmetic on a short chunk), and floats are written exactly.
    predict_from_path(version, churn / "big.csv", churn / "reference.jsonl", proba=True, chunk_rows=500)
    return {
        "version": version,
        "input": churn / "big.csv",
        "out": out_dir / "p.jsonl",
        "old": (out_dir / "p.jsonl").read_bytes(),
        "new": (churn / "reference.jsonl").read_bytes(),
    }


def _predict_fn(s: dict[str, Any], workers: int) -> Callable[[], Any]:
    "predict_from_path in `workers` processes (mlprod.batch.run_local's forked pool when more than one)."
    from mlprod.predict import predict_from_path

    return lambda: predict_from_path(
        s["version"], s["input"], s["out"], proba=True, chunk_rows=500, workers=workers, quiet=True
    )


@pytest.mark.parametrize("workers", [1, 2])
@figures.passed_only
def test_sigkill_during_predict_loses_nothing(scored: dict[str, Any], workers: int) -> None:
    out: Path = scored["out"]
    rng = random.Random(workers)
    predict = _predict_fn(scored, workers)
    with figures.timed("crash"):
        t = duration(predict)
        assert out.read_bytes() == scored["new"]  # the same bytes for any number of workers
        out.write_bytes(scored["old"])  # back to the earlier output
        replaced = left = 0
        writing = lambda: any(p.name.startswith(".p.jsonl.") for p in out.parent.iterdir())  # noqa: E731
        for k in range(KILLS):  # every other kill: while the output is being written
            if k % 2:
                kill_during(predict, rng, 0.0, 0.5 * t, after=writing)
            else:
                kill_during(predict, rng, 0.0, 1.5 * t)
            figures.count_by("crash.kills", f"predict ({workers} worker{'s' if workers > 1 else ''})")
            left += bool(hidden(out.parent))
            visible = sorted(p.name for p in out.parent.iterdir() if not p.name.startswith("."))
            assert set(visible) <= {"p.jsonl", "p.jsonl.lineage.json"}, visible
            data = out.read_bytes()
            assert data in (scored["old"], scored["new"]), "a partial or mixed output is visible"
            replaced += data == scored["new"]
        predict()  # the next run succeeds, and sweeps what the killed runs left
        assert out.read_bytes() == scored["new"]
        stale = [p.name for p in out.parent.iterdir() if p.name.startswith(".")]
        assert not stale, f"dead runs' temporaries were not swept: {stale}"
    assert left >= 1, "no kill left a temporary: the sweep was not tested"
    figures.count("crash.replaced_whole", n=replaced)


# --- report --------------------------------------------------------------------------------------------------

TEMPLATE = {
    "cells": [
        {
            "id": "parameters",
            "cell_type": "code",
            "metadata": {"tags": ["parameters"]},
            "source": 'out_dir = "."\nstamp = ""',
            "outputs": [],
            "execution_count": None,
        },
        {
            "id": "work",
            "cell_type": "code",
            "metadata": {},
            "source": "import time\nfrom pathlib import Path\n\nfrom mlprod.io import write_json\n\n"
            "print('run', stamp)\ntime.sleep(0.2)\n"
            "write_json(Path(out_dir) / 'metrics.json', {'stamp': stamp})",
            "outputs": [],
            "execution_count": None,
        },
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def _report_tokens(out_dir: Path) -> set[str]:
    "The run token each visible file of a report folder carries (one token when the set is whole)."
    tokens = set()
    tokens.add(json.loads((out_dir / "metrics.json").read_text())["stamp"])
    for name in ("report.ipynb", "report.html"):
        text = (out_dir / name).read_text()
        tokens |= set(re.findall(r"run (tok-\w+)", text))
    for p in out_dir.glob("*.lineage.json"):
        tokens.add(json.loads(p.read_text())["params"]["stamp"])
    return tokens


@figures.passed_only
def test_sigkill_during_report_loses_nothing(tmp_path: Path) -> None:
    "Through run_report, the machinery of `mlprod report evaluate|compare`, with a tiny template (a kernel, 1 cell)."
    import nbformat

    from mlprod.report import run_report

    templates = tmp_path / "templates"
    templates.mkdir()
    nbformat.write(nbformat.from_dict(TEMPLATE), templates / "crash.ipynb")
    out_dir = tmp_path / "report"
    rng = random.Random(3)
    counter = iter(range(10**6))

    def report(token: str | None = None) -> Any:
        return run_report(
            "crash",
            {"stamp": token or f"tok-{next(counter)}x{os.getpid()}"},
            out_dir,
            templates=templates,
            progress=False,
        )

    with figures.timed("crash"):
        t = duration(lambda: report("tok-earlier"))
        earlier = files(out_dir)
        assert _report_tokens(out_dir) == {"tok-earlier"}
        for _ in range(KILLS):
            kill_during(report, rng, 0.1 * t, 0.9 * t)
            figures.count_by("crash.kills", "report")
            hidden(out_dir)
            now = files(out_dir)
            assert set(now) == set(earlier), f"the report's files are not all there: {sorted(now)}"
            assert len(_report_tokens(out_dir)) == 1, "files of two different runs are mixed"
        report("tok-last")  # the next run succeeds
        assert _report_tokens(out_dir) == {"tok-last"}
        stale = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
        assert not stale, f"dead runs' hidden folders were not swept: {stale} (this process: {os.getpid()})"
