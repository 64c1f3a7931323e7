"""report: papermill runs the report notebooks into reproducible report.ipynb, report.html and metrics.json."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
import yaml
from PIL import Image

from mlprod.errors import ReportError
from mlprod.evaluate import evaluate_from_path, higher_is_better
from mlprod.execute import packaged_reports, scrub_paths
from mlprod.lineage import read_lineage
from mlprod.predict import predict_from_path
from mlprod.registry import list_versions, resolve_version
from mlprod.report import (
    REPORTS,
    compare_report,
    evaluate_report,
    run_notebook,
    run_report,
)
from mlprod.train import train_from_path

from conftest import FIXTURES, ROOT

CONFIGS = {
    "classification": {
        "name": "churn",
        "task": "classification",
        "target": "churned",
        "id_col": "customer_id",
        "preprocessing": {"scale": True},
        "candidates": [
            {
                "name": "logreg",
                "class": "sklearn.linear_model.LogisticRegression",
                "params": {"max_iter": 500},
            },
            {
                "name": "forest",
                "class": "sklearn.ensemble.RandomForestClassifier",
                "params": {"n_estimators": 25, "max_depth": 4},
            },
        ],
        "select_by": "roc_auc",
        "seed": 0,
    },
    "regression": {
        "name": "house",
        "task": "regression",
        "target": "price",
        "id_col": "house_id",
        "preprocessing": {"scale": True},
        "candidates": [
            {"name": "ridge", "class": "sklearn.linear_model.Ridge", "params": {"alpha": 1.0}},
            {
                "name": "tree",
                "class": "sklearn.tree.DecisionTreeRegressor",
                "params": {"max_depth": 4},
            },
        ],
        "select_by": "rmse",
        "seed": 0,
    },
}
DATA = {"classification": "data/binary.csv", "regression": "data/regression.csv"}
PLOTS = {
    "classification": ["Confusion matrix", "ROC curve", "Precision-recall curve", "Calibration"],
    "regression": ["Predicted vs actual", "Residuals"],
}
IMPORTANCE = "Permutation feature importance"
TASKS = list(CONFIGS)


# -- fixtures: one workspace, one model root per task, each report run once per module -----------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    "A workspace that is the current folder for the whole module (reports show paths relative to it)."
    d = tmp_path_factory.mktemp("report")
    (d / "data").mkdir()
    for name in ("binary.csv", "regression.csv"):
        shutil.copy(FIXTURES / name, d / "data" / name)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(d)
        yield d


@pytest.fixture(scope="module")
def models(work: Path) -> dict[str, list[Path]]:
    "Per task, the versions of both candidates (selected first), trained from files, so metadata has training data."
    out = {}
    for task, cfg in CONFIGS.items():
        (work / f"{cfg['name']}.yaml").write_text(yaml.safe_dump(cfg))
        best = train_from_path(
            f"{cfg['name']}.yaml", DATA[task], f"models/{cfg['name']}", keep_candidates=True
        )
        others = [Path("models", cfg["name"], v["version"]) for v in list_versions(f"models/{cfg['name']}")]
        best = Path(os.path.relpath(best))
        out[task] = [best, *(v for v in others if v != best)]
    return out


@pytest.fixture(scope="module")
def reports(models: dict[str, list[Path]]) -> Iterator[dict[str, Future]]:
    """The four reports, each run once per module, two at a time (each is a kernel plus the imports of pandas
    and scikit-learn: seconds). The classification evaluation runs twice into the same folder; its job returns
    the bytes of the first run beside the folder."""

    def evaluate_twice() -> tuple[Path, dict[str, bytes]]:
        out = Path("reports/evaluate-classification")
        evaluate_report(Path("models/churn"), DATA["classification"], out)  # the model root: champion/latest
        first = {n: (out / n).read_bytes() for n in ("report.ipynb", "report.html", "metrics.json")}
        evaluate_report(Path("models/churn"), DATA["classification"], out)
        return out, first

    jobs = {
        "evaluate-classification": evaluate_twice,
        "compare-classification": lambda: compare_report(
            models["classification"], DATA["classification"], Path("reports/compare-classification")
        ),
        "evaluate-regression": lambda: evaluate_report(
            Path("models/house"), DATA["regression"], Path("reports/evaluate-regression")
        ),
        "compare-regression": lambda: compare_report(
            models["regression"], DATA["regression"], Path("reports/compare-regression")
        ),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {k: pool.submit(job) for k, job in jobs.items()}


def _report(reports: dict[str, Future], kind: str, task: str) -> Path:
    result = reports[f"{kind}-{task}"].result()
    return result[0] if isinstance(result, tuple) else result


def _sections(html: str) -> dict[str, str]:
    "The HTML between each <h3> heading and the next heading, by the heading's text."
    parts = re.split(r"<h[1-3] id=\"[^\"]*\">", html)
    out = {}
    for part in parts[1:]:
        title = part.split("<", 1)[0].strip()
        out[title] = re.split(r"<h[1-3] ", part, maxsplit=1)[0]
    return out


def _images(html: str) -> dict[str, list[Image.Image]]:
    "The embedded PNGs of the HTML, by their alternative text (the plot's title)."
    out: dict[str, list[Image.Image]] = {}
    for alt, data in re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', html):
        out.setdefault(alt, []).append(Image.open(io.BytesIO(base64.b64decode(data))))
    return out


def _no_absolute_paths(folder: Path, work: Path) -> None:
    for p in folder.iterdir():
        text = re.sub(r"[A-Za-z0-9+/=\\n]{200,}", "", p.read_text(encoding="utf-8"))  # not inside PNG data
        for root in {str(work), str(ROOT), str(Path.home()), sys.prefix}:
            assert root not in text, f"{p.name} holds the absolute path {root}"


# -- the two reports, both tasks ----------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_evaluate_report(task: str, reports: dict[str, Future], work: Path) -> None:
    out = _report(reports, "evaluate", task)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [".mlprod-report"]
        + [f"{n}{s}" for n in ("report.ipynb", "report.html", "metrics.json") for s in ("", ".lineage.json")]
    )
    html = (out / "report.html").read_text(encoding="utf-8")
    images = _images(html)
    assert sorted(images) == sorted([*PLOTS[task], IMPORTANCE]) and html.count("<img ") == len(images)
    for title, pngs in images.items():
        assert len(pngs) == 1 and pngs[0].format == "PNG" and min(pngs[0].size) > 100, title
    sections = _sections(html)
    assert all(f'alt="{t}"' in sections[t] for t in images)  # each plot under its own heading
    assert "<script" not in html and not re.search(r'(src|href)="https?:', html)  # opens offline
    assert "import mlprod.scoring" not in html and "hl-ipython3" not in html  # no input cells
    for part in (
        "Model card",
        "Config",
        "Hyperparameters",
        "Library versions",
        "Training data",
        "Lineage",
        "Metrics",
    ):
        assert part in sections, part
    assert "sha256" in sections["Training data"] and "unchanged" in sections["Training data"]

    # metrics.json is what `mlprod predict` + `mlprod evaluate` give on the same data
    version = resolve_version(Path("models", CONFIGS[task]["name"]))
    preds = predict_from_path(version, DATA[task], work / f"preds-{task}.parquet", proba=True)
    expected = evaluate_from_path(preds, DATA[task], work / f"expected-{task}.json", model_dir=version)
    got = json.loads((out / "metrics.json").read_text())
    assert {k: v for k, v in got.items() if k != "inputs"} == {
        k: v for k, v in expected.items() if k != "inputs"
    }
    assert got["inputs"]["data"]["path"] == DATA[task] and got["inputs"]["model"]["version"] == version.name

    # lineage: the model version (role model) and the data file (role data), relative to the report folder
    for name in ("report.ipynb", "report.html", "metrics.json"):
        record = read_lineage(out / name)
        assert record["step"] == "report" and record["status"] == "ok" and record["report"] == "evaluate"
        roles = {i["role"]: i["path"] for i in record["inputs"]}
        assert roles == {
            "model": f"../../models/{CONFIGS[task]['name']}/{version.name}",
            "data": f"../../{DATA[task]}",
        }
    _no_absolute_paths(out, work)


@pytest.mark.parametrize("task", TASKS)
def test_compare_report(
    task: str, reports: dict[str, Future], models: dict[str, list[Path]], work: Path
) -> None:
    out = _report(reports, "compare", task)
    got = json.loads((out / "metrics.json").read_text())
    labels = [c["name"] for c in CONFIGS[task]["candidates"]]
    selected = json.loads((models[task][0] / "metadata.json").read_text())["candidate"]
    order = [selected, *(n for n in labels if n != selected)]
    assert [m["label"] for m in got["models"]] == order and got["baseline"] == selected
    # the winner, recomputed from each model's own predictions and `evaluate_from_path`
    metric = CONFIGS[task]["select_by"]
    scores = {}
    for label, version in zip(order, models[task], strict=True):
        preds = predict_from_path(version, DATA[task], work / f"p-{task}-{label}.parquet", proba=True)
        m = evaluate_from_path(preds, DATA[task], work / f"m-{task}-{label}.json", model_dir=version)
        scores[label] = m[metric]
        assert next(x for x in got["models"] if x["label"] == label)["metrics"][metric] == m[metric]
    best = (max if higher_is_better(metric) else min)(scores, key=scores.get)
    assert got["select_by"] == metric and got["winner"] == best
    assert got["differences"][order[1]][metric] == pytest.approx(scores[order[1]] - scores[order[0]])

    html = (out / "report.html").read_text(encoding="utf-8")
    images = _images(html)
    assert sorted(images) == sorted([*PLOTS[task], IMPORTANCE])
    if task == "classification":  # one confusion matrix per model, side by side
        (cm,) = images["Confusion matrix"]
        assert cm.width > 1.6 * cm.height
    assert f"<strong>{best}</strong>" in html  # the winner is named at the top
    assert sum(f'<h3 id="{label}">' in html for label in order) == 2  # a model card each
    _no_absolute_paths(out, work)


@pytest.mark.parametrize("kind", ["evaluate", "compare"])
@pytest.mark.parametrize("task", TASKS)
def test_report_says_what_it_measures_in_plain_text(kind: str, task: str, reports: dict[str, Future]) -> None:
    "The importance text names the metric's direction; the parameters table shows plain text, not Python reprs."
    html = (_report(reports, kind, task) / "report.html").read_text(encoding="utf-8")
    metric = CONFIGS[task]["select_by"]
    moved = "drop" if higher_is_better(metric) else "increase"
    text = _sections(html)[IMPORTANCE]
    assert (
        f"{moved} in {metric} when" in text.lower()
        and f"{'increase' if moved == 'drop' else 'drop'} in" not in text
    )
    params = re.findall(r"<th>(\w+)</th>\s*<td>([^<]*)</td>", _sections(html)["Parameters"])
    values = dict(params)
    assert values["title"] == "" and values["trusted_types"] == "" and values["data"] == DATA[task], values
    assert not any(v.startswith(("&#x27;", "'", "[")) for _, v in params), params
    if kind == "compare":  # a list of model folders: comma-joined
        assert values["model_dirs"].count(", ") == len(CONFIGS[task]["candidates"]) - 1, values


def test_two_runs_are_byte_identical(reports: dict[str, Future]) -> None:
    out, first = reports["evaluate-classification"].result()
    for name, before in first.items():
        assert (out / name).read_bytes() == before, f"{name} changed between two runs"
    nb = nbformat.reads(first["report.ipynb"].decode(), as_version=4)
    assert set(nb.metadata) == {"kernelspec", "language_info", "papermill", "mlprod"}
    assert set(nb.metadata.papermill) == {"parameters"} and nb.metadata.mlprod["status"] == "ok"
    assert all(set(c.metadata) <= {"tags"} for c in nb.cells)  # no timestamps, durations, execution records
    assert nb.cells[1].id == "injected-parameters"


# -- failures ---------------------------------------------------------------------------------------------


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("n = 1  # a number")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(s) for s in sources)]
    nbformat.write(nb, path)
    return path


def test_failing_cell_marks_the_report_and_the_kernel_is_this_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A `python3` kernel registered in the user's Jupyter folders, and an IPython start-up file: neither is used.
    fake = tmp_path / "jupyter" / "kernels" / "python3"
    fake.mkdir(parents=True)
    (fake / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["/nonexistent/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "not this one",
                "language": "python",
            }
        )
    )
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-inject.py").write_text("INJECTED = True\n")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))

    nb_path = _notebook(
        tmp_path / "fails.ipynb",
        "import sys\nprint(sys.executable, 'INJECTED' in globals(), n)",
        "# Divide by zero\nn / 0",
        "print('never runs')",
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / ".mlprod-report").write_text("")  # a folder an earlier report run wrote,
    (out / "metrics.json").write_text("{}\n")  # with a stale file of that run
    with pytest.raises(ReportError) as e:
        run_notebook(nb_path, {"n": 7}, out)
    msg = str(e.value)
    assert 'cell "Divide by zero" (In [4]) failed: ZeroDivisionError: division by zero' in msg, msg
    assert msg.startswith(os.path.relpath(out / "report.ipynb")) and "report.html" in msg and "\n" not in msg
    assert not (out / "metrics.json").exists()

    nb = nbformat.read(out / "report.ipynb", as_version=4)
    assert nb.metadata.mlprod["status"] == "failed" and "Divide by zero" in nb.metadata.mlprod["error"]
    ids = [c.id for c in nb.cells]
    assert ids[0] == "mlprod-report-failed" and ids[ids.index("mlprod-failed-cell") + 1] == nb.cells[5].id
    assert nb.cells[5].outputs[0]["ename"] == "ZeroDivisionError" and nb.cells[6].outputs == []
    printed = nb.cells[3].outputs[0]["text"]
    assert printed == f"{scrub_paths(sys.executable)} False 7\n", (
        printed
    )  # this interpreter, no start-up file
    html = (out / "report.html").read_text()
    assert 'id="mlprod-report-failed"' in html and 'href="#mlprod-failed-cell"' in html
    assert 'id="mlprod-failed-cell"' in html and "ZeroDivisionError" in html
    assert read_lineage(out / "report.html")["status"] == "failed"


def test_timeout_is_reported_like_a_failing_cell(tmp_path: Path) -> None:
    nb_path = _notebook(tmp_path / "slow.ipynb", "print('before', n)", "# Sleep\nimport time\ntime.sleep(60)")
    t0 = time.perf_counter()
    with pytest.raises(ReportError) as e:
        run_notebook(nb_path, {}, tmp_path / "out", timeout=1)
    assert time.perf_counter() - t0 < 30
    msg = str(e.value)
    assert re.search(
        r'cell "Sleep"( \(In \[\d\]\))? timed out: CellTimeoutError: the cell ran longer than 1 s', msg
    ), msg
    nb = nbformat.read(tmp_path / "out" / "report.ipynb", as_version=4)
    assert nb.cells[0].id == "mlprod-report-failed" and nb.metadata.mlprod["status"] == "failed"
    before = next(c for c in nb.cells if c.source.startswith("print('before'"))
    assert before.outputs[0]["text"] == "before 1\n"
    slow = next(c for c in nb.cells if c.source.startswith("# Sleep"))
    assert slow.outputs[-1]["output_type"] == "error" and slow.outputs[-1]["ename"] == "CellTimeoutError"
    assert nb.cells[nb.cells.index(slow) - 1].id == "mlprod-failed-cell"
    assert 'href="#mlprod-failed-cell"' in (tmp_path / "out" / "report.html").read_text()


def test_undeclared_parameter_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(
        ReportError, match=r"unknown parameter 'dataset' \(expected one of model_dir, data, out_dir"
    ):
        run_report("evaluate", {"model_dir": "m", "dataset": "x.csv"}, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written
    bare = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(bare, tmp_path / "bare.ipynb")
    with pytest.raises(ReportError, match="no cell is tagged 'parameters'"):
        run_notebook(tmp_path / "bare.ipynb", {"x": 2}, tmp_path / "out")


# -- the report in a real browser ---------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
PROBE = """<script>
window.addEventListener("load", () => {
  const sizes = Array.from(document.images).map(i => {
    const r = i.getBoundingClientRect();
    return [i.naturalWidth, i.naturalHeight, Math.round(r.width), Math.round(r.height), i.complete];
  });
  const out = document.createElement("pre");
  out.id = "mlprod-probe";
  out.textContent = JSON.stringify(sizes);
  document.body.appendChild(out);
});
</script>
"""


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed: `apt-get update && apt-get install -y chromium` (Debian; .ci/run does this)",
)
def test_html_renders_every_image_in_chromium(reports: dict[str, Future], tmp_path: Path) -> None:
    report = _report(reports, "evaluate", "classification") / "report.html"
    html = report.read_text(encoding="utf-8")
    n_images = html.count("<img ")
    assert n_images == len(PLOTS["classification"]) + 1
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _chromium(
        "--virtual-time-budget=10000", "--dump-dom", probe.resolve().as_uri(), profile=tmp_path / "p1"
    ).stdout
    m = re.search(r'<pre id="mlprod-probe">(.*?)</pre>', dom, re.S)
    assert m, "the probe did not run: " + dom[-500:]
    sizes = json.loads(m.group(1))
    assert len(sizes) == n_images
    for natural_w, natural_h, shown_w, shown_h, complete in sizes:
        assert complete and natural_w > 0 and natural_h > 0 and shown_w > 0 and shown_h > 0, sizes

    shot = tmp_path / "report.png"
    _chromium(
        "--window-size=1200,2400", f"--screenshot={shot}", report.resolve().as_uri(), profile=tmp_path / "p2"
    )
    im = Image.open(shot).convert("L")
    assert im.size == (1200, 2400)
    lo, hi = im.getextrema()
    assert lo < 100 and hi > 200  # text and plots on a light page, not a blank one


# -- shipping and the command line ---------------------------------------------------------------------------


def test_report_notebooks_ship_from_nbs_reports() -> None:
    link = ROOT / "mlprod" / "reports"
    assert link.is_symlink() and os.readlink(link) == "../nbs/reports"
    assert packaged_reports() == ROOT / "mlprod" / "reports"
    assert sorted(p.name for p in packaged_reports().glob("*.ipynb")) == sorted(f"{k}.ipynb" for k in REPORTS)
    for kind in REPORTS:
        nb = nbformat.read(ROOT / "nbs" / "reports" / f"{kind}.ipynb", as_version=4)
        assert nb.cells[0].metadata["tags"] == ["parameters"] and nb.metadata.kernelspec.name == "python3"
        assert (
            "import mlprod.scoring as S" in nb.cells[1].source
        )  # the notebooks use the package, not copies of it
    assert (ROOT / "nbs" / "reports" / ".notest").exists()  # nbdev-test leaves them to these tests
    import tomllib

    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert {"reports/*.ipynb", "sql/*.sql"} <= set(package_data["mlprod"])


def test_cli_report_commands(models: dict[str, list[Path]], tmp_path: Path) -> None:
    import mlprod.cli

    if not hasattr(mlprod.cli, "report_app"):
        pytest.skip("the `mlprod report` commands are not merged into nbs/90_cli.ipynb yet")
    from typer.testing import CliRunner

    runner = CliRunner()
    r = runner.invoke(mlprod.cli.app, ["report", "--help"])
    assert r.exit_code == 0 and "evaluate" in r.output and "compare" in r.output
    args = ["--data", DATA["regression"], "--out-dir", str(tmp_path / "r")]
    r = runner.invoke(
        mlprod.cli.app, ["report", "compare", "--model-dir", str(models["regression"][0]), *args]
    )
    assert r.exit_code == 2 and "two or more models" in r.stderr and "Traceback" not in r.output, r.output
    r = runner.invoke(mlprod.cli.app, ["report", "evaluate", "--model-dir", "models/none", *args])
    assert r.exit_code == 2 and r.stderr.startswith("mlprod: bundle error: models/none: no such model folder")


def test_a_folder_that_is_not_a_report_is_never_replaced(
    models: dict[str, list[Path]], tmp_path: Path
) -> None:
    "--out-dir is replaced whole: a folder holding anything but a report is refused before a kernel starts."
    out = tmp_path / "outputs"
    out.mkdir()
    (out / "predictions.jsonl").write_text("{}\n")
    with pytest.raises(ReportError, match="not a folder mlprod wrote .* predictions.jsonl"):
        evaluate_report(models["classification"][0], DATA["classification"], out)
    assert sorted(p.name for p in out.iterdir()) == ["predictions.jsonl"]
    with pytest.raises(ReportError, match="holds the current folder"):
        evaluate_report(models["classification"][0], DATA["classification"], Path("."))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


REPORT_MODULES = ("report", "scoring", "card", "figures", "execute")


def test_a_comparison_of_one_model_names_its_parameter_and_the_command_its_flag(tmp_path: Path) -> None:
    "The library speaks of `model_dirs`; the `mlprod` command's line names the flag that gives them."
    from mlprod.cli import _error_line

    with pytest.raises(ReportError) as e:
        compare_report([tmp_path / "m"], tmp_path / "d.csv", tmp_path / "out")
    msg = str(e.value)
    assert msg == "a comparison needs two or more models, got 1 (expected model_dirs=[A, B])", msg
    assert e.value.option is not None and e.value.option[0] == "model_dirs"
    assert _error_line(e.value) == msg + " (CLI: --model-dir A --model-dir B)"
    assert not (tmp_path / "out").exists()


def test_the_report_modules_name_no_flag_of_the_command() -> None:
    "The report's modules name the library's parameters; only the CLI knows `--model-dir`, `--out-dir`, ..."
    package = ROOT / "mlprod"
    flags = re.compile(r"--(model-dir|data|out-dir|title|timeout|version-skew|trusted-type|allowed-format)\b")
    for name in REPORT_MODULES:
        path = package / f"{name}.py"
        if path.exists():  # the report's parts, as far as they are split
            text = path.read_text(encoding="utf-8")
            assert not flags.search(text) and "settings.ini" not in text, name
