from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
BIN = Path(sys.executable).parent
# A small classifier config on tests/fixtures/binary.csv: a model trained in a second, for tests about what
# surrounds a model (output folders, reports), not about the model.
CHURN_CONFIG = {
    "name": "churn",
    "task": "classification",
    "target": "churned",
    "id_col": "customer_id",
    "preprocessing": {"scale": True},
    "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 2000}},
    "seed": 0,
}


@pytest.fixture
def fixtures() -> Path:
    "The committed tiny seeded fixture tables."
    return FIXTURES


@contextmanager
def small_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "64k", "2m") mounted on `folder` (made here): a real full disk for the tests that
    need one, unmounted after; the test is skipped where this machine does not let it mount one (not root)."""
    folder.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip() or r.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill_up(folder: Path) -> None:
    "Write zeros into `folder`/filler until its file system is full (ENOSPC): what a full disk looks like."
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)


def churn_bundle() -> Any:
    "A logistic regression fitted on the binary fixture, as an unsaved mlprod Bundle with 8 golden rows."
    from sklearn.linear_model import LogisticRegression

    from mlprod.bundle import Bundle
    from mlprod.features import build_pipeline
    from mlprod.schema import capture_schema, validate
    from mlprod.tables import read_table

    df = read_table(Path(__file__).parent / "fixtures" / "binary.csv")  # (300, 8)
    schema = capture_schema(df, "classification", "churned", "customer_id")
    pipe = build_pipeline(schema, LogisticRegression(max_iter=1000), {"scale": True, "transformers": []})
    pipe.fit(validate(schema, df), df["churned"])
    return Bundle(pipe, {"name": "churn", "task": "classification"}, schema, {"accuracy": 0.75}, df.head(8))


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    "Run the installed `mlprod` command as a user would, in a subprocess."
    exe = shutil.which("mlprod", path=str(BIN)) or "mlprod"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPROD")}
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def cli():
    return run_cli


def pytest_configure(config: pytest.Config) -> None:
    "The hardening figures (tests/bad_inputs/figures.py), collected from every xdist worker."
    from bad_inputs import figures

    figures.install(config)
