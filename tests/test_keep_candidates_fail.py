"""`train --keep-candidates` is one run with one outcome: when saving fails part way (the disk fills up while the
second version is written), the run is a BundleError on one line (the command exits 2, no traceback), no version
of that run is left, `aliases.json` is unchanged (`latest` still names the version it named) and no hidden
temporary remains. Through `train_from_path`, the command in-process, and the installed command in a child whose
file size limit (RLIMIT_FSIZE) lets the small candidate be written but not the selected large one."""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import mlprod.commit
from mlprod.cli import app
from mlprod.errors import BundleError
from mlprod.registry import read_aliases
from mlprod.train import train_from_path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DATA = FIXTURES / "regression.csv"


def _config(tmp_path: Path, big: bool = False) -> Path:
    "Two regression candidates; the selected one (forest) is saved last. `big`: a forest of many deep trees."
    forest = {"n_estimators": 60 if big else 5, "min_samples_leaf": 1, "random_state": 0}
    cfg = {
        "name": "house",
        "task": "regression",
        "target": "price",
        "id_col": "house_id",
        "candidates": [
            {"name": "mean", "class": "sklearn.dummy.DummyRegressor"},
            {"name": "forest", "class": "sklearn.ensemble.RandomForestRegressor", "params": forest},
        ],
        "select_by": "rmse",
    }
    path = tmp_path / "house.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def _state(root: Path) -> dict[str, bytes | None]:
    "Every entry of the model root (hidden ones too): aliases.json by content, each version folder by name."
    return {p.name: p.read_bytes() if p.is_file() else None for p in sorted(root.iterdir())}


@pytest.fixture
def trained(tmp_path: Path) -> Iterator[tuple[Path, Path, dict[str, bytes | None]]]:
    "(config, model root with one earlier version that is `latest`, the root's state before the failing run)."
    cfg = _config(tmp_path)
    root = tmp_path / "models" / "house"
    first = train_from_path(cfg, DATA, root)
    assert read_aliases(root)["latest"] == first.name
    yield cfg, root, _state(root)


def _disk_full_on_second_version(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    "Make the writer save_bundle uses raise ENOSPC while the 2nd version's config.yaml is written."
    real = mlprod.commit.write_text  # the writer save_bundle imports (mlprod.io re-exports it)
    seen = {"versions": 0}

    def write_text(path: str | Path, text: str) -> Path:
        if Path(path).name == "config.yaml" and Path(path).parent.name.startswith(".tmp-"):
            seen["versions"] += 1
            if seen["versions"] == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, text)

    monkeypatch.setattr(mlprod.commit, "write_text", write_text)
    return seen


def test_a_full_disk_while_keeping_candidates_leaves_nothing(
    trained: tuple[Path, Path, dict[str, bytes | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, root, before = trained
    seen = _disk_full_on_second_version(monkeypatch)
    with pytest.raises(BundleError) as e:
        train_from_path(cfg, DATA, root, keep_candidates=True)
    assert seen["versions"] == 2  # the first version was complete when the second failed
    msg = str(e.value)
    assert "\n" not in msg and os.strerror(errno.ENOSPC) in msg and str(root) in msg, msg
    assert _state(root) == before  # no version of the run, aliases.json byte for byte, no .tmp-* left


def test_the_command_exits_2_with_one_line_and_leaves_nothing(
    trained: tuple[Path, Path, dict[str, bytes | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, root, before = trained
    _disk_full_on_second_version(monkeypatch)
    args = [
        "train",
        "--config",
        str(cfg),
        "--train-data",
        str(DATA),
        "--out-dir",
        str(root),
        "--keep-candidates",
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("mlprod: bundle error: "), r.stderr
    assert os.strerror(errno.ENOSPC) in r.stderr and "Traceback" not in r.output
    assert _state(root) == before


def _limit_file_size(limit: int) -> None:
    "In the child, before exec: files may not grow past `limit` bytes; a write past it fails (EFBIG), not kills."
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_the_installed_command_under_a_file_size_limit_leaves_nothing(tmp_path: Path) -> None:
    cfg = _config(tmp_path, big=True)
    root = tmp_path / "models" / "house"
    first = train_from_path(cfg, DATA, root)  # the forest, selected
    before = _state(root)
    model = first / "model.joblib"
    limit = max(64 * 1024, model.stat().st_size // 4)  # the small candidate's files fit, the forest does not
    mean_size = max(p.stat().st_size for p in first.rglob("*") if p.is_file() and p != model)
    assert mean_size < limit < model.stat().st_size
    exe = Path(sys.executable).parent / "mlprod"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPROD")} | {
        "PYTHONDONTWRITEBYTECODE": "1"
    }
    args = [
        "train",
        "--config",
        str(cfg),
        "--train-data",
        str(DATA),
        "--out-dir",
        str(root),
        "--keep-candidates",
    ]
    r = subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
        preexec_fn=lambda: _limit_file_size(limit),  # noqa: PLW1509 (no threads in this child yet)
    )
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("mlprod: bundle error: "), r.stderr
    assert "Traceback" not in r.stderr
    assert _state(root) == before  # the run's first version (mean) is gone again, `latest` unchanged


def test_unchanged_when_nothing_fails(trained: tuple[Path, Path, dict[str, Any]]) -> None:
    "The control: the same run without a full disk adds the two versions and moves `latest` to the selected."
    cfg, root, before = trained
    best = train_from_path(cfg, DATA, root, keep_candidates=True)
    after = _state(root)
    assert len(after) == len(before) + 2 and read_aliases(root)["latest"] == best.name
