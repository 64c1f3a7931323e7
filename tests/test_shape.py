"""The package's shape (issue 18): one place per concern, imports in one direction, rooms a reader can hold.

These tests read the generated modules with `ast` (no import runs), so they fail on the line that breaks the
rule, whatever notebook it came from:
- no import cycle between mlprod's modules, counting imports inside functions (a lazy import is still a
  dependency a reader must follow);
- no module over 500 lines of code (lines that are neither blank nor comments);
- only the task definitions compare a task name (`task == "regression"`) or a task's declarations
  (`task.data == "interactions"`: a phase asks the task instead, `task.per_user`), and only the format
  definitions compare a file suffix or a format name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlprod"
MAX_CODE_LINES = 500
# where a task name may be compared: the task definitions
TASK_MODULES = {"tasks"}
# where a suffix or a format name may be compared: the format definitions
FORMAT_MODULES = {"formats"}
SUFFIXES = {".csv", ".jsonl", ".json", ".ndjson", ".parquet", ".pq", ".gz"}
FORMAT_NAMES = {"csv", "jsonl", "parquet", "gzip"}
TASK_NAMES = {"classification", "regression", "recommend"}
# a task's declarations (Task.data, .target, .estimator_kind, .sklearn_kind) and the words they take
TASK_ATTRS = {"data", "target", "estimator_kind", "sklearn_kind"}
TASK_WORDS = {
    "table",
    "interactions",
    "labels",
    "numbers",
    "items",
    "estimator",
    "recommender",
    "classifier",
    "regressor",
}


def modules() -> dict[str, ast.Module]:
    "Every generated module of the package by its short name (`io` for mlprod/io.py), parsed."
    return {
        p.stem: ast.parse(p.read_text(encoding="utf-8"), filename=str(p))
        for p in sorted(PACKAGE.glob("*.py"))
        if p.stem not in ("_modidx", "__init__")
    }


def imported(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    "The mlprod modules `name` imports anywhere in its text (top level or inside a function)."
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from .x import y / from . import x
                base = node.module
            elif node.module and (node.module == "mlprod" or node.module.startswith("mlprod.")):
                base = node.module.removeprefix("mlprod").lstrip(".") or None
            else:
                continue
            if base is None:  # from mlprod import x: x may be a module
                out |= {a.name for a in node.names if a.name in known}
            else:
                out.add(base.split(".")[0])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("mlprod."):
                    out.add(a.name.split(".")[1])
    return (out & known) - {name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    "The strongly connected groups of more than one module (Tarjan's algorithm), each sorted."
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycles_finds_a_cycle():
    # the checker itself: a cycle through three modules is found, a chain is not
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle():
    mods = modules()
    known = set(mods)
    graph = {name: imported(name, tree, known) for name, tree in mods.items()}
    assert cycles(graph) == []


def code_lines(path: Path) -> int:
    "Lines that are neither blank nor only a comment."
    return sum(
        1
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )


def test_no_module_over_500_lines_of_code():
    sizes = {p.name: code_lines(p) for p in sorted(PACKAGE.glob("*.py")) if p.stem != "_modidx"}
    assert {name: n for name, n in sizes.items() if n > MAX_CODE_LINES} == {}


def _names(node: ast.AST) -> set[str]:
    "The plain names and attribute names in an expression (`cfg.task` gives {'cfg', 'task'})."
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


def _constants(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def branches(tree: ast.Module, words: set[str]) -> list[int]:
    "Lines where a comparison (==, !=, in, not in) or a `.get`/subscript on a literal mapping tests one of `words`."
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and _constants(node) & words:
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            # str.endswith(".csv") / str.removesuffix(".gz")
            if node.func.attr in ("endswith", "removesuffix", "startswith") and _constants(node) & words:
                lines.append(node.lineno)
        elif (
            isinstance(node, ast.Dict) and {k.value for k in node.keys if isinstance(k, ast.Constant)} & words
        ):
            lines.append(node.lineno)  # {".csv": "csv", ...}: a branch table on the suffix
    return sorted(set(lines))


def test_task_names_compared_only_in_the_task_definitions():
    found = {
        name: lines
        for name, tree in modules().items()
        if name not in TASK_MODULES and (lines := branches(tree, TASK_NAMES))
    }
    assert found == {}


def attribute_branches(tree: ast.Module, attrs: set[str], words: set[str]) -> list[int]:
    "Lines where an attribute named in `attrs` is compared (==, !=, in, not in) with one of `words`."
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if (
                any(isinstance(s, ast.Attribute) and s.attr in attrs for s in sides)
                and _constants(node) & words
            ):
                lines.append(node.lineno)
    return sorted(set(lines))


def test_task_declarations_compared_only_in_the_task_definitions():
    # a phase asks the task (`task.per_user`, `task.numeric_target`), it never reads its words
    found = {
        name: lines
        for name, tree in modules().items()
        if name not in TASK_MODULES and (lines := attribute_branches(tree, TASK_ATTRS, TASK_WORDS))
    }
    assert found == {}


REPORTS = PACKAGE.parent / "nbs" / "reports"


def report_cells(path: Path) -> ast.Module:
    "The code cells of a report notebook as one parsed module (magics and shell lines left out)."
    import json

    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    src = "\n".join(
        line
        for c in cells
        if c["cell_type"] == "code"
        for line in "".join(c["source"]).splitlines()
        if not line.lstrip().startswith(("%", "!"))
    )
    return ast.parse(src, filename=str(path))


def test_report_notebooks_ask_their_task():
    # the report notebooks are code a user reads and copies: they ask the task too, as the modules do
    paths = sorted(REPORTS.glob("*.ipynb"))
    assert paths, "no report notebook found"
    found = {
        p.name: lines
        for p in paths
        if (
            lines := attribute_branches(tree := report_cells(p), TASK_ATTRS, TASK_WORDS)
            + branches(tree, TASK_NAMES)
        )
    }
    assert found == {}


def test_attribute_branches_finds_a_comparison():
    # the checker itself: the shapes a phase would write are seen, a question asked of the task is not
    text = (
        "if task.data == 'interactions': pass\n"
        "y = 1 if task_for(n).target != 'labels' else 2\n"
        "if kind.estimator_kind in ('recommender',): pass\n"
        "if task.per_user: pass\n"
        "if schema.target not in df.columns: pass\n"
    )
    assert attribute_branches(ast.parse(text), TASK_ATTRS, TASK_WORDS) == [1, 2, 3]


def test_suffixes_compared_only_in_the_format_definitions():
    found = {
        name: lines
        for name, tree in modules().items()
        if name not in FORMAT_MODULES and (lines := branches(tree, SUFFIXES | FORMAT_NAMES))
    }
    assert found == {}


@pytest.mark.parametrize("words", [TASK_NAMES, SUFFIXES])
def test_branches_finds_a_branch(words):
    # the checker itself: each shape of branch is seen
    word = sorted(words)[0]
    text = f"if x == {word!r}: pass\nif y in ({word!r}, 'z'): pass\nif p.endswith({word!r}): pass\nm = {{{word!r}: 1}}\n"
    assert branches(ast.parse(text), words) == [1, 2, 3, 4]
    assert branches(ast.parse("if x == 'other': pass\n"), words) == []
