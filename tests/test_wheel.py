"""The engineer's path: the wheel installs alone into a clean environment, and works there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

UV = ROOT / ".tools" / "bin" / "uv"


def _run(*args: str | Path, **kw) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{args}\n{r.stdout}\n{r.stderr}"
    return r


@pytest.mark.slow
def test_wheel_installs_alone_and_runs(tmp_path: Path) -> None:
    assert UV.exists(), "uv is bootstrapped by `make` into .tools/; run make test"
    # The machine's environment (certificates, proxies), without the project's venv on PATH.
    env_vars = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env_vars |= {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    _run(
        UV,
        "build",
        "--wheel",
        "--no-build-isolation",
        "--python",
        sys.executable,
        "--out-dir",
        tmp_path / "dist",
        ROOT,
        env=env_vars,
    )
    wheels = list((tmp_path / "dist").glob("mlprod-*.whl"))
    assert len(wheels) == 1
    venv = tmp_path / "venv"
    _run(UV, "venv", "--quiet", "--python", sys.executable, venv, env=env_vars)
    py = venv / "bin" / "python"
    # Runtime dependencies only, at the versions the runtime lock pins.
    _run(
        UV,
        "pip",
        "install",
        "--quiet",
        "--python",
        py,
        "--constraint",
        ROOT / "requirements" / "runtime.lock",
        wheels[0],
        env=env_vars,
    )
    r = _run(venv / "bin" / "mlprod", "--help", cwd=tmp_path)
    assert "Usage: mlprod" in r.stdout
    r = _run(
        py,
        "-c",
        "import mlprod, mlprod.io, mlprod.data, mlprod.cli; print(mlprod.__version__, mlprod.__file__)",
        cwd=tmp_path,
    )
    assert str(venv) in r.stdout  # the installed copy, not the source tree
