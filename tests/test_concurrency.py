"""Concurrency: the same job started twice at once (cron, a retry) must neither lose nor mix anything.

Two processes are forked and released at the same instant (a shared barrier). Trainings into one model root must
both land as separate, whole versions with aliases.json valid; a promotion racing a training must keep both
changes; two predictions to one output path must leave one of the two complete outputs, never a mix, and beside
it the lineage record of that same run.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from bad_inputs import figures

from mlprod.bundle import load_bundle
from mlprod.io import sha256_file
from mlprod.lineage import read_lineage
from mlprod.registry import list_versions, read_aliases
from mlprod.tables import read_table, write_table
from mlprod.verify import verify_files

FIXTURES = Path(__file__).parent / "fixtures"
TRIALS = 2
LINEAGE_TRIALS = 8  # the output and its record: two runs finishing close together, each trial
CONFIG = {
    "name": "churn",
    "task": "classification",
    "target": "churned",
    "id_col": "customer_id",
    "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 300}},
    "preprocessing": {"scale": True},
}


def _run(barrier: Any, fn: Callable[[], Any], results: Any, key: str) -> None:
    barrier.wait()
    try:
        fn()
        results[key] = "ok"
    except Exception as e:  # an MlprodError is a valid refusal: reported to the parent
        results[key] = f"{type(e).__name__}: {e}"


def at_once(**jobs: Callable[[], Any]) -> dict[str, str]:
    "Run each job in its own forked process, all released at the same moment; {name: 'ok' or the error}."
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(jobs))
    with ctx.Manager() as manager:
        results = manager.dict()
        procs = [ctx.Process(target=_run, args=(barrier, fn, results, k)) for k, fn in jobs.items()]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
            assert p.exitcode == 0, f"a process died: exit {p.exitcode}"
        return dict(results)


@pytest.fixture(scope="module", autouse=True)
def _figures(request: pytest.FixtureRequest) -> Iterator[None]:
    "Count this file's runs into the figures `make test` prints, and time it."
    with figures.register(request.config, "tests/test_concurrency.py"):
        yield


@pytest.fixture
def churn(tmp_path: Path) -> Path:
    (tmp_path / "churn.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    shutil.copyfile(FIXTURES / "binary.csv", tmp_path / "train.csv")
    return tmp_path


@figures.passed_only
def test_two_trainings_at_once_both_land(churn: Path) -> None:
    from mlprod.train import train_from_path

    root = churn / "models" / "churn"
    train = lambda: train_from_path(churn / "churn.yaml", churn / "train.csv", root)  # noqa: E731
    train()  # warm: imports done before the fork, so both start at once
    for trial in range(TRIALS):
        before = {v["version"] for v in list_versions(root)}
        results = at_once(a=train, b=train)
        figures.count("concurrency.trials")
        figures.count("concurrency.trainings", n=2)
        assert results == {"a": "ok", "b": "ok"}, results
        versions = [v["version"] for v in list_versions(root)]
        new = set(versions) - before
        assert len(new) == 2, f"trial {trial}: {len(new)} new versions, not 2"
        aliases = json.loads((root / "aliases.json").read_text())  # valid JSON, the latest of all
        assert aliases["latest"] == max(versions)
        for v in new:
            verify_files(root / v, model_bytes=False)
        assert not [p for p in root.iterdir() if p.name.startswith((".tmp-", ".aliases.json."))]
    assert load_bundle(root).version == max(versions)


@figures.passed_only
def test_promotion_racing_a_training_keeps_both(churn: Path) -> None:
    "`models promote` while a training saves: champion and the new latest both end up in aliases.json."
    from mlprod.registry import promote
    from mlprod.train import train_from_path

    root = churn / "models" / "churn"
    first = train_from_path(churn / "churn.yaml", churn / "train.csv", root)
    for _ in range(TRIALS):
        results = at_once(
            train=lambda: train_from_path(churn / "churn.yaml", churn / "train.csv", root),
            promote=lambda: promote(root, first.name),
        )
        figures.count("concurrency.trials")
        figures.count("concurrency.trainings")
        assert results == {"train": "ok", "promote": "ok"}, results
        aliases = read_aliases(root)
        assert aliases["champion"] == first.name, "the promotion was lost"
        assert aliases["latest"] == max(v["version"] for v in list_versions(root)), "the new version was lost"


@pytest.fixture
def two_outputs(churn: Path) -> dict[str, Any]:
    "A model, a 3,000-row input, and the two different complete outputs two predictions would write."
    from mlprod.predict import predict_from_path
    from mlprod.train import train_from_path

    version = train_from_path(churn / "churn.yaml", churn / "train.csv", churn / "models" / "churn")
    df = read_table(FIXTURES / "binary.csv")  # (300, 8)
    big = df.loc[df.index.repeat(10)].reset_index(drop=True)  # (3000, 8)
    big["customer_id"] = [f"c{i:05d}" for i in range(len(big))]
    write_table(big, churn / "big.csv")
    predict_from_path(version, churn / "big.csv", churn / "plain.jsonl", chunk_rows=300)
    predict_from_path(version, churn / "big.csv", churn / "proba.jsonl", proba=True, chunk_rows=300)
    return {
        "version": version,
        "input": churn / "big.csv",
        "plain": (churn / "plain.jsonl").read_bytes(),
        "proba": (churn / "proba.jsonl").read_bytes(),
    }


@pytest.mark.parametrize("engine", ["predict_from_path", "run_local"])
@figures.passed_only
def test_two_predictions_to_one_output_never_interleave(
    two_outputs: dict[str, Any], tmp_path: Path, engine: str
) -> None:
    from mlprod.predict import Predictor, predict_from_path

    s = two_outputs
    out = tmp_path / "shared" / "p.jsonl"
    out.parent.mkdir()
    if engine == "predict_from_path":
        jobs = {
            "plain": lambda: predict_from_path(s["version"], s["input"], out, chunk_rows=300),
            "proba": lambda: predict_from_path(s["version"], s["input"], out, proba=True, chunk_rows=300),
        }
    else:
        from mlprod.batch import run_local

        predictor = Predictor.load(s["version"])
        jobs = {
            "plain": lambda: run_local(predictor, s["input"], out, chunk_rows=300, workers=2, quiet=True),
            "proba": lambda: run_local(
                predictor, s["input"], out, proba=True, chunk_rows=300, workers=2, quiet=True
            ),
        }
    for _ in range(TRIALS):
        out.unlink(missing_ok=True)
        results = at_once(**jobs)
        figures.count("concurrency.trials")
        figures.count("concurrency.predictions", n=2)
        refused = [k for k, v in results.items() if v != "ok"]
        assert len(refused) <= 1 and all(
            results[k].startswith(("DataError", "MlprodError")) for k in refused
        ), results
        data = out.read_bytes()
        assert data in (s["plain"], s["proba"]), "the output mixes the two runs"
        if refused:  # the one that refused did not win
            assert data == s["proba" if refused == ["plain"] else "plain"]
        assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")], "temporaries left"
        if engine == "predict_from_path":  # run_local writes no record
            _check_record(out, s)


def _check_record(out: Path, s: dict[str, Any]) -> None:
    "The lineage record beside `out` is the record of the run whose output won."
    record = read_lineage(out)
    assert record is not None, "the output has no lineage record"
    assert record["output"]["sha256"] == sha256_file(out), "the lineage record belongs to the other run"
    assert record["params"]["proba"] == (out.read_bytes() == s["proba"]), record["params"]


@pytest.fixture
def slow_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writing a record asks git for the commit; a random delay there (0-0.3 s, in each forked run) makes two runs
    cross between writing an output and writing its record."""
    import random

    import mlprod.lineage

    real_git_state = mlprod.lineage.git_state

    def slow_git_state(*a: Any, **k: Any) -> dict[str, Any]:
        time.sleep(random.SystemRandom().uniform(0, 0.3))  # not `random`: forked runs share its state
        return real_git_state(*a, **k)

    monkeypatch.setattr(mlprod.lineage, "git_state", slow_git_state)


@figures.passed_only
def test_output_and_its_lineage_come_from_one_run(
    two_outputs: dict[str, Any], tmp_path: Path, slow_git: None
) -> None:
    """Two predictions of two inputs of one size (so they finish close together) to one output: the record beside
    the output is always the winner's. Writing a record asks git for the commit; a random delay there (0-0.3 s,
    in each forked run) makes the runs cross between writing the output and writing the record."""
    from mlprod.predict import predict_from_path

    s = two_outputs
    other = tmp_path / "other.csv"
    df = read_table(s["input"])  # (3000, 8)
    df["customer_id"] = "x" + df["customer_id"]
    write_table(df, other)
    predict_from_path(s["version"], other, tmp_path / "other.jsonl", proba=True, chunk_rows=300)
    expected = {s["input"].name: s["proba"], other.name: (tmp_path / "other.jsonl").read_bytes()}

    out = tmp_path / "shared" / "p.jsonl"
    out.parent.mkdir()
    jobs = {
        name: (
            lambda inp=inp: predict_from_path(s["version"], inp, out, proba=True, chunk_rows=300, workers=1)
        )
        for name, inp in (("a", s["input"]), ("b", other))
    }
    for _ in range(LINEAGE_TRIALS):
        results = at_once(**jobs)
        figures.count("concurrency.trials")
        figures.count("concurrency.predictions", n=2)
        assert results == {"a": "ok", "b": "ok"}, results
        record = read_lineage(out)
        assert record is not None, "the output has no lineage record"
        assert record["output"]["sha256"] == sha256_file(out), "the lineage record belongs to the other run"
        (data,) = [Path(i["path"]).name for i in record["inputs"] if i["role"] == "data"]
        assert out.read_bytes() == expected[data], "the output is not the one of the run its record names"
        assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")], "temporaries left"


@figures.passed_only
def test_split_parts_and_their_lineage_come_from_one_run(
    fixtures: Path, tmp_path: Path, slow_git: None
) -> None:
    """Two `data split` runs with other seeds into the same two files: each part and the record beside it always
    come from one run (staged together, moved together under the folder's lock), whichever run wins each part."""

    from mlprod.data import split_file

    source = fixtures / "binary.csv"
    expected = {}  # seed -> (train bytes, test bytes)
    for seed in (1, 2):
        train, test = split_file(
            source, tmp_path / f"train{seed}.csv", tmp_path / f"test{seed}.csv", 0.3, seed
        )
        expected[seed] = (train.read_bytes(), test.read_bytes())
    assert expected[1] != expected[2]

    shared = tmp_path / "shared"
    shared.mkdir()
    outs = (shared / "train.csv", shared / "test.csv")
    jobs = {f"seed{seed}": (lambda seed=seed: split_file(source, *outs, 0.3, seed)) for seed in (1, 2)}
    for _ in range(LINEAGE_TRIALS):
        results = at_once(**jobs)
        figures.count("concurrency.trials")
        assert results == {"seed1": "ok", "seed2": "ok"}, results
        for part, out in enumerate(outs):
            record = read_lineage(out)
            assert record is not None, f"{out.name} has no lineage record"
            assert record["output"]["sha256"] == sha256_file(out), (
                f"{out.name}: the record belongs to the other run"
            )
            assert out.read_bytes() == expected[record["params"]["seed"]][part], (
                f"{out.name} is not its record's run"
            )
        assert not [p.name for p in shared.iterdir() if p.name.startswith(".")], "temporaries left"
