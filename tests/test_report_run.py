"""`mlprod report run NAME_OR_PATH -p key=value ... --out-dir DIR`: any report notebook, with `report evaluate`'s
guarantees (declared parameters only, values read as papermill's -p reads them, byte-identical reruns, offline
HTML, the lineage of its inputs, committed whole); a name is looked up in the project's report folder first and
then in mlprod's packaged reports, so neither hides the other."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from mlprod.lineage import read_lineage
from mlprod.train import train_from_path

from conftest import CHURN_CONFIG, FIXTURES

USER_CELLS = [
    "# My churn summary\nfrom pathlib import Path\n\nimport pandas as pd\nfrom IPython.display import Markdown, display",
    "df = pd.read_csv(data).head(rows)  # (rows, 8)\n"
    "display(Markdown(f\"# {title or 'Churn summary'}\"))\n"
    "print(len(df), type(rows).__name__, type(scale).__name__, type(flag).__name__, title)",
    "(Path(out_dir) / 'metrics.json').write_text(json.dumps({'rows': len(df), 'scaled': rows * scale}) + '\\n')",
]
PARAMS = (
    'data = ""  # the table to summarise\nrows = 10  # rows kept\nscale = 1.0\nflag = False\ntitle = ""\n'
    'out_dir = "."  # where metrics.json goes'
)


def _notebook(path: Path) -> Path:
    "A user's report notebook: a parameters cell, then cells that read `data` and write metrics.json."
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("import json"), *map(nbformat.v4.new_code_cell, USER_CELLS)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    "A project of the user's own, the current folder: settings.ini, nbs/reports/summary.ipynb, data/binary.csv."
    (tmp_path / "settings.ini").write_text("[mlprod]\nseed = 0\n")
    _notebook(tmp_path / "nbs" / "reports" / "summary.ipynb")
    (tmp_path / "data").mkdir()
    shutil.copy(FIXTURES / "binary.csv", tmp_path / "data" / "binary.csv")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(cli, project: Path, *args: str):
    return cli("report", "run", *args, cwd=project)


def test_a_user_report_runs_twice_byte_identical(cli, project: Path) -> None:
    args = ["nbs/reports/summary.ipynb", "-p", "data=data/binary.csv", "-p", "rows=7", "-p", "scale=0.5"]
    args += ["-p", "flag=True", "-p", "title=Weekly churn", "--out-dir", "outputs/reports/summary"]
    r = _run(cli, project, *args)
    assert r.returncode == 0, r.stderr
    out = project / "outputs" / "reports" / "summary"
    first = {n: (out / n).read_bytes() for n in ("report.ipynb", "report.html", "metrics.json")}
    r = _run(cli, project, *args)
    assert r.returncode == 0, r.stderr
    for name, before in first.items():
        assert (out / name).read_bytes() == before, f"{name} changed between two runs"
    assert json.loads(first["metrics.json"]) == {"rows": 7, "scaled": 3.5}  # written into the report's folder
    html = first["report.html"].decode()
    assert "7 int float bool Weekly churn" in html  # values read as papermill's -p reads them
    assert "<title>Weekly churn</title>" in html
    assert "<script src=" not in html and "cdn" not in html.lower()  # offline: nothing fetched
    assert str(project) not in html and str(project) not in first["report.ipynb"].decode()
    inputs = read_lineage(out / "report.html")["inputs"]
    assert [(i["role"], i["path"]) for i in inputs] == [("data", "../../../data/binary.csv")]
    assert len(inputs[0]["sha256"]) == 64
    assert sorted(p.name for p in out.parent.iterdir()) == ["summary"]  # committed whole: no debris beside it


def test_a_report_is_found_by_name_in_the_project_then_in_mlprod(cli, project: Path) -> None:
    r = _run(cli, project, "summary", "-p", "data=data/binary.csv", "--out-dir", "out/s")
    assert r.returncode == 0, r.stderr
    assert json.loads((project / "out" / "s" / "metrics.json").read_text()) == {"rows": 10, "scaled": 10.0}
    r = _run(cli, project, "summry", "--out-dir", "out/t")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "no report notebook 'summry' in nbs/reports or mlprod/reports" in r.stderr, r.stderr
    assert "expected one of compare, evaluate, summary" in r.stderr, r.stderr


def test_an_undeclared_parameter_is_one_line_naming_it_and_the_declared_ones(cli, project: Path) -> None:
    r = _run(cli, project, "summary", "-p", "data=data/binary.csv", "-p", "rwos=3", "--out-dir", "out/s")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert "unknown parameter 'rwos'" in r.stderr, r.stderr
    assert "expected one of data, rows, scale, flag, title, out_dir" in r.stderr, r.stderr
    assert not (project / "out").exists()  # nothing ran, nothing was written


@pytest.mark.parametrize(
    ("param", "said"),
    [
        ("rows", "bad parameter 'rows' (expected -p key=value"),
        ("out_dir=elsewhere", "out_dir is the report's folder (expected --out-dir DIR"),
    ],
)
def test_a_bad_parameter_is_one_line(cli, project: Path, param: str, said: str) -> None:
    r = _run(cli, project, "summary", "-p", param, "--out-dir", "out/s")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and said in r.stderr, r.stderr
    assert not (project / "out").exists()


def test_a_project_with_its_own_reports_still_finds_mlprods_evaluate(cli, project: Path) -> None:
    (project / "churn.yaml").write_text(yaml.safe_dump(CHURN_CONFIG))
    train_from_path(project / "churn.yaml", project / "data" / "binary.csv", project / "models" / "churn")
    args = ["--model-dir", "models/churn", "--data", "data/binary.csv", "--out-dir", "out/evaluate"]
    r = cli("report", "evaluate", *args, cwd=project)
    assert r.returncode == 0, r.stderr
    assert (project / "out" / "evaluate" / "metrics.json").exists()


def test_values_are_read_as_papermills_own_p_reads_them() -> None:
    from papermill.cli import _resolve_type

    from mlprod.execute import parameter_value

    for text in [
        "7",
        "-3",
        "007",
        "1_000",
        "2.5",
        "1e3",
        "-0.0",
        "True",
        "False",
        "None",
        "true",
        "a b",
        "",
        "x=1",
    ]:
        got, want = parameter_value(text), _resolve_type(text)
        assert got == want and type(got) is type(want), text
    for text in ["nan", "inf", "-Infinity", "1e999"]:  # JSON has no NaN or infinity: these stay text
        assert parameter_value(text) == text
