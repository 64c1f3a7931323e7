"""The bad-input corpus (tests/bad_inputs/) against every command that reads that kind of input.

Each (case, slot) runs twice: the Python function behind the command (the exact MlprodError kind), and the
command itself in-process (click's runner on the command typer builds from `mlprod.cli.app`, with the same
MlprodGroup error handling as the installed `mlprod`: exit 2, one line on stderr, no traceback). Either way nothing may be written and no existing
file may change: the whole workspace is compared byte for byte before and after. A few runs go through the
installed command in a subprocess. Cases that need permissions to mean something run as an unprivileged user
in a forked child (the tests run as root, which reads and writes whatever the mode bits say).
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from bad_inputs import figures
from bad_inputs.corpus import CASES, OK, Case, Made
from click.testing import CliRunner as ClickRunner

import mlprod.errors
from mlprod.cli import app
from mlprod.errors import MlprodError

FIXTURES = Path(__file__).parent / "fixtures"
NOBODY = 65534
GOOD_CONFIG = {
    "name": "churn",
    "task": "classification",
    "target": "churned",
    "id_col": "customer_id",
    "features": ["age", "income", "tenure_months", "score", "city", "plan"],
    "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 300}},
    "numeric": ["age", "income", "tenure_months", "score"],
    "preprocessing": {"scale": True},
    "validation": {"test_size": 0.2, "stratify": True},
    "seed": 0,
}
OLD = "an earlier output: no failure may touch it\n"


@pytest.fixture(scope="module", autouse=True)
def _figures(request: pytest.FixtureRequest) -> Iterator[None]:
    "Count this file's runs into the figures `make test` prints, and time it."
    figures.set("bad_inputs.cases", len(CASES))
    figures.set("bad_inputs.slots", len({s for c in CASES for s in c.slots()}))
    known_runs = [(c.id, s, h) for c in CASES for s in c.slots() for h in ("python", "cli") if known(c, s, h)]
    figures.set("bad_inputs.known", len(known_runs))
    with figures.register(request.config, "tests/test_bad_inputs.py"):
        yield


# --- the workspace ---------------------------------------------------------------------------------------


@dataclass
class Workspace:
    dir: Path
    root: Path  # models/churn: a model root with one version
    version: Path
    frame: Any  # the good table: (80, 8)

    def path(self, rel: str) -> Path:
        return self.dir / rel


@pytest.fixture(scope="module")
def ws() -> Iterator[Workspace]:
    "A folder any user may enter and write (the unprivileged runs need that), with good inputs and old outputs."
    from mlprod.tables import read_table, write_table
    from mlprod.train import train_from_path

    d = Path(tempfile.mkdtemp(prefix="mlprod-bad-inputs-"))
    d.chmod(0o777)
    try:
        frame = read_table(FIXTURES / "binary.csv").head(80)  # (80, 8)
        write_table(frame, d / "data.csv")
        write_table(frame.head(10), d / "truth.csv")  # ids c0000..c0009, as the predictions files in rows/
        shutil.copyfile(
            Path(__file__).parent / "bad_inputs" / "rows" / "predictions_good.csv", d / "preds.csv"
        )
        (d / "churn.yaml").write_text(yaml.safe_dump(GOOD_CONFIG, sort_keys=False))
        (d / "q.sql").write_text("SELECT * FROM t\n")
        (d / "settings.ini").write_text("[mlprod]\n")  # the nearest settings.ini: nothing from above leaks in
        cwd = os.getcwd()
        os.chdir(d)
        try:
            version = train_from_path("churn.yaml", "data.csv", "models/churn")
        finally:
            os.chdir(cwd)
        old = d / "old"  # earlier outputs, copied into each run's folder: no failure may touch them
        old.mkdir()
        for name in ("old.jsonl", "old.json", "old_train.csv", "old_test.csv", "old_fetch.csv"):
            (old / name).write_text(OLD)
        (old / "old_report").mkdir()
        for name in ("report.ipynb", "report.html", "metrics.json"):
            (old / "old_report" / name).write_text(OLD)
        (old / "old_report" / ".mlprod-report").write_text(OLD)  # a folder an earlier report run wrote
        (d / "cases").mkdir(mode=0o777)
        (d / "cases").chmod(0o777)
        yield Workspace(d, d / "models" / "churn", d / version, frame)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def snapshot(d: Path) -> dict[str, str]:
    "Every folder and file under `d` (hidden temporaries included), files by sha256."
    out = {}
    for top, dirs, files in os.walk(d):
        for n in dirs:
            out[os.path.relpath(os.path.join(top, n), d)] = "folder"
        for n in files:
            p = os.path.join(top, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, d)] = hashlib.sha256(f.read()).hexdigest()
    return out


# --- how each slot runs ------------------------------------------------------------------------------------


class KernelStarted(Exception):
    "Raised by the stand-in for the report's kernel: bad input must be refused before a kernel starts."


@dataclass
class Run:
    cli: list[str]  # arguments of `mlprod`
    py: Callable[[], Any]  # the Python function behind the command
    command: tuple[str, ...]  # the command's words, to see whether the CLI has it yet
    new_outputs: tuple[str, ...] = ()  # what a successful run must write (relative to the workspace)


def _rel(p: Path | str, base: Path) -> str:
    return os.path.relpath(p, base)


def plan(slot: str, made: Made, ws: Workspace, folder: Path, ok: bool) -> Run:
    "The command line and the Python call that feed `made` to `slot`; outputs are old ones, or fresh when `ok`."
    from mlprod import bundle, data, evaluate, predict, query, registry, report, train
    from mlprod.settings import load_settings

    cmd, _, role = slot.partition(".")
    bad = _rel(made.path, ws.dir)
    f = _rel(folder, ws.dir)
    settings: list[str] = []
    if role == "settings":
        settings = ["--settings", bad]
    given = lambda name, default: bad if role == name else default  # noqa: E731

    if cmd == "train":
        out = given("out", f"{f}/models" if ok else f"{f}/churn")
        cfg, dat = given("config", "churn.yaml"), given("data", "data.csv")
        return Run(
            [*settings, "train", "--config", cfg, "--train-data", dat, "--out-dir", out],
            (lambda: load_settings(Path(bad)))
            if settings
            else (lambda: train.train_from_path(cfg, dat, out)),
            ("train",),
            (f"{f}/models",) if ok else (),
        )
    if cmd == "predict":
        out = given("out", f"{f}/out.jsonl" if ok else f"{f}/old.jsonl")
        model, inp = given("model", "models/churn"), given("input", "data.csv")
        if made.extra.get("same_as_input"):
            inp = out
        return Run(  # one process: a pool costs 0.3 s a run here; test_predict_in_workers covers the others
            [*settings, "predict", "--model-dir", model, "--input", inp, "--output", out, "--workers", "1"],
            (lambda: load_settings(Path(bad)))
            if settings
            else (lambda: predict.predict_from_path(model, inp, out, workers=1)),
            ("predict",),
            (out,) if ok else (),
        )
    if cmd == "evaluate":
        out = given("out", f"{f}/metrics.json" if ok else f"{f}/old.json")
        preds, truth = given("predictions", "preds.csv"), given("truth", "truth.csv")
        if made.extra.get("same_as_input"):
            truth = out
        model = given("model", "models/churn" if settings else None)
        how = ["--model-dir", model] if model else ["--task", "classification", "--id-col", "customer_id"]
        how += [] if model else ["--target-col", "churned"]
        kw = {"model_dir": model} if model else {}
        kw |= {} if model else {"task": "classification", "id_col": "customer_id", "target_col": "churned"}
        return Run(
            [*settings, "evaluate", "--predictions", preds, "--truth", truth, "--output", out, *how],
            (lambda: load_settings(Path(bad)))
            if settings
            else (lambda: evaluate.evaluate_from_path(preds, truth, out, **kw)),
            ("evaluate",),
            (out,) if ok else (),
        )
    if cmd == "split":
        a, b = (f"{f}/a.csv", f"{f}/b.csv") if ok else (f"{f}/old_train.csv", f"{f}/old_test.csv")
        a = given("out", a)
        inp = given("input", "data.csv")
        if made.extra.get("same_as_input"):
            inp = a
        return Run(
            [*settings, "data", "split", inp, "--train-out", a, "--test-out", b],
            (lambda: load_settings(Path(bad))) if settings else (lambda: data.split_file(inp, a, b)),
            ("data", "split"),
            (a, b) if ok else (),
        )
    if cmd == "fetch":
        out = given("out", f"{f}/fetched.csv" if ok else f"{f}/old_fetch.csv")
        sql, table = given("sql", "q.sql"), given("table", "data.csv")
        return Run(
            [*settings, "data", "fetch", "--sql", sql, "--output", out, "--table", f"t={table}"],
            lambda: query.fetch(sql, out, tables={"t": table}),
            ("data", "fetch"),
            (out,) if ok else (),
        )
    if cmd == "report":
        out = given("out", f"{f}/report" if ok else f"{f}/old_report")
        model, dat = given("model", "models/churn"), given("data", "data.csv")
        return Run(
            [*settings, "report", "evaluate", "--model-dir", model, "--data", dat, "--out-dir", out],
            (lambda: load_settings(Path(bad)))
            if settings
            else (lambda: report.evaluate_report(model, dat, out)),
            ("report", "evaluate"),
        )
    if cmd == "models":
        path = given("verify", given("show", "models/churn"))
        if role == "promote":
            root, version = _rel(made.extra["root"], ws.dir), made.extra["version"]
            return Run(
                ["models", "promote", root, version],
                lambda: registry.promote(root, version),
                ("models", "promote"),
            )
        if role == "show":
            return Run(["models", "show", path], lambda: registry.read_version(path), ("models", "show"))
        if role == "list":  # the model root of the version
            root = _rel(made.extra["root"], ws.dir)
            return Run(["models", "list", root], lambda: registry.list_versions(root), ("models", "list"))
        return Run(
            [*settings, "models", "verify", path],
            (lambda: load_settings(Path(bad))) if settings else (lambda: bundle.load_bundle(path)),
            ("models", "verify"),
        )
    raise AssertionError(f"unknown slot {slot}")


def cli_has(words: tuple[str, ...]) -> bool:
    "Whether the `mlprod` app has this command (some are still being wired)."
    group = _command()
    for w in words:
        sub = getattr(group, "commands", {}).get(w)
        if sub is None:
            return False
        group = sub
    return True


# --- running, as root or as nobody ------------------------------------------------------------------------


def _call_py(run: Run) -> tuple[str, str, str]:
    "('ok', '', '') or ('mlprod', kind class name, message) or ('other', type name, repr)."
    try:
        run.py()
    except MlprodError as e:
        return "mlprod", type(e).__name__, str(e)
    except Exception as e:  # the very thing this file is looking for: any other exception is a bug
        import traceback

        frame = traceback.extract_tb(e.__traceback__)[-1]
        return "other", type(e).__name__, f"{e!r} at {Path(frame.filename).name}:{frame.lineno} {frame.name}"
    return "ok", "", ""


@functools.cache
def _command() -> Any:
    "The click command typer builds from `mlprod.cli.app` (its MlprodGroup included), built once: ~6 ms a build."
    import typer.main

    return typer.main.get_command(app)


def _call_cli(run: Run) -> tuple[int, str, str, str]:
    r = ClickRunner().invoke(_command(), run.cli, prog_name="mlprod")
    exc = "" if r.exception is None or isinstance(r.exception, SystemExit) else repr(r.exception)
    return r.exit_code, r.stdout, r.stderr, exc


def as_nobody(fn: Callable[[], Any]) -> Any:
    "Run `fn` in a forked child that has dropped root for an unprivileged user; return its (picklable) result."
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            payload = pickle.dumps(("done", fn()))
        except BaseException as e:  # noqa: BLE001
            payload, code = pickle.dumps(("crashed", repr(e))), 1
        with os.fdopen(wfd, "wb") as w:
            w.write(payload)
        os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as r:
        data = r.read()
    os.waitpid(pid, 0)
    status, value = pickle.loads(data)
    assert status == "done", f"the unprivileged child crashed: {value}"
    return value


@functools.cache
def _nobody_reads_nothing_here() -> bool:
    "Whether dropping root works here, and then a file of mode 000 cannot be read (it is the point of the cases)."
    d = Path(tempfile.mkdtemp(prefix="mlprod-probe-"))
    try:
        d.chmod(0o755)
        (d / "secret").write_text("x")
        (d / "secret").chmod(0)

        def probe() -> str:
            try:
                (d / "secret").read_text()
                return "read"
            except PermissionError:
                return "refused"

        return as_nobody(probe) == "refused"
    except AssertionError:  # the child could not drop root (no CAP_SETUID in this container)
        return False
    finally:
        shutil.rmtree(d, ignore_errors=True)


def runner(case: Case) -> Callable[[Callable[[], Any]], Any]:
    "How to run `case`: as we are, or as an unprivileged user when it needs permissions to mean something."
    if not case.nobody or os.geteuid() != 0:  # an ordinary user: mode bits already apply
        return lambda fn: fn()
    if not _nobody_reads_nothing_here():
        pytest.skip(
            "running as root, and root cannot drop to an unprivileged user here: mode bits do not apply"
        )
    return as_nobody


# --- the test ----------------------------------------------------------------------------------------------

# Problems found in modules others were changing while this was written: each is a strict xfail, so the mark
# fails loudly the day the fix lands; remove it then. None is open today.


def known(case: Case, slot: str, how: str) -> str | None:
    "Why (case, slot) fails today, if it does for a reason outside the files this test may change."
    return None


def _pairs(how: str) -> list[Any]:
    out = []
    for case in CASES:
        for slot in case.slots():
            reason = known(case, slot, how)
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            out.append(pytest.param(case, slot, id=f"{case.id}-{slot}", marks=marks))
    return out


@pytest.fixture
def folder(ws: Workspace, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    "A fresh folder for one run, the workspace as current folder, and no report kernel."
    import mlprod.report

    def no_kernel(*a: Any, **k: Any) -> Any:
        raise KernelStarted("a report kernel started on bad input: it must be refused before")

    monkeypatch.setattr(mlprod.report, "execute", no_kernel)
    monkeypatch.chdir(ws.dir)
    d = ws.dir / "cases" / request.node.callspec.id
    shutil.copytree(ws.path("old"), d)
    d.chmod(0o777)  # the unprivileged runs may write here: what stops them must be the bad input
    if str(request.node.callspec.params.get("slot", "")).startswith("train."):
        shutil.copytree(ws.root, d / "churn")  # the model root a failed training must leave as it was
        (d / "churn").chmod(0o777)
    try:
        yield d
    finally:
        for p in [d, *d.rglob("*")]:
            if not p.is_symlink():
                p.chmod(0o777 if p.is_dir() else 0o666)
        shutil.rmtree(d, ignore_errors=True)


def _check_unchanged(ws: Workspace, before: dict[str, str], how: str) -> None:
    "Nothing written, nothing changed, nothing left behind (hidden temporaries included), anywhere."
    after = snapshot(ws.dir)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"{how}: files written, changed or left behind: {changed}"


def _named(made: Made, ws: Workspace, slot: str) -> str:
    "The path the message must name: the bad input as given (promote names the model root it changes)."
    if slot == "models.promote":
        return _rel(made.extra["root"], ws.dir)
    return _rel(made.named or made.path, ws.dir)


@pytest.mark.parametrize(("case", "slot"), _pairs("python"))
@figures.passed_only
def test_python(case: Case, slot: str, ws: Workspace, folder: Path) -> None:
    "The function behind the command: the exact kind, one line naming the file; nothing written."
    made = case.make(folder, slot, ws)
    want = case.expected(slot, "python")
    run = plan(slot, made, ws, folder, want == OK)
    before = snapshot(ws.dir)
    status, name, message = runner(case)(lambda: _call_py(run))
    figures.count("bad_inputs.python", case.id, slot)
    if want == OK:
        assert status == "ok", f"expected success, got {name}: {message}"
        _check_success(run, ws, folder, before)
        return
    kind, fragment = want
    assert status == "mlprod", f"expected {kind.__name__}, got {name}: {message}"
    assert name == kind.__name__, f"expected {kind.__name__}, got {name}: {message}"
    assert "\n" not in message and fragment in message, message
    assert _named(made, ws, slot) in message, f"the message does not name {_named(made, ws, slot)}: {message}"
    _check_unchanged(ws, before, "python")


@pytest.mark.parametrize(("case", "slot"), _pairs("cli"))
@figures.passed_only
def test_cli(case: Case, slot: str, ws: Workspace, folder: Path) -> None:
    "The command, in-process: exit 2, exactly one line on stderr naming the file, no traceback; nothing written."
    made = case.make(folder, slot, ws)
    want = case.expected(slot, "cli")
    run = plan(slot, made, ws, folder, want == OK)
    if not cli_has(run.command):
        pytest.skip(f"`mlprod {' '.join(run.command)}` is not wired yet")
    before = snapshot(ws.dir)
    code, stdout, stderr, exc = runner(case)(lambda: _call_cli(run))
    figures.count("bad_inputs.cli", case.id, slot)
    assert not exc and "Traceback" not in stderr + stdout, f"an exception escaped: {exc}{stderr}"
    if want == OK:
        assert code == 0, stderr
        _check_success(run, ws, folder, before)
        return
    kind, fragment = want
    assert code == 2, f"exit {code}: {stderr}"
    assert stdout == "", stdout
    assert stderr.endswith("\n") and stderr.count("\n") == 1, f"not one line: {stderr!r}"
    assert stderr.startswith(f"mlprod: {kind.kind}: "), stderr
    assert fragment in stderr, stderr
    assert _named(made, ws, slot) in stderr, f"the message does not name {_named(made, ws, slot)}: {stderr}"
    _check_unchanged(ws, before, "cli")


def _check_success(run: Run, ws: Workspace, folder: Path, before: dict[str, str]) -> None:
    "A run that must succeed: its outputs are whole, no temporary is left, nothing outside `folder` changed."
    from mlprod.bundle import load_bundle
    from mlprod.registry import read_aliases
    from mlprod.tables import read_table

    after = snapshot(ws.dir)
    inside = _rel(folder, ws.dir) + os.sep
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    outside = [k for k in changed if not k.startswith(inside)]
    assert not outside, f"files outside the run's folder changed: {outside}"
    if run.command == ("models", "promote"):  # its one job: point the champion alias at the version
        root, version = Path(run.cli[-2]), run.cli[-1]
        assert read_aliases(root)["champion"] == version
        journaled = {"aliases.json", "history.jsonl"}  # no lock file, no temporary
        assert {Path(k).name for k in changed} <= journaled, changed
        return
    assert all(before[k] == after.get(k) for k in before if k.startswith(inside)), "an existing file changed"
    hidden = [p for p in folder.rglob(".*") if ".tmp" in p.name]
    assert not hidden, f"temporaries left: {hidden}"
    for out in run.new_outputs:
        p = ws.dir / out
        if p.is_dir():
            assert load_bundle(p).schema.id_col == "customer_id"
        else:
            read_table(p, allow_empty=run.command == ("data", "fetch"))


@pytest.mark.parametrize(
    "case_id", ["wrong_type", "inf_feature", "missing_feature_column", "ragged_row", "jsonl_broken_line"]
)
@figures.passed_only
def test_predict_in_workers(case_id: str, ws: Workspace, folder: Path) -> None:
    "An error met in a worker process reaches the caller as the same kind and line as in one process."
    from mlprod.predict import predict_from_path

    case = next(c for c in CASES if c.id == case_id)
    made = case.make(folder, "predict.input", ws)
    kind, fragment = case.expected("predict.input", "python")
    inp, out = _rel(made.path, ws.dir), _rel(folder / "old.jsonl", ws.dir)
    before = snapshot(ws.dir)
    with pytest.raises(MlprodError) as info:
        predict_from_path("models/churn", inp, out, workers=2, chunk_rows=2)  # a chunk per worker, and more
    figures.count("bad_inputs.python", case.id, "predict.input (2 workers)")
    assert type(info.value) is kind and fragment in str(info.value) and inp in str(info.value), info.value
    assert "\n" not in str(info.value)
    assert snapshot(ws.dir) == before


# --- a few runs through the installed command --------------------------------------------------------------


def _installed(*args: str, cwd: Path, user: int | None = None) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "mlprod")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPROD")}
    return subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env, user=user
    )


SUBPROCESS = [  # chosen to fail before the heavy imports: a real process costs 0.5-2 s, sklearn's import 3 s
    ("ragged_row", "split.input"),
    ("settings_bad_choice", "predict.settings"),
    ("bundle_tampered_model", "models.verify"),
]


@pytest.mark.parametrize(("case_id", "slot"), SUBPROCESS, ids=[f"{c}-{s}" for c, s in SUBPROCESS])
@figures.passed_only
def test_installed_command(case_id: str, slot: str, ws: Workspace, folder: Path) -> None:
    "The real `mlprod` process: exit 2, stdout empty, exactly one line on stderr, nothing written."
    case = next(c for c in CASES if c.id == case_id)
    made = case.make(folder, slot, ws)
    run = plan(slot, made, ws, folder, False)
    if not cli_has(run.command):
        pytest.skip(f"`mlprod {' '.join(run.command)}` is not wired yet")
    kind, fragment = case.expected(slot, "cli")
    before = snapshot(ws.dir)
    r = _installed(*run.cli, cwd=ws.dir)
    figures.count("bad_inputs.subprocess", case.id, slot)
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"mlprod: {kind.kind}: "), r.stderr
    assert fragment in r.stderr and _named(made, ws, slot) in r.stderr, r.stderr
    assert snapshot(ws.dir) == before


@figures.passed_only
def test_corpus_is_large_and_covers_every_role() -> None:
    "The issue asks for at least 40 cases; every role has cases, and each case runs in at least one slot."
    assert len(CASES) >= 40
    assert {c.role for c in CASES} == {
        "table",
        "rows",
        "predictions",
        "config",
        "settings",
        "sql",
        "bundle",
        "output",
    }
    assert all(c.slots() for c in CASES)
    kinds = {k[0] for c in CASES for k in c.expect.values() if k != OK}
    assert all(issubclass(k, MlprodError) and k is not MlprodError for k in kinds)
    assert all(getattr(mlprod.errors, k.__name__) is k for k in kinds)
