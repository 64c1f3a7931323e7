"""`mlprod check-sync`: a hand edit in a package fails it, naming the file and the fix, in mlprod and in any nbdev
project; a folder that is not an nbdev project is one line and exit 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mlprod.sync import check_sync

from conftest import ROOT, run_cli


def _copy_tree(dst: Path) -> Path:
    "A copy of this repository's nbdev project: pyproject.toml, nbs/, mlprod/."
    shutil.copy2(ROOT / "pyproject.toml", dst / "pyproject.toml")
    for name in ("nbs", "mlprod"):
        shutil.copytree(
            ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")
        )
    return dst


def test_in_sync_tree_passes(tmp_path: Path) -> None:
    r = run_cli("check-sync", str(_copy_tree(tmp_path)))
    assert r.returncode == 0, r.stderr
    assert "mlprod/ is what nbs/ exports; notebooks are clean" in r.stdout


def test_hand_edit_is_named(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    with open(root / "mlprod" / "io.py", "a") as f:
        f.write("\nHAND_EDIT = 1\n")
    r = run_cli("check-sync", str(root))
    assert r.returncode == 1
    assert (
        "mlprod/io.py: differs from what nbs/01_io.ipynb exports" in r.stderr and "nbdev-export" in r.stderr
    )
    assert len(r.stderr.splitlines()) == 1, r.stderr


def test_module_without_notebook_and_unclean_notebook(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    (root / "mlprod" / "handmade.py").write_text("X = 1\n")
    nb = root / "nbs" / "00_errors.ipynb"
    nb.write_text(nb.read_text().replace('"execution_count": null', '"execution_count": 3', 1))
    r = run_cli("check-sync", str(root))
    assert r.returncode == 1
    assert "mlprod/handmade.py: no notebook exports this module" in r.stderr
    assert "nbs/00_errors.ipynb: notebook is not clean" in r.stderr


def _notebook(path: Path, *sources: str) -> None:
    cells = [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": f"c{i:07d}",
            "metadata": {},
            "outputs": [],
            "source": s,
        }
        for i, s in enumerate(sources)
    ]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def _acme(root: Path) -> Path:
    "A tiny nbdev project that is not mlprod, cleaned and exported by nbdev as its author would."
    (root / "nbs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "acme-tools"\nversion = "0.0.1"\n\n[tool.nbdev]\nlib_path = "acme"\n'
    )
    _notebook(
        root / "nbs" / "00_core.ipynb",
        "#| default_exp core",
        "#| export\ndef double(x: int) -> int:\n    return 2 * x",
        "assert double(2) == 4",
    )
    env = {k: v for k, v in os.environ.items() if k != "IN_TEST"}
    for tool in ("nbdev-clean", "nbdev-export"):
        subprocess.run(
            [str(Path(sys.executable).parent / tool)], cwd=root, env=env, check=True, capture_output=True
        )
    assert (root / "acme" / "core.py").exists()
    return root


def test_a_project_that_is_not_mlprod(tmp_path: Path) -> None:
    root = _acme(tmp_path / "acme-tools")
    r = run_cli("check-sync", cwd=root)  # the current folder by default
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "sync check: acme/ is what nbs/ exports; notebooks are clean"
    assert check_sync(root) == []
    with open(root / "acme" / "core.py", "a") as f:
        f.write("\nHAND_EDIT = 1\n")
    r = run_cli("check-sync", str(root))
    assert r.returncode == 1
    assert r.stderr.startswith("sync check: acme/core.py: differs from what nbs/00_core.ipynb exports: "), (
        r.stderr
    )
    assert "make the edit in nbs/00_core.ipynb" in r.stderr and "mlprod" not in r.stderr
    assert [line.split(":")[0] for line in check_sync(root)] == ["acme/core.py"]


def test_a_broken_notebook_is_named_with_its_line(tmp_path: Path) -> None:
    root = _acme(tmp_path / "acme-tools")
    nb = root / "nbs" / "00_core.ipynb"
    nb.write_text(nb.read_text().replace('"cells": [', '"cells": [\n<<<<<<< HEAD\n', 1))
    r = run_cli("check-sync", str(root))
    assert r.returncode == 1, r.stderr
    assert "nbs/00_core.ipynb: not a notebook nbdev can read (line 3, column 1" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_not_an_nbdev_project_is_one_line_exit_2(tmp_path: Path) -> None:
    r = run_cli("check-sync", str(tmp_path))
    assert r.returncode == 2
    assert "not an nbdev project: no pyproject.toml" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "plain"\n')
    r = run_cli("check-sync", cwd=tmp_path)
    assert r.returncode == 2
    assert "pyproject.toml: not an nbdev project: no [tool.nbdev] table" in r.stderr, r.stderr
    (tmp_path / "pyproject.toml").write_text("[tool.nbdev\n")
    r = run_cli("check-sync", str(tmp_path))
    assert r.returncode == 2 and "not an nbdev project" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = run_cli("check-sync", str(tmp_path / "missing"))
    assert r.returncode == 2 and "not an nbdev project: not a folder" in r.stderr, r.stderr
