"""The sync check: a hand edit in mlprod/ fails it, naming the file and the fix."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def _copy_tree(dst: Path) -> Path:
    for name in ("pyproject.toml", "scripts"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst / name)
    for name in ("nbs", "mlprod"):
        shutil.copytree(
            ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")
        )
    return dst


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "scripts" / "check_sync.py"), str(root)], capture_output=True, text=True
    )


def test_in_sync_tree_passes(tmp_path: Path) -> None:
    r = _check(_copy_tree(tmp_path))
    assert r.returncode == 0, r.stderr


def test_hand_edit_is_named(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    with open(root / "mlprod" / "io.py", "a") as f:
        f.write("\nHAND_EDIT = 1\n")
    r = _check(root)
    assert r.returncode == 1
    assert (
        "mlprod/io.py: differs from what nbs/01_io.ipynb exports" in r.stderr and "nbdev-export" in r.stderr
    )


def test_module_without_notebook_and_unclean_notebook(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    (root / "mlprod" / "handmade.py").write_text("X = 1\n")
    nb = root / "nbs" / "00_errors.ipynb"
    nb.write_text(nb.read_text().replace('"execution_count": null', '"execution_count": 3', 1))
    r = _check(root)
    assert r.returncode == 1
    assert "mlprod/handmade.py: no notebook exports this module" in r.stderr
    assert "nbs/00_errors.ipynb: notebook is not clean" in r.stderr
