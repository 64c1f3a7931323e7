from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
BIN = Path(sys.executable).parent


@pytest.fixture
def fixtures() -> Path:
    "The committed tiny seeded fixture tables."
    return FIXTURES


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
