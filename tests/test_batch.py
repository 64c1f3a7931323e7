"""batch: the local engine gives the same bytes for any number of workers, in every format; a bad row fails the
whole run with its row and leaves no file; the Dask engine agrees with the local one; the progress bar shows only
on a terminal, and `--quiet` silences it there."""

from __future__ import annotations

import gzip
import os
import pty
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlprod.chunks
from mlprod.batch import run_dask, run_local
from mlprod.bundle import save_bundle
from mlprod.errors import MlprodError, SchemaError
from mlprod.predict import Predictor, predict_from_path
from mlprod.tables import iter_table, read_table, write_table
from mlprod.train import train_from_data

FIXTURES = Path(__file__).parent / "fixtures"
MLPROD = str(Path(sys.executable).parent / "mlprod")
CHURN = {
    "name": "churn",
    "task": "classification",
    "target": "churned",
    "id_col": "customer_id",
    "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500}},
    "preprocessing": {"scale": True},
}
FOREST = {  # n_jobs=2: the workers must still run one thread each, and give the same bytes
    **CHURN,
    "name": "churn_rf",
    "estimator": {
        "class": "sklearn.ensemble.RandomForestClassifier",
        "params": {"n_estimators": 10, "max_depth": 5, "random_state": 0, "n_jobs": 2},
    },
}
CHUNK = 60  # rows per chunk: the 300-row fixture makes 5 chunks


@pytest.fixture(scope="module")
def binary() -> pd.DataFrame:
    return read_table(FIXTURES / "binary.csv").drop(columns="churned")  # (300, 7)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, binary: pd.DataFrame) -> dict[str, Path]:
    "Saved bundles (version folders): a logistic regression pipeline and a small random forest."
    train = read_table(FIXTURES / "binary.csv")
    root = tmp_path_factory.mktemp("models")
    return {
        cfg["name"]: save_bundle(train_from_data(cfg, train), root / cfg["name"]) for cfg in (CHURN, FOREST)
    }


@pytest.fixture(scope="module")
def predictors(models: dict[str, Path]) -> dict[str, Predictor]:
    return {name: Predictor.load(version) for name, version in models.items()}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, binary: pd.DataFrame) -> dict[str, Path]:
    "The fixture's rows in every input format."
    d = tmp_path_factory.mktemp("inputs")
    return {
        name: write_table(binary, d / f"rows.{name}")
        for name in ("csv", "csv.gz", "jsonl", "jsonl.gz", "parquet")
    }


def _same_predictions(got: pd.DataFrame, want: pd.DataFrame) -> None:
    "Same rows, ids and predictions; probabilities equal to 1e-9 (text round trip)."
    assert list(got.columns) == list(want.columns)
    assert got["customer_id"].tolist() == want["customer_id"].tolist()
    assert got["prediction"].tolist() == want["prediction"].tolist()
    for c in [c for c in want.columns if c.startswith("proba_")]:
        np.testing.assert_allclose(got[c].to_numpy(float), want[c].to_numpy(float), rtol=0, atol=1e-9)


# --- the same bytes for any number of workers ---------------------------------------------------------

PAIRS = [  # (input, output): every input format once, every output format once, gzip both ways
    ("csv", "jsonl"),
    ("csv.gz", "parquet"),
    ("jsonl", "csv"),
    ("jsonl.gz", "csv.gz"),
    ("parquet", "jsonl.gz"),
]


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_same_bytes_for_any_number_of_workers(
    tmp_path: Path,
    predictors: dict[str, Predictor],
    inputs: dict[str, Path],
    binary: pd.DataFrame,
    src: str,
    dst: str,
) -> None:
    predictor = predictors["churn"]
    outs = {}
    for n in (1, 2, 3):
        out = tmp_path / f"w{n}" / f"p.{dst}"
        assert (
            run_local(predictor, inputs[src], out, proba=True, chunk_rows=CHUNK, workers=n, quiet=True) == 300
        )
        outs[n] = out.read_bytes()
    assert outs[1] == outs[2] == outs[3]
    _same_predictions(read_table(tmp_path / "w2" / f"p.{dst}"), predictor.predict(binary, proba=True))
    assert sorted(os.listdir(tmp_path / "w3")) == [f"p.{dst}"]  # no temporary file left


def test_forest_with_n_jobs_same_bytes_and_model_restored(
    tmp_path: Path, predictors: dict[str, Predictor], inputs: dict[str, Path], binary: pd.DataFrame
) -> None:
    predictor = predictors["churn_rf"]
    outs = [
        run_local(predictor, inputs["csv"], tmp_path / f"{n}.jsonl", True, CHUNK, n, True)
        and (tmp_path / f"{n}.jsonl")
        for n in (1, 2)
    ]
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert (
        predictor.model.named_steps["model"].n_jobs == 2
    )  # one thread during the run, the model as it was after
    _same_predictions(read_table(outs[1]), predictor.predict(binary, proba=True))


def test_quoted_newlines_and_blank_lines_chunk_like_the_whole_file(
    tmp_path: Path, predictors: dict[str, Predictor], binary: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    "CSV rows end at newlines outside quotes, wherever the reads cut the file; blank lines are not rows."
    df = binary.copy()
    df["city"] = df["city"].where(df.index % 7 != 3, 'new\n"york", ny')  # a quoted field with a newline
    text = df.to_csv(index=False, lineterminator="\n").splitlines(keepends=True)
    text[50:50] = ["\n", "\n"]  # two blank lines
    path = tmp_path / "tricky.csv"
    path.write_text("".join(text), encoding="utf-8")
    whole = pd.read_csv(path)
    monkeypatch.setattr(
        mlprod.chunks, "_BLOCK", 97
    )  # read in 97-byte blocks: cuts inside quotes, rows, the header
    for rows in (1, 5, CHUNK, 1000):
        chunks = list(iter_table(path, chunk_rows=rows))
        assert all(len(c) <= rows for c in chunks)
        # the same values; a chunk's dtypes are its own (a chunk with no city at all has no text in it)
        pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole, check_dtype=False)
    predictor = predictors["churn"]
    outs = {n: tmp_path / f"{n}.csv" for n in (1, 3)}
    for n, out in outs.items():
        run_local(predictor, path, out, proba=True, chunk_rows=CHUNK, workers=n, quiet=True)
    assert outs[1].read_bytes() == outs[3].read_bytes()
    _same_predictions(read_table(outs[3]), predictor.predict(whole, proba=True))


# --- a bad row fails the whole run -------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("fmt", ["csv", "jsonl.gz"])
def test_bad_row_in_a_later_chunk_fails_the_whole_run(
    tmp_path: Path, models: dict[str, Path], binary: pd.DataFrame, fmt: str, workers: int
) -> None:
    "Row 250 (in the last chunk) cannot be a number: the run fails naming it, and writes nothing."
    text = binary["income"].map(lambda v: None if pd.isna(v) else str(v))  # JSON: income as text everywhere
    bad = binary.assign(income=text.where(binary.index != 249, "lots"))
    src = write_table(bad, tmp_path / "in" / f"bad.{fmt}")
    # Blank lines in the first chunk: the lines before the bad row are not its row number.
    opener = gzip.open if fmt.endswith(".gz") else open
    with opener(src, "rt", encoding="utf-8") as f:
        lines = f.readlines()
    with opener(src, "wt", encoding="utf-8") as f:
        f.writelines(lines[:10] + ["\n"] * 5 + lines[10:])
    out = tmp_path / "out" / "p.jsonl"
    out.parent.mkdir()
    out.write_bytes(b"an earlier output\n")
    with pytest.raises(SchemaError) as info:
        predict_from_path(models["churn"], src, out, chunk_rows=CHUNK, workers=workers)
    assert str(info.value) == f"{src}: column 'income': row 250: cannot convert 'lots' to a number"
    assert out.read_bytes() == b"an earlier output\n"  # untouched, byte for byte
    assert os.listdir(out.parent) == ["p.jsonl"]  # no partial output, no temporary file, no lineage record
    out.unlink()
    with pytest.raises(SchemaError, match="row 250"):
        predict_from_path(models["churn"], src, out, chunk_rows=CHUNK, workers=workers)
    assert os.listdir(out.parent) == []


class _DiesInWorkers:
    "A predictor whose worker processes die (as if killed) when they reach row 121; the parent never calls it."

    def __init__(self, predictor: Predictor) -> None:
        self._predictor, self._parent, self.model = predictor, os.getpid(), predictor.model

    def predict(self, df: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
        assert os.getpid() != self._parent, "the parent must not predict the chunk again after a death"
        if kwargs["row_offset"] >= 120:
            os._exit(9)
        return self._predictor.predict(df, **kwargs)


def test_a_dead_worker_fails_the_run_without_hanging(
    tmp_path: Path, predictors: dict[str, Predictor], inputs: dict[str, Path]
) -> None:
    out = tmp_path / "p.jsonl"
    out.write_bytes(b"an earlier output\n")
    with pytest.raises(MlprodError, match="a worker process died while predicting rows"):
        run_local(
            _DiesInWorkers(predictors["churn"]), inputs["csv"], out, chunk_rows=CHUNK, workers=2, quiet=True
        )
    assert out.read_bytes() == b"an earlier output\n" and os.listdir(tmp_path) == ["p.jsonl"]


class _NeedsTheCollector:
    "A predictor that refuses to predict where garbage collection is off (a forked worker, or this process)."

    def __init__(self, predictor: Predictor) -> None:
        self._predictor, self.model = predictor, predictor.model

    def predict(self, df: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
        import gc

        if not gc.isenabled():
            raise RuntimeError("garbage collection is off where chunks are predicted")
        return self._predictor.predict(df, **kwargs)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_start_up_pause_of_garbage_collection_ends_before_the_chunks(
    tmp_path: Path, predictors: dict[str, Predictor], inputs: dict[str, Path], workers: int
) -> None:
    "The CLI holds collection off during start-up (mlprod.runtime.pause_gc); no chunk is predicted without it."
    import gc

    from mlprod.runtime import pause_gc, resume_gc

    frozen = gc.get_freeze_count()
    pause_gc()
    try:
        assert not gc.isenabled()
        predictor = _NeedsTheCollector(predictors["churn"])
        out = tmp_path / "p.jsonl"
        assert run_local(predictor, inputs["csv"], out, chunk_rows=CHUNK, workers=workers, quiet=True) == 300
        assert gc.isenabled() and gc.get_freeze_count() > frozen  # start-up's objects frozen, before any fork
    finally:
        resume_gc()
        gc.unfreeze()  # this test process: back as it was


def test_resume_gc_leaves_a_collector_it_did_not_pause_as_it_was() -> None:
    import gc

    from mlprod.runtime import pause_gc, resume_gc

    frozen = gc.get_freeze_count()
    resume_gc()  # nothing paused: nothing to do
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    gc.disable()  # turned off by the caller: neither call turns it on
    try:
        pause_gc()
        resume_gc()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_cli_resumes_collection_for_every_command_but_predict() -> None:
    import gc

    from typer.testing import CliRunner

    from mlprod.cli import app
    from mlprod.runtime import pause_gc, resume_gc

    pause_gc()
    try:
        r = CliRunner().invoke(app, ["settings", "--json"])
        assert r.exit_code == 0, r.output
        assert gc.isenabled()
    finally:
        resume_gc()
        gc.unfreeze()


# --- the Dask engine ---------------------------------------------------------------------------------


def _partitions(binary: pd.DataFrame, folder: Path) -> Path:
    "The fixture's rows split into 3 Parquet partitions."
    folder.mkdir(parents=True)
    for i, part in enumerate(np.array_split(np.arange(len(binary)), 3)):
        write_table(binary.iloc[part], folder / f"part-{i}.parquet")
    return folder


def test_dask_engine_agrees_with_the_local_engine(
    tmp_path: Path,
    models: dict[str, Path],
    predictors: dict[str, Predictor],
    inputs: dict[str, Path],
    binary: pd.DataFrame,
) -> None:
    parts = _partitions(binary, tmp_path / "parts")
    out = run_dask(
        models["churn_rf"],
        parts,
        tmp_path / "pred",
        proba=True,
        workers=2,
        processes=False,
        loader=Predictor.load,
    )
    got = pd.concat([read_table(p) for p in sorted(out.glob("*.parquet"))], ignore_index=True)
    local = tmp_path / "local.parquet"
    run_local(predictors["churn_rf"], inputs["csv"], local, proba=True, chunk_rows=CHUNK, quiet=True)
    _same_predictions(got, read_table(local))  # values: string dtypes may differ (string[pyarrow] vs str)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


# --- the command: progress bar, --quiet, --engine dask ----------------------------------------------


def _start_cli(args: list[str], tty: bool) -> tuple[subprocess.Popen[bytes], int | None]:
    "Start `mlprod ARGS` with stderr on a pipe, or on a pseudo-terminal (returns its reading end)."
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPROD")} | {
        "TERM": "xterm",
        "COLUMNS": "120",
    }
    if not tty:
        return subprocess.Popen(
            [MLPROD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        ), None
    main, sub = pty.openpty()
    proc = subprocess.Popen([MLPROD, *args], stdout=subprocess.PIPE, stderr=sub, env=env)
    os.close(sub)
    return proc, main


def _finish(proc: subprocess.Popen[bytes], main: int | None, timeout: float = 120) -> tuple[int, str, str]:
    "Wait for `proc`; (exit code, stdout, what it wrote to stderr, pipe or terminal)."
    chunks = []
    if main is not None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = os.read(main, 65536)
            except OSError:  # the terminal closed: the process is done
                break
            if not data:
                break
            chunks.append(data)
        os.close(main)
        out, _ = proc.communicate(timeout=timeout)
        err = b"".join(chunks)
    else:
        out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(), err.decode(errors="replace")


@pytest.fixture(scope="module", autouse=True)
def cli_started(
    tmp_path_factory: pytest.TempPathFactory,
    models: dict[str, Path],
    inputs: dict[str, Path],
    binary: pd.DataFrame,
) -> dict[str, tuple[subprocess.Popen[bytes], int | None, Path]]:
    "The command, run three ways in the background from the start (each run is mostly start-up; tests go on)."
    d = tmp_path_factory.mktemp("cli")
    parts = _partitions(binary, d / "parts")
    common = ["--model-dir", str(models["churn"]), "--chunk-rows", str(CHUNK), "--proba"]
    cases = {
        "pipe": (["--input", str(inputs["csv"]), "--output", str(d / "pipe.jsonl")], False),
        "tty_quiet": (["--input", str(inputs["csv"]), "--output", str(d / "quiet.jsonl"), "--quiet"], True),
        "dask": (
            ["--input", str(parts), "--output", str(d / "dask"), "--engine", "dask", "--workers", "1"],
            False,
        ),
    }
    return {
        k: (*_start_cli(["predict", *common, *args], tty), Path(args[3])) for k, (args, tty) in cases.items()
    }


@pytest.fixture(scope="module")
def cli_runs(
    cli_started: dict[str, tuple[subprocess.Popen[bytes], int | None, Path]],
) -> dict[str, tuple[int, str, str, Path]]:
    "{case: (exit code, stdout, stderr, output)} once the runs are done."
    return {k: (*_finish(proc, main), out) for k, (proc, main, out) in cli_started.items()}


def test_progress_bar_is_silent_on_a_pipe(cli_runs: dict[str, tuple[int, str, str, Path]]) -> None:
    code, out, err, path = cli_runs["pipe"]
    assert code == 0, err
    assert err == ""  # nothing at all on stderr: no bar, no warning
    assert out.strip() == f"wrote {path}"
    assert len(read_table(path)) == 300


def test_quiet_silences_the_command_on_a_terminal(cli_runs: dict[str, tuple[int, str, str, Path]]) -> None:
    code, _, err, path = cli_runs["tty_quiet"]
    assert code == 0, err
    assert err == ""  # --quiet: nothing, even on a terminal (where the bar shows otherwise: the next test)
    assert path.read_bytes() == cli_runs["pipe"][3].read_bytes()


def test_progress_bar_on_a_terminal(
    tmp_path: Path, predictors: dict[str, Predictor], inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    "With stderr on a (pseudo-)terminal the bar shows rows done and the rate; with quiet=True, nothing."
    main, sub = pty.openpty()
    os.set_blocking(main, False)
    term = os.fdopen(sub, "w")
    monkeypatch.setattr(sys, "stderr", term)
    monkeypatch.setenv("TERM", "xterm")
    predictor = predictors["churn"]
    shown = {}
    try:
        for quiet in (False, True):
            run_local(predictor, inputs["csv"], tmp_path / f"{quiet}.jsonl", chunk_rows=CHUNK, quiet=quiet)
            term.flush()
            chunks = []
            while True:
                try:
                    chunks.append(os.read(main, 65536))
                except BlockingIOError:
                    break
            shown[quiet] = b"".join(chunks).decode(errors="replace")
    finally:
        term.close()
        os.close(main)
    assert "predicting" in shown[False] and "300/300" in shown[False] and "rows/s" in shown[False]
    assert shown[True] == ""


@pytest.mark.slow  # a local cluster: worker processes start and import pandas, scikit-learn and the model
def test_cli_dask_engine_writes_partitions_like_the_local_engine(
    cli_runs: dict[str, tuple[int, str, str, Path]],
) -> None:
    code, out, err, folder = cli_runs["dask"]
    assert code == 0, err
    assert out.strip() == f"wrote {folder}/ (partitions)"
    got = pd.concat([read_table(p) for p in sorted(folder.glob("*.parquet"))], ignore_index=True)
    _same_predictions(got, read_table(cli_runs["pipe"][3]))
    shutil.rmtree(folder)
