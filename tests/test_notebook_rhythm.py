"""Notebooks that teach (issue 19): the rhythm of fastcore's and execnb's notebooks, checked on every notebook.

A notebook in nbs/ is the module's source and its first documentation. Each `#| export` cell holds one public
function or class (private helpers may sit beside it) in at most about 60 lines, and the code cell after it
shows it working: a small frame, a metrics dict, `test_eq`, an error it raises. The checks read the notebooks'
JSON, so a failure names the notebook and the cell's first definition.

`STILL_TO_CONVERT` lists the notebooks not yet brought to this rhythm; it only shrinks. A listed notebook that
already follows the rhythm fails too, so the list cannot go stale.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parents[1] / "nbs"
MAX_CELL_LINES = 60  # non-blank lines of one exported cell
EXPORT = re.compile(r"^\s*#\s*\|\s*export\b")
# notebooks still to be brought to the rhythm (issue 19): remove a name once its notebook passes
STILL_TO_CONVERT: set[str] = set()


def code_cells(path: Path) -> list[str]:
    "The source of every code cell of the notebook at `path`, in order."
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def definitions(src: str) -> list[str]:
    "Names of the top-level functions and classes a cell defines (its `#|` directives are comments)."
    tree = ast.parse(src)
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]


def problems(path: Path) -> list[str]:
    "What breaks the rhythm in one notebook, one line per exported cell at fault."
    cells = code_cells(path)
    out = []
    for i, src in enumerate(cells):
        if not EXPORT.match(src):
            continue
        names = definitions(src)
        what = names[0] if names else f"code cell {i + 1}"
        lines = sum(1 for line in src.splitlines() if line.strip())
        if lines > MAX_CELL_LINES:
            out.append(f"{what}: {lines} lines in one exported cell (at most {MAX_CELL_LINES})")
        public = [n for n in names if not n.startswith("_")]
        if len(public) > 1:
            out.append(f"{what}: {len(public)} public definitions in one exported cell ({', '.join(public)})")
        nxt = cells[i + 1] if i + 1 < len(cells) else None
        if names and (nxt is None or EXPORT.match(nxt)):
            out.append(f"{what}: no cell after it shows it working")
    return out


NOTEBOOKS = sorted(p for p in NBS.glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_rhythm(path: Path) -> None:
    found = problems(path)
    if path.stem in STILL_TO_CONVERT:
        assert found, f"{path.name} follows the rhythm now: remove it from STILL_TO_CONVERT"
    else:
        assert not found, f"{path.name}:\n" + "\n".join(found)


def test_still_to_convert_names_notebooks() -> None:
    assert STILL_TO_CONVERT <= {p.stem for p in NOTEBOOKS}


def test_rhythm_check_catches_each_fault(tmp_path: Path) -> None:
    "The checker itself: a long cell, two public definitions, and a definition nobody shows are each found."

    def notebook(*sources: str) -> Path:
        cells = [{"cell_type": "code", "source": s, "metadata": {}, "outputs": []} for s in sources]
        p = tmp_path / "nb.ipynb"
        p.write_text(json.dumps({"cells": cells}), encoding="utf-8")
        return p

    long = "#| export\ndef f():\n" + "".join(f"    x{i} = {i}\n" for i in range(70))
    assert problems(notebook(long, "f()")) == ["f: 72 lines in one exported cell (at most 60)"]
    two = "#| export\ndef f(): pass\ndef g(): pass\n"
    assert problems(notebook(two, "f()")) == ["f: 2 public definitions in one exported cell (f, g)"]
    shown = "#| export\ndef f(): pass\n"
    assert problems(notebook(shown, "#| export\ndef g(): pass\n")) == [
        "f: no cell after it shows it working",
        "g: no cell after it shows it working",
    ]
    assert problems(notebook(shown, "f()")) == []
    assert problems(notebook("#| export\nX = 1\n", "#| export\nY = 2\n")) == []
