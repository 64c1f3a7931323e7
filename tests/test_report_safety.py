"""report: `--out-dir` is replaced only when it is a folder mlprod wrote, and text from a bundle or a parameter
never becomes HTML in report.html."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlprod.errors import ReportError
from mlprod.layout import MANIFEST
from mlprod.report import evaluate_report
from mlprod.train import train_from_path
from mlprod.verify import _manifest

from conftest import CHURN_CONFIG as CONFIG
from conftest import FIXTURES, run_cli

REPORT_MARKER = ".mlprod-report"  # what `mlprod report` writes into every report folder it makes
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    "A workspace (the current folder of the module) with the binary fixture and one model trained on it."
    d = tmp_path_factory.mktemp("report_safety")
    shutil.copy(FIXTURES / "binary.csv", d / "binary.csv")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(d)
        (d / "churn.yaml").write_text(yaml.safe_dump(CONFIG))
        version = train_from_path("churn.yaml", "binary.csv", "models/churn")
        # The name a bundle's metadata carries is shown in the report: whoever wrote the bundle chose it.
        meta = json.loads((version / "metadata.json").read_text())
        (version / "metadata.json").write_text(json.dumps(meta | {"name": XSS}))
        (version / MANIFEST).write_text(json.dumps(_manifest(version), indent=2, sort_keys=True) + "\n")
        yield d


def _tree(folder: Path) -> dict[str, bytes]:
    "Every file under `folder` (hidden ones too), by relative path, with its bytes."
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _user_folder(root: Path) -> Path:
    "A folder that looks like a report (it holds report.ipynb) but also holds a user's own files, hidden ones too."
    out = root / "w"
    out.mkdir()
    (out / "report.ipynb").write_text("{}\n")
    (out / "notes.txt").write_text("mine\n")
    (out / ".env").write_text("SECRET=1\n")
    (out / ".git").mkdir()
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return out


def test_a_folder_with_a_report_and_user_files_is_refused(work: Path, tmp_path: Path) -> None:
    out = _user_folder(tmp_path)
    before = _tree(out)
    with pytest.raises(ReportError, match="not a folder mlprod wrote") as e:
        evaluate_report("models/churn", "binary.csv", out)
    assert ".mlprod-report" in str(e.value)
    assert _tree(out) == before
    r = run_cli(
        "report", "evaluate", "--model-dir", "models/churn", "--data", "binary.csv", "--out-dir", str(out)
    )
    assert r.returncode == 2 and "not a folder mlprod wrote" in r.stderr and "Traceback" not in r.stderr, (
        r.stderr
    )
    assert len(r.stderr.strip().splitlines()) == 1
    assert _tree(out) == before


def test_a_report_folder_holding_anything_else_is_refused(work: Path, tmp_path: Path) -> None:
    "Even a folder mlprod wrote is refused once something else is put in it: the other file would be lost."
    out = tmp_path / "r"
    evaluate_report("models/churn", "binary.csv", out)
    assert (out / REPORT_MARKER).is_file()
    (out / ".keep").write_text("")
    before = _tree(out)
    with pytest.raises(ReportError, match=r"holds files that are not a report's: \.keep"):
        evaluate_report("models/churn", "binary.csv", out)
    assert _tree(out) == before
    (out / ".keep").unlink()
    evaluate_report("models/churn", "binary.csv", out)  # a folder mlprod wrote, and nothing else: replaced
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            REPORT_MARKER,
            "metrics.json",
            "metrics.json.lineage.json",
            "report.html",
            "report.html.lineage.json",
        ]
        + ["report.ipynb", "report.ipynb.lineage.json"]
    )


def test_the_data_inside_the_output_folder_is_refused(work: Path, tmp_path: Path) -> None:
    out = tmp_path / "w"
    out.mkdir()
    shutil.copy("binary.csv", out / "test.csv")
    before = _tree(out)
    with pytest.raises(ReportError, match="inside the output folder"):
        evaluate_report("models/churn", out / "test.csv", out)
    assert _tree(out) == before
    r = run_cli(
        "report",
        "evaluate",
        "--model-dir",
        "models/churn",
        "--data",
        str(out / "test.csv"),
        "--out-dir",
        str(out),
    )
    assert r.returncode == 2 and "inside the output folder" in r.stderr and "Traceback" not in r.stderr, (
        r.stderr
    )
    assert _tree(out) == before
    # ... and so is a report folder that holds its own input, even one mlprod wrote
    rep = tmp_path / "rep"
    evaluate_report("models/churn", "binary.csv", rep)
    shutil.copy("binary.csv", rep / "metrics.json")  # a report file's name, holding the data
    with pytest.raises(ReportError, match="inside the output folder"):
        evaluate_report("models/churn", rep / "metrics.json", rep)


def test_a_folder_without_the_marker_is_refused_even_if_it_holds_only_report_files(
    work: Path, tmp_path: Path
) -> None:
    out = tmp_path / "old"
    out.mkdir()
    (out / "report.ipynb").write_text("{}\n")
    (out / "report.html").write_text("<html></html>\n")
    with pytest.raises(ReportError, match="not a folder mlprod wrote"):
        evaluate_report("models/churn", "binary.csv", out)
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.ipynb"]


def test_an_empty_or_new_folder_is_fine(work: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    evaluate_report("models/churn", "binary.csv", tmp_path / "empty")
    evaluate_report("models/churn", "binary.csv", tmp_path / "new" / "deeper")
    assert (tmp_path / "empty" / REPORT_MARKER).is_file()
    assert (tmp_path / "new" / "deeper" / "report.html").is_file()


def test_names_and_titles_are_text_not_html(work: Path, tmp_path: Path) -> None:
    "A model's name (from its bundle) and the title parameter hold markup: report.html shows it as text."
    out = tmp_path / "x"
    evaluate_report("models/churn", "binary.csv", out, title=f"Title {XSS}")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img src=x" not in html  # no such element
    assert "&lt;script&gt;alert" in html  # shown, as text
    assert html.count("&lt;script&gt;alert") >= 2  # the title and the model card's name
