"""batch under a hostile host: the parent of `mlprod predict --workers 2` killed (SIGKILL) or stopped (SIGTERM)
leaves no worker behind and its stderr pipe reaches EOF; SIGTERM and a killed worker end the run at once, never
hanging at exit; a file system that fills up (ENOSPC, or EFBIG under a file size limit) ends every run at once,
exit 2, one line, no temporaries, earlier outputs intact; `--workers` beyond the cores or the memory is capped,
with one line. Every subprocess has a timeout: a hang fails the test instead of blocking it."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest
from bad_inputs import figures

from mlprod.bundle import save_bundle
from mlprod.io import sha256_file
from mlprod.tables import read_table
from mlprod.train import train_from_data

from conftest import small_tmpfs

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
TRIALS = 20  # per signal


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    "A saved tiny logistic regression (version folder)."
    train = read_table(FIXTURES / "binary.csv")
    return save_bundle(train_from_data(CHURN, train), tmp_path_factory.mktemp("models") / "churn")


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    "300,000 rows of the binary fixture (unique ids): enough to keep two workers busy for seconds."
    rows = read_table(FIXTURES / "binary.csv").drop(columns="churned")  # (300, 7)
    df = pd.concat([rows] * 1000, ignore_index=True)  # (300_000, 7)
    df["customer_id"] = [f"c{i:07d}" for i in range(len(df))]
    path = tmp_path_factory.mktemp("big") / "big.csv"
    df.to_csv(path, index=False)
    return path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLPROD")}


def _workers_of(proc: subprocess.Popen[bytes], n: int, timeout: float = 30) -> list[psutil.Process]:
    "The `n` worker processes of `proc`, once they have started (and the first chunks are submitted)."
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = parent.children()
        if len(kids) >= n:
            return kids
        assert proc.poll() is None, f"predict ended before its workers started: {proc.stderr.read()!r}"
        time.sleep(0.02)
    raise AssertionError(f"no {n} workers after {timeout} s")


def _eof_within(fd: int, seconds: float) -> bool:
    "Read `fd` until EOF; True if EOF came within `seconds`."
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if ready and not os.read(fd, 65536):
            return True
    return False


def _alive(procs: list[psutil.Process]) -> list[int]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
@figures.passed_only
def test_parent_killed_leaves_no_worker(model: Path, big: Path, tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "out.csv"
    out.write_text("earlier output\n")
    before = sha256_file(out)
    for trial in range(TRIALS):
        proc = subprocess.Popen(
            [MLPROD, "predict", "--model-dir", str(model), "--input", str(big), "--output", str(out)]
            + ["--workers", "2", "--chunk-rows", "5000", "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=_env(),
            start_new_session=True,
        )
        try:
            workers = _workers_of(proc, 2)
            time.sleep(0.05 * (trial % 5))  # at different moments of the run
            proc.send_signal(sig)
            proc.wait(timeout=10)
            time.sleep(2)
            assert not _alive(workers), f"trial {trial}: workers alive 2 s after {sig.name} of their parent"
            assert _eof_within(proc.stderr.fileno(), 1), f"trial {trial}: no EOF on stderr after {sig.name}"
        finally:
            for p in psutil.Process(proc.pid).children() if proc.poll() is None else []:
                p.kill()
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            proc.stderr.close()
        assert proc.returncode != 0
        assert sha256_file(out) == before, f"trial {trial}: the earlier output changed"
        left = sorted(p.name for p in tmp_path.iterdir())
        if sig == signal.SIGTERM:  # after a SIGKILL, hidden temporaries stay for the next run to sweep
            assert left == ["out.csv"], f"trial {trial}: temporaries left: {left}"
    figures.hostile("orphans", f"{sig.name} of the parent of predict --workers 2", runs=TRIALS)


@figures.passed_only
def test_sigterm_ends_cleanly(model: Path, big: Path, tmp_path: Path) -> None:
    "SIGTERM (a scheduler's stop): exit 143 with one line, no worker left, no temporaries, the earlier output intact."
    out = tmp_path / "out.jsonl"
    out.write_text('{"earlier": 1}\n')
    before = sha256_file(out)
    proc = subprocess.Popen(
        [MLPROD, "predict", "--model-dir", str(model), "--input", str(big), "--output", str(out)]
        + ["--workers", "2", "--chunk-rows", "5000", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        start_new_session=True,
    )
    workers = _workers_of(proc, 2)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = proc.communicate(timeout=10)  # a hang at exit fails here
        time.sleep(0.5)
        assert not _alive(workers)
    finally:
        for p in workers:
            if p.is_running():
                p.kill()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, (proc.returncode, stderr)
    lines = stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlprod:") and "terminated" in lines[0], lines
    assert sha256_file(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
    figures.hostile("hangs", "SIGTERM of predict --workers 2 mid-run", runs=1)


@figures.passed_only
def test_a_killed_worker_ends_the_run_at_once(model: Path, big: Path, tmp_path: Path) -> None:
    "A worker killed at any moment (mid-chunk, mid-result): the run ends within seconds, exit 2, one line."
    out = tmp_path / "out.csv"
    out.write_text("earlier output\n")
    before = sha256_file(out)
    trials = 5
    for trial in range(trials):
        proc = subprocess.Popen(
            [MLPROD, "predict", "--model-dir", str(model), "--input", str(big), "--output", str(out)]
            + ["--workers", "2", "--chunk-rows", "5000", "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=_env(),
            start_new_session=True,
        )
        try:
            workers = _workers_of(proc, 2)
            time.sleep(0.1 + 0.07 * trial)
            workers[trial % 2].kill()
            _, stderr = proc.communicate(timeout=15)  # a hang fails here
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert proc.returncode == 2, (trial, proc.returncode, stderr)
        lines = stderr.decode().splitlines()
        assert len(lines) == 1 and "a worker process died" in lines[0], (trial, lines)
        assert not _alive(workers), trial
        assert sha256_file(out) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"], trial
    figures.hostile("hangs", "a worker of predict --workers 2 killed mid-run", runs=trials)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    "A 2 MiB tmpfs (root may mount one here), unmounted after the test."
    with small_tmpfs(tmp_path / "fs", "2m") as mnt:
        yield mnt


@pytest.mark.parametrize(
    "ext,workers",
    [
        ("csv", 2),
        pytest.param("csv", 1, marks=pytest.mark.slow),  # the other three in make test-slow
        pytest.param("jsonl", 1, marks=pytest.mark.slow),
        pytest.param("jsonl", 2, marks=pytest.mark.slow),
    ],
)
@figures.passed_only
def test_full_disk_ends_with_one_line(model: Path, big: Path, small_fs: Path, workers: int, ext: str) -> None:
    earlier = small_fs / f"earlier.{ext}"
    earlier.write_bytes(b"customer_id,prediction\nc0,1\n" * 100)
    before = sha256_file(earlier)
    out = small_fs / f"out.{ext}"
    for trial in range(3):  # the disk fills at a different chunk each time
        start = time.monotonic()
        r = subprocess.run(
            [MLPROD, "predict", "--model-dir", str(model), "--input", str(big), "--output", str(out)]
            + ["--workers", str(workers), "--chunk-rows", str(3000 + 2000 * trial), "--quiet"],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=60,
        )
        took = time.monotonic() - start
        assert r.returncode == 2, (r.returncode, r.stderr)
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("mlprod:"), lines
        assert lines[0].startswith("mlprod: output error: ") and str(out) in lines[0], lines
        assert "no space left" in lines[0].lower(), lines
        assert took < 40, (
            took
        )  # seconds of start-up and of 50k rows on a loaded 2-core machine; a hang hits the timeout
        assert sorted(p.name for p in small_fs.iterdir()) == [earlier.name]
        assert sha256_file(earlier) == before
    figures.hostile("hangs", f"a full tmpfs under predict --workers {workers} ({ext})", runs=3)


def _file_size_limit(limit: int) -> None:
    "In the child before exec: files may grow to `limit` bytes; beyond, a write fails with EFBIG (no SIGXFSZ)."
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


@pytest.mark.parametrize("workers", [1, 2])
@figures.passed_only
def test_file_size_limit_ends_with_one_line(model: Path, big: Path, tmp_path: Path, workers: int) -> None:
    "RLIMIT_FSIZE (EFBIG at a write, as a quota would): exit 2 within seconds, one line, nothing left behind."
    out = tmp_path / "out.csv"
    out.write_bytes(b"customer_id,prediction\nc0,1\n" * 1000)
    before = sha256_file(out)
    start = time.monotonic()
    r = subprocess.run(
        [MLPROD, "predict", "--model-dir", str(model), "--input", str(big), "--output", str(out)]
        + ["--workers", str(workers), "--chunk-rows", "5000", "--quiet"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        preexec_fn=lambda: _file_size_limit(1 << 20),
    )
    took = time.monotonic() - start
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlprod:"), lines
    assert lines[0].startswith("mlprod: output error: ") and str(out) in lines[0], lines
    assert "too large" in lines[0], lines
    assert took < 40, took
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    assert sha256_file(out) == before
    figures.hostile("hangs", f"a file size limit (EFBIG) under predict --workers {workers}", runs=1)


def _enospc(*args: object, **kwargs: object) -> None:
    import errno

    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("where", ["chunk", "commit", "lineage"])
@figures.passed_only
def test_enospc_at_any_write_ends_with_one_line(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, where: str
) -> None:
    "ENOSPC injected at a chunk's write, at the output's commit or at its lineage record: one line, exit 2."
    from typer.testing import CliRunner

    import mlprod.commit
    import mlprod.io
    import mlprod.lineage
    import mlprod.tables
    from mlprod.cli import app

    out = tmp_path / "out.jsonl"
    out.write_text('{"earlier": 1}\n')
    before = sha256_file(out)
    if where == "chunk":  # the third chunk's write finds the disk full
        real, calls = mlprod.tables.TableWriter.write_encoded, []

        def write_encoded(self: mlprod.tables.TableWriter, text: str, rows: int, head: Any = None) -> None:
            calls.append(rows)
            if len(calls) == 3:
                _enospc()
            real(self, text, rows, head)

        monkeypatch.setattr(mlprod.tables.TableWriter, "write_encoded", write_encoded)
    elif where == "commit":  # the fsync before the rename
        monkeypatch.setattr(mlprod.commit.AtomicFile, "commit", _enospc)
    else:
        monkeypatch.setattr(mlprod.lineage, "write_lineage", _enospc)
    start = time.monotonic()
    r = CliRunner().invoke(
        app,
        ["predict", "--model-dir", str(model), "--input", str(FIXTURES / "binary.csv"), "--output", str(out)]
        + ["--workers", str(workers), "--chunk-rows", "50", "--quiet"],
    )
    assert time.monotonic() - start < 30
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlprod:"), lines
    assert lines[0].startswith("mlprod: output error: ") and str(out) in lines[0], lines
    assert "no space left" in lines[0].lower(), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
    assert sha256_file(out) == before
    assert not psutil.Process().children(), "a worker outlived the run"
    figures.hostile("hangs", f"ENOSPC at the {where} of predict --workers {workers}", runs=1)


@figures.passed_only
def test_workers_capped_by_cores(model: Path, tmp_path: Path) -> None:
    src = FIXTURES / "binary.csv"
    outs = {}
    for n in (1, 64):
        out = tmp_path / f"out{n}.csv"
        r = subprocess.run(
            [MLPROD, "predict", "--model-dir", str(model), "--input", str(src), "--output", str(out)]
            + ["--workers", str(n), "--chunk-rows", "50", "--quiet"],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        outs[n] = out.read_bytes()
        if n == 64:
            cores = len(os.sched_getaffinity(0))
            assert f"mlprod: --workers 64 capped to {min(cores, 64)}" in r.stderr, r.stderr
            assert len(r.stderr.splitlines()) == 1, r.stderr
        else:
            assert "capped" not in r.stderr
    assert outs[1] == outs[64]
    figures.hostile("memory", "predict --workers 64 on the cores there are", runs=2)


def test_capped_pool_size(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    "The capped number is what forks: never more workers than cores, however many are asked for."
    from mlprod.batch import run_local, worker_cap
    from mlprod.predict import Predictor

    n, why = worker_cap(64)
    assert 1 <= n <= len(os.sched_getaffinity(0))
    assert why
    assert worker_cap(1) == (1, "")
    forks: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    out = tmp_path / "p.csv"
    assert (
        run_local(Predictor.load(model), FIXTURES / "binary.csv", out, chunk_rows=50, workers=64, quiet=True)
        == 300
    )
    assert 1 <= len(forks) <= len(os.sched_getaffinity(0)), forks
    assert not psutil.Process().children()


def test_workers_capped_by_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    "As many workers as the available memory holds at the parent's size each; one at least."
    import mlprod.pool
    from mlprod.pool import worker_cap

    monkeypatch.setattr(mlprod.pool, "default_workers", lambda: 8)  # as if on 8 cores
    monkeypatch.setattr(mlprod.pool, "_rss", lambda: 200 << 20)
    monkeypatch.setattr(mlprod.pool, "_mem_available", lambda: 700 << 20)
    assert worker_cap(8) == (3, "700 MiB available, ~200 MiB per worker")
    assert worker_cap(2) == (2, "")
    monkeypatch.setattr(mlprod.pool, "_mem_available", lambda: 100 << 20)
    assert worker_cap(4)[0] == 1
    monkeypatch.setattr(mlprod.pool, "_mem_available", lambda: None)  # unknown: the cores alone
    assert worker_cap(64) == (8, "8 cores")
