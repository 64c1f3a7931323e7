"""`mlprod new` (issue 20): a project of one's own, rendered from the packaged copier template.

The fast tests render each example into a temporary folder in-process: the files exist, the names are
substituted, no file holds a path of this machine, the package is what its notebooks export, and a bad name or
an occupied folder is refused in one line. The slow ones (CI runs them) make a project in an empty folder with
mlprod taken from this checkout and run the project's own `make test` and `make demo`; for the tabular example
they also add a transformer in its notebook, export it, train through the project's command, load the model in
a fresh process started elsewhere, and catch a hand edit of the package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlprod import __version__
from mlprod.cli import app
from mlprod.new import EXAMPLES, new_project, template_folder

from conftest import BIN, ROOT

NAME, PACKAGE = "acme-lab", "acme_lab"
# what each example must hold, beside what every project holds
COMMON = {
    ".copier-answers.yml", ".gitignore", ".ci/run", "Makefile", "README.md", "pyproject.toml", "settings.ini",
    "requirements.lock", "outputs/.gitkeep", "scripts/make_fixtures.py", "tests/test_fixtures.py",
    "nbs/00_app.ipynb", "nbs/01_train.ipynb", "nbs/09_cli.ipynb",
    f"{PACKAGE}/__init__.py", f"{PACKAGE}/_modidx.py", f"{PACKAGE}/app.py", f"{PACKAGE}/train.py", f"{PACKAGE}/cli.py",
}  # fmt: skip
PHASES = {"nbs/02_predict.ipynb", "nbs/03_evaluate.ipynb", f"{PACKAGE}/predict.py", f"{PACKAGE}/evaluate.py"}
EXPECTED = {
    "tabular": COMMON | PHASES | {
        "nbs/00a_features.ipynb", f"{PACKAGE}/features.py", "configs/churn.yaml", "sql/customers.sql",
        "tests/fixtures/customers.csv", "tests/golden/churn.predictions.csv", "tests/golden/floors.json",
        "tests/test_golden.py", "tests/test_cli.py",
    },
    "recommend": COMMON | PHASES | {
        "nbs/00a_recommender.ipynb", f"{PACKAGE}/recommender.py", "configs/item2item.yaml", "sql/seen.sql",
        "sql/held_out.sql", "tests/fixtures/interactions.csv", "tests/golden/item2item.predictions.csv",
        "tests/golden/floors.json", "tests/test_golden.py",
    },
    "none": COMMON | {"configs/README.md", "sql/table.sql", "tests/fixtures/table.csv", "tests/test_project.py"},
}  # fmt: skip


def files_of(project: Path) -> set[str]:
    return {
        str(p.relative_to(project))
        for p in project.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def sync_problems(project: Path) -> list[str]:
    "The project's sync check (mlprod.sync, what `mlprod check-sync` runs): one line per problem."
    from mlprod.sync import check_sync

    return check_sync(project)


# ---- fast: rendering in-process ------------------------------------------------------------------------------


@pytest.mark.parametrize("example", list(EXAMPLES))
def test_each_example_renders_with_its_names(example: str, tmp_path: Path) -> None:
    started = time.monotonic()
    project = new_project(NAME, tmp_path, example=example)
    seconds = time.monotonic() - started
    assert project == tmp_path / NAME
    assert files_of(project) == EXPECTED[example]
    assert seconds < 10, f"mlprod new took {seconds:.1f} s"  # about a second on a quiet machine
    machine = [str(tmp_path), str(ROOT), str(Path.home()), sys.prefix, sys.base_prefix]
    for rel in sorted(files_of(project)):
        text = (project / rel).read_text(encoding="utf-8")
        assert "{{" not in text and "{%" not in text, f"{rel}: a template variable left"
        assert "zzproj" not in text, f"{rel}: a stand-in name left"
        assert not [m for m in machine if m in text], f"{rel}: holds a path of this machine"
    assert os.access(project / ".ci" / "run", os.X_OK)
    pyproject = (project / "pyproject.toml").read_text()
    assert f'lib_path = "{PACKAGE}"' in pyproject and f'{NAME} = "{PACKAGE}.cli:main"' in pyproject
    assert f"MLPROD ?= mlprod=={__version__}\n" in (project / "Makefile").read_text()
    assert (project / "requirements.lock").read_bytes() == (ROOT / "requirements" / "dev.lock").read_bytes()
    answers = (project / ".copier-answers.yml").read_text()
    assert f"example: {example}\n" in answers and f"project_name: {NAME}\n" in answers
    assert "_src_path: .venv/lib/python" in answers  # the template inside the project's own environment


@pytest.mark.parametrize("example", list(EXAMPLES))
def test_rendered_package_is_what_its_notebooks_export(example: str, tmp_path: Path) -> None:
    project = new_project(
        "a-much-longer-project-name", tmp_path, example=example
    )  # _modidx.py wraps otherwise
    assert sync_problems(project) == []
    r = CliRunner().invoke(app, ["check-sync", str(project)])
    assert r.exit_code == 0, r.output
    with open(project / "a_much_longer_project_name" / "train.py", "a") as f:
        f.write("\nHAND_EDIT = 1\n")
    (problem,) = sync_problems(project)
    assert problem.startswith(
        "a_much_longer_project_name/train.py: differs from what nbs/01_train.ipynb exports"
    )


def test_template_holds_no_module_of_mlprod() -> None:
    "Every Python file of the template ends in .jinja: nbdev, ruff, pytest and the sync check never take it."
    assert [p for p in template_folder().rglob("*.py")] == []
    assert [p for p in template_folder().rglob("*.ipynb")] == []


def test_an_occupied_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / NAME).mkdir()
    (tmp_path / NAME / "notes.txt").write_text("mine\n")
    r = CliRunner().invoke(app, ["new", NAME, "--dir", str(tmp_path)])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        f"mlprod: data error: {tmp_path / NAME}: the project folder exists and is not empty "
        "(expected a new or empty folder)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME]
    assert sorted(p.name for p in (tmp_path / NAME).iterdir()) == ["notes.txt"]


def test_an_empty_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / NAME).mkdir()
    r = CliRunner().invoke(app, ["new", NAME, "--dir", str(tmp_path), "--example", "none"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / NAME / "Makefile").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME]


@pytest.mark.parametrize("name", ["2fast", "my lab", "café", "json", "mlprod", "class", ""])
def test_a_bad_name_is_refused_in_one_line(name: str, tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["new", name, "--dir", str(tmp_path)])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlprod: config error: column 'NAME': bad project name"), (
        lines
    )
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_example_is_refused(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["new", NAME, "--dir", str(tmp_path), "--example", "images"])
    assert r.exit_code == 2
    assert "unknown example 'images' (expected tabular or recommend or none)" in r.output
    assert list(tmp_path.iterdir()) == []


def test_the_mlprod_source_is_recorded(tmp_path: Path) -> None:
    wheel = tmp_path / f"mlprod-{__version__}-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    r = CliRunner().invoke(app, ["new", NAME, "--dir", str(tmp_path / "p"), "--mlprod-source", str(wheel)])
    assert r.exit_code == 0, r.output
    assert f"MLPROD ?= {wheel.resolve()}\n" in (tmp_path / "p" / NAME / "Makefile").read_text()
    assert (
        r.output.splitlines()[0]
        == f"made {NAME}: tabular example, {len(EXPECTED['tabular'])} files, mlprod from {wheel.resolve()}"
    )
    r = CliRunner().invoke(
        app, ["new", "other", "--dir", str(tmp_path), "--mlprod-source", str(tmp_path / "nope")]
    )
    assert r.exit_code == 2 and "not a wheel of mlprod nor a source folder" in r.output
    assert not (tmp_path / "other").exists()


def test_the_command_starts_without_copier() -> None:
    code = "import sys, mlprod.cli; print('copier' in sys.modules, 'mlprod.new' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["False", "False"]


# ---- slow: the project's own make test and make demo -----------------------------------------------------------

NEW_TRANSFORMER = """#| export
class LogFeature(TransformerMixin, BaseEstimator):
    "Add `name` = log(1 + `column`)."

    def __init__(self, column: str = "", name: str = "log") -> None:
        self.column = column  # a column of non-negative numbers
        self.name = name  # the new column

    def fit(self, X: pd.DataFrame, y: Any = None) -> LogFeature:
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)  # (n_features,)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return X.assign(**{self.name: np.log1p(X[self.column].to_numpy(dtype="float64"))})

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([*self.feature_names_in_, self.name], dtype=object)  # (n_features + 1,)"""


def _run(args: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def _append_cells(notebook: Path, *sources: str) -> None:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for src in sources:
        lines = src.split("\n")
        nb["cells"].append(
            {"cell_type": "code", "execution_count": None, "id": f"added{len(nb['cells'])}", "metadata": {},
             "outputs": [], "source": [line + "\n" for line in lines[:-1]] + [lines[-1]]}
        )  # fmt: skip
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _new_transformer_trained_and_loaded_elsewhere(project: Path, make: list[str], elsewhere: Path) -> None:
    "A transformer added in the project's notebook, exported, trained through its command, loaded in another folder."
    demo = 'frame = pd.DataFrame({"income": [0.0, 1.0]})\nLogFeature("income", "log_income").fit(frame).transform(frame)'
    _append_cells(project / "nbs" / "00a_features.ipynb", NEW_TRANSFORMER, demo)
    r = _run([*make, "export"], project)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "class LogFeature" in (project / PACKAGE / "features.py").read_text()
    config = (
        (project / "configs" / "churn.yaml")
        .read_text()
        .replace(
            "      params: {numerator: income, denominator: age, name: income_per_year}\n",
            "      params: {numerator: income, denominator: age, name: income_per_year}\n"
            f"    - class: {PACKAGE}.features.LogFeature\n      params: {{column: tenure_months, name: log_tenure}}\n",
        )
    )
    (project / "configs" / "churn_log.yaml").write_text(config.replace("name: churn\n", "name: churn_log\n"))
    r = _run([str(project / ".venv" / "bin" / NAME), "train", "--config", "configs/churn_log.yaml",
              "--data", "tests/fixtures/customers.csv", "--out-dir", "outputs/models/churn_log"], project)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    version = project / r.stdout.strip()
    elsewhere.mkdir()
    load = (
        "import sys\nfrom mlprod.predict import Predictor\nfrom mlprod.tables import read_table\n"
        "p = Predictor.load(sys.argv[1])\nout = p.predict(read_table(sys.argv[2]), proba=True)\n"
        "print(len(out), 'log_tenure' in p.bundle.schema.model_features)"
    )
    r = _run([str(project / ".venv" / "bin" / "python"), "-c", load, str(version),
              str(project / "tests" / "fixtures" / "customers.csv")], elsewhere)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["200", "True"]


@pytest.mark.slow
@pytest.mark.parametrize("example", list(EXAMPLES))
def test_new_project_passes_its_own_make_test_and_make_demo(example: str, tmp_path: Path) -> None:
    empty = tmp_path / "work"
    empty.mkdir()
    started = time.monotonic()
    r = _run([str(BIN / "mlprod"), "new", NAME, "--example", example, "--mlprod-source", str(ROOT)], empty)
    assert r.returncode == 0, r.stderr
    print(f"mlprod new: {time.monotonic() - started:.2f} s")
    assert r.stdout.splitlines()[1:3] == ["next:", f"  cd {NAME}"]
    project = empty / NAME
    uv = (
        ROOT / ".tools" / "bin" / "uv"
    )  # this checkout's uv, instead of bootstrapping another (the cache is warm)
    make = ["make", "--no-print-directory", *([f"UV={uv}"] if uv.exists() else [])]
    r = _run([*make, ".venv/.installed"], project)
    assert r.returncode == 0, r.stdout + r.stderr
    site = Path(
        _run(
            [str(project / ".venv/bin/python"), "-c", "import mlprod; print(mlprod.__path__[0])"], project
        ).stdout.strip()
    )
    assert files_of(site / "templates" / "project") == files_of(template_folder())  # the wheel ships it whole
    for target in ("test", "demo"):
        started = time.monotonic()
        r = _run([*make, target], project)
        assert r.returncode == 0, f"make {target}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        print(f"make {target}: {time.monotonic() - started:.1f} s")
    assert (project / "outputs" / "demo").is_dir()
    assert sync_problems(project) == []
    if example != "tabular":
        return
    _new_transformer_trained_and_loaded_elsewhere(project, make, tmp_path / "elsewhere")
    assert sync_problems(project) == []
    with open(project / PACKAGE / "train.py", "a") as f:
        f.write("\nHAND_EDIT = 1\n")
    (problem,) = sync_problems(project)
    assert problem.startswith(f"{PACKAGE}/train.py: differs from what nbs/01_train.ipynb exports"), problem
    r = _run([str(project / ".venv" / "bin" / "mlprod"), "check-sync", "."], project)
    assert r.returncode == 1 and f"{PACKAGE}/train.py" in r.stdout + r.stderr, r.stdout + r.stderr


def test_without_copier_the_command_says_which_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    "mlprod installed without its `project` extra: one line naming the extra, exit 2, nothing written."
    monkeypatch.setitem(sys.modules, "copier", None)  # `import copier` raises ImportError
    r = CliRunner().invoke(app, ["new", "acme", "--dir", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert "pip install 'mlprod[project]'" in r.output and "Traceback" not in r.output
    assert list(tmp_path.iterdir()) == []
