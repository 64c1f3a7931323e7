"""The engineer's path: the wheel installs alone into a clean environment, and works there."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import FIXTURES, ROOT

UV = ROOT / ".tools" / "bin" / "uv"


def _run(*args: str | Path, **kw) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{args}\n{r.stdout}\n{r.stderr}"
    return r


def _env() -> dict[str, str]:
    "The machine's environment (certificates, proxies), without the project's venv on PATH."
    env_vars = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return env_vars | {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    "The wheel `uv build` makes from this tree, built once per module."
    assert UV.exists(), "uv is bootstrapped by `make` into .tools/; run make test"
    dist = tmp_path_factory.mktemp("dist")
    _run(
        UV,
        "build",
        "--wheel",
        "--no-build-isolation",
        "--python",
        sys.executable,
        "--out-dir",
        dist,
        ROOT,
        env=_env(),
    )
    wheels = list(dist.glob("mlprod-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def _venv(folder: Path, requirement: str, lock: str) -> Path:
    "A fresh venv at `folder` with `requirement` installed, versions constrained by requirements/`lock`."
    _run(UV, "venv", "--quiet", "--python", sys.executable, folder, env=_env())
    py = folder / "bin" / "python"
    _run(
        UV,
        "pip",
        "install",
        "--quiet",
        "--python",
        py,
        "--constraint",
        ROOT / "requirements" / lock,
        requirement,
        env=_env(),
    )
    return py


@pytest.mark.slow
def test_wheel_installs_alone_and_runs(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    # Runtime dependencies only, at the versions the runtime lock pins.
    py = _venv(venv, str(wheel), "runtime.lock")
    r = _run(venv / "bin" / "mlprod", "--help", cwd=tmp_path)
    assert "Usage: mlprod" in r.stdout
    r = _run(
        py,
        "-c",
        "import mlprod, mlprod.io, mlprod.data, mlprod.cli; print(mlprod.__version__, mlprod.__file__)",
        cwd=tmp_path,
    )
    assert str(venv) in r.stdout  # the installed copy, not the source tree


@pytest.mark.slow
def test_wheel_ships_the_report_notebooks_from_nbs_reports(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        shipped = {n: z.read(n) for n in z.namelist() if n.startswith("mlprod/reports/")}
    assert sorted(shipped) == ["mlprod/reports/compare.ipynb", "mlprod/reports/evaluate.ipynb"]
    for name, data in shipped.items():  # real files in the wheel, byte for byte the committed notebooks
        assert data == (ROOT / "nbs" / "reports" / Path(name).name).read_bytes(), name


@pytest.mark.slow
def test_sdist_carries_real_copies_of_the_report_notebooks(tmp_path: Path) -> None:
    "`uv build` (no --wheel) builds the wheel from the sdist: the symbolic link must be resolved in it."
    _run(
        UV,
        "build",
        "--sdist",
        "--no-build-isolation",
        "--python",
        sys.executable,
        "--out-dir",
        tmp_path,
        ROOT,
        env=_env(),
    )
    (sdist,) = tmp_path.glob("mlprod-*.tar.gz")
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if "/mlprod/reports/" in m.name}
        for kind in ("evaluate", "compare"):
            m = members[f"mlprod/reports/{kind}.ipynb"]
            assert m.isfile(), f"{m.name} is not a regular file in the sdist"
            assert tar.extractfile(m).read() == (ROOT / "nbs" / "reports" / f"{kind}.ipynb").read_bytes()


@pytest.mark.slow
def test_report_runs_from_the_wheel_alone(wheel: Path, tmp_path: Path) -> None:
    "An engineer with only the wheel (and its `report` extra): train a model, then run the evaluation report."
    venv = tmp_path / "venv"
    py = _venv(venv, f"mlprod[report] @ {wheel.as_uri()}", "dev.lock")  # dev.lock pins the extras too
    work = tmp_path / "work"  # no checkout, no settings.ini, no nbs/ anywhere above
    work.mkdir()
    shutil.copy(FIXTURES / "regression.csv", work / "houses.csv")
    config = {
        "name": "house",
        "task": "regression",
        "target": "price",
        "id_col": "house_id",
        "estimator": {"class": "sklearn.linear_model.Ridge", "params": {"alpha": 1.0}},
    }
    (work / "house.yaml").write_text(yaml.safe_dump(config))
    _run(
        py,
        "-c",
        "from mlprod.train import train_from_path; train_from_path('house.yaml', 'houses.csv', 'models/house')",
        cwd=work,
    )
    mlprod = venv / "bin" / "mlprod"
    args = ["--model-dir", "models/house", "--data", "houses.csv", "--out-dir", "reports/house"]
    if re.search(r"^[\s│]*report\s", _run(mlprod, "--help", cwd=work).stdout, re.M):  # the command is there
        r = _run(mlprod, "report", "evaluate", *args, cwd=work)
        assert "reports/house/report.html" in r.stdout
    else:  # until the CLI fragment is merged: the same function the command calls
        code = "from mlprod.report import evaluate_report; evaluate_report('models/house', 'houses.csv', 'reports/house')"
        _run(py, "-c", code, cwd=work)
    out = work / "reports" / "house"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "regression" and metrics["rows"] == 300 and metrics["r2"] > 0.5
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 3  # predicted vs actual, residuals, importance
    nb = json.loads((out / "report.ipynb").read_text())
    assert nb["metadata"]["mlprod"]["status"] == "ok"
    for text in (html, json.dumps(nb)):
        assert str(tmp_path) not in text and str(venv) not in text  # no absolute path, not even the venv's
