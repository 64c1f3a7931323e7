"""Hostile bundles and hostile conditions: bundle files of valid JSON but the wrong shape, non-UTF-8 bytes and
missing files, read by every reader of a bundle (load_bundle, list_versions, read_version and the commands);
save_bundle meeting a full disk; `train` and `report evaluate` under a file size limit, an injected ENOSPC and a
real full file system; lineage chains thousands of records deep. Each is one MlprodError line (exit 2 through a
command), never a traceback, a hang or a half-written output."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from bad_inputs import figures
from typer.testing import CliRunner

import mlprod.commit
import mlprod.io
from mlprod.bundle import load_bundle, save_bundle
from mlprod.cli import app
from mlprod.errors import BundleError, MlprodError
from mlprod.layout import MANIFEST
from mlprod.registry import list_versions, promote
from mlprod.verify import _manifest

from conftest import small_tmpfs

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DATA = FIXTURES / "binary.csv"
CONFIG = {
    "name": "churn",
    "task": "classification",
    "target": "churned",
    "id_col": "customer_id",
    "features": ["age", "income", "tenure_months", "score", "city", "plan"],
    "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 300}},
    "numeric": ["age", "income", "tenure_months", "score"],
    "preprocessing": {"scale": True},
    "seed": 0,
}
MLPROD = Path(sys.executable).parent / "mlprod"


@pytest.fixture(scope="module", autouse=True)
def _figures(request: pytest.FixtureRequest) -> Iterator[None]:
    with figures.register(request.config, "tests/test_hostile_bundles.py"):
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    "A model root with one version of the churn model (80 rows of the binary fixture)."
    from mlprod.train import train_from_path

    work = tmp_path_factory.mktemp("trained")
    (work / "churn.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    shutil.copyfile(DATA, work / "data.csv")
    version = train_from_path(work / "churn.yaml", work / "data.csv", work / "models" / "churn")
    return version.parent


def _state(root: Path) -> dict[str, str]:
    "Every entry under `root` (hidden ones too), files by sha256."
    out = {}
    for p in sorted(root.rglob("*")):
        out[p.relative_to(root).as_posix()] = (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "/"
        )
    return out


def _cli(*args: str, within: int = 120) -> Any:
    "The command in-process; one that runs longer than `within` seconds fails the test (no hang of the suite)."

    def stop(*_: object) -> None:
        raise TimeoutError(f"mlprod {' '.join(args)} took more than {within} s")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(within)
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _one_line(r: Any, kind: str = "") -> str:
    "The command failed as promised: exit 2, one line on stderr (of `kind`), nothing else, no traceback."
    err = r.stderr
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert "Traceback" not in r.output and err.startswith(f"mlprod: {kind}"), err
    return err


# --- bundle files of the wrong shape -------------------------------------------------------------------------


def _json(name: str, **changes: Any) -> Callable[[Path], None]:
    def change(version: Path) -> None:
        d = json.loads((version / name).read_text())
        d.update(changes)
        (version / name).write_text(json.dumps(d))

    return change


def _bytes(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda version: (version / name).write_bytes(data)


def _gone(name: str) -> Callable[[Path], None]:
    return lambda version: (version / name).unlink()


LOAD, SHOW, LIST, LINEAGE = "load", "show", "list", "lineage"
META = {LOAD, SHOW, LIST, LINEAGE}  # every reader of metadata.json
# (case, change, the file the message names, what it must say, the readers that must refuse it; the others pass)
SHAPES: list[tuple[str, Callable[[Path], None], str, str, set[str]]] = [
    ("metadata_a_list", _bytes("metadata.json", b"[1, 2]\n"), "metadata.json", "got a list", META),
    ("metadata_a_number", _bytes("metadata.json", b"3\n"), "metadata.json", "got a number", META),
    ("metadata_null", _bytes("metadata.json", b"null\n"), "metadata.json", "got null", META),
    ("metadata_a_string", _bytes("metadata.json", b'"x"\n'), "metadata.json", "got a string", META),
    ("versions_a_string", _json("metadata.json", versions="abc"), "metadata.json", "'versions'", META),
    ("golden_rows_a_string", _json("metadata.json", golden_rows="8"), "metadata.json", "golden_rows", META),
    ("golden_rows_negative", _json("metadata.json", golden_rows=-1), "metadata.json", "golden_rows", META),
    (
        "model_format_a_list",
        _json("metadata.json", model_format=["joblib"]),
        "metadata.json",
        "model_format",
        META,
    ),
    (
        "training_data_a_string",
        _json("metadata.json", training_data="x"),
        "metadata.json",
        "'training_data'",
        META,
    ),
    (
        "training_data_of_numbers",
        _json("metadata.json", training_data=[1]),
        "metadata.json",
        "'training_data[0]'",
        META,
    ),
    ("git_a_string", _json("metadata.json", git="x"), "metadata.json", "'git'", META),
    ("lineage_a_string", _json("metadata.json", lineage="x"), "metadata.json", "'lineage'", META),
    (
        "hyperparameters_a_list",
        _json("metadata.json", hyperparameters=[1]),
        "metadata.json",
        "'hyperparameters'",
        META,
    ),
    ("split_a_string", _json("metadata.json", split="x"), "metadata.json", "'split'", META),
    ("metadata_not_utf8", _bytes("metadata.json", b'{"name": "\xff"}\n'), "metadata.json", "UTF-8", META),
    ("metadata_missing", _gone("metadata.json"), "metadata.json", "missing", {LOAD, SHOW}),
    ("metrics_a_list", _bytes("metrics.json", b"[1]\n"), "metrics.json", "got a list", {LOAD, SHOW, LIST}),
    (
        "selection_a_string",
        _json("metrics.json", selection="x"),
        "metrics.json",
        "'selection'",
        {LOAD, SHOW, LIST},
    ),
    (
        "metrics_not_utf8",
        _bytes("metrics.json", b'{"a": "\xff"}\n'),
        "metrics.json",
        "UTF-8",
        {LOAD, SHOW, LIST},
    ),
    ("schema_a_list", _bytes("schema.json", b"[1]\n"), "schema.json", "got a list", {LOAD}),
    ("schema_features_a_string", _json("schema.json", features="abc"), "schema.json", "'features'", {LOAD}),
    ("schema_classes_a_string", _json("schema.json", classes="abc"), "schema.json", "'classes'", {LOAD}),
    ("schema_missing", _gone("schema.json"), "schema.json", "missing", {LOAD}),
    ("config_not_utf8", _bytes("config.yaml", b"name: \xff\n"), "config.yaml", "UTF-8", {LOAD, SHOW}),
    ("config_not_yaml", _bytes("config.yaml", b"a: [\n"), "config.yaml", "YAML", {LOAD, SHOW}),
    ("config_a_list", _bytes("config.yaml", b"- 1\n- 2\n"), "config.yaml", "got a list", {LOAD, SHOW}),
    ("config_missing", _gone("config.yaml"), "config.yaml", "", set()),
    ("metrics_missing", _gone("metrics.json"), "metrics.json", "", set()),
]


def _bad_version(trained: Path, tmp_path: Path, change: Callable[[Path], None]) -> Path:
    "A copy of the trained model root whose version has `change` made, its manifest rewritten to vouch for it."
    root = tmp_path / "churn"
    shutil.copytree(trained, root)
    version = next(p for p in root.iterdir() if p.is_dir())
    change(version)
    (version / MANIFEST).write_text(json.dumps(_manifest(version), indent=2, sort_keys=True) + "\n")
    return version


def _refused(e: MlprodError, version: Path, file: str, fragment: str) -> None:
    msg = str(e)
    assert isinstance(e, BundleError), f"{type(e).__name__}: {msg}"
    assert "\n" not in msg and str(version / file) in msg and fragment in msg, msg


@pytest.mark.parametrize(
    ("case", "change", "file", "fragment", "refused"), SHAPES, ids=[s[0] for s in SHAPES]
)
@figures.passed_only
def test_every_reader_of_a_bundle_refuses_a_wrong_shape_in_one_line(
    case: str,
    change: Callable[[Path], None],
    file: str,
    fragment: str,
    refused: set[str],
    trained: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    "load_bundle, list_versions, read_version and trace, then models verify / show / list, predict and lineage."
    from mlprod.lineage import trace
    from mlprod.registry import read_version

    version = _bad_version(trained, tmp_path, change)
    monkeypatch.chdir(tmp_path)
    calls: dict[str, Callable[[], Any]] = {
        LOAD: lambda: load_bundle(version),
        SHOW: lambda: read_version(version),
        LIST: lambda: list_versions(version.parent),
        LINEAGE: lambda: trace(version),
    }
    commands = {
        LOAD: [
            ["models", "verify", str(version)],
            ["predict", "--model-dir", str(version), "--input", str(DATA), "--output", "p.jsonl"],
        ],
        SHOW: [["models", "show", str(version)]],
        LIST: [["models", "list", str(version.parent)]],
        LINEAGE: [["lineage", str(version)]],
    }
    before = _state(version.parent)
    runs = 0
    for reader, call in calls.items():
        runs += 1
        if reader in refused:
            with pytest.raises(MlprodError) as e:
                call()
            _refused(e.value, version, file, fragment)
        elif reader != LINEAGE:
            call()  # the others read it as before
        else:  # tracing a model whose training data is not found from here: a link marked missing, or one line
            try:
                call()
            except MlprodError:
                pass
        for args in commands[reader]:
            runs += 1
            r = _cli(*args)
            if reader in refused:
                err = _one_line(r)
                assert str(version / file) in err and fragment in err, err
            elif reader != LINEAGE:  # lineage says the training data is not found from here: exit 2 by design
                assert r.exit_code == 0, (args, r.output)
    assert _state(version.parent) == before  # nothing written into the model
    assert (LOAD in refused) != (tmp_path / "p.jsonl").exists()  # no predictions from a refused model
    figures.hostile("tracebacks", f"bundle {case}", runs=runs)


@figures.passed_only
def test_a_golden_row_of_the_wrong_shape_is_an_integrity_error(trained: Path, tmp_path: Path) -> None:
    "golden.jsonl lines that are not objects, or expected outputs of the wrong type: one line, the file named."
    cases = {
        "golden_rows_lists": b"[1, 2]\n",
        "golden_not_utf8": b'{"customer_id": "\xff"}\n',
    }
    for n, (case, data) in enumerate(cases.items()):
        version = _bad_version(trained, tmp_path / str(n), _bytes("golden.jsonl", data))
        with pytest.raises(BundleError) as e:
            load_bundle(version)
        assert str(version / "golden.jsonl") in str(e.value) and "\n" not in str(e.value)
        _one_line(_cli("models", "verify", str(version)))
        figures.hostile("tracebacks", f"bundle {case}", runs=2)


# --- save_bundle on a full disk -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.ENAMETOOLONG])
@pytest.mark.parametrize("where", ["metadata.json", "aliases.json"])
@figures.passed_only
def test_save_bundle_turns_an_os_error_into_one_bundle_error_and_leaves_nothing(
    code: int, where: str, trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    "The disk fills up while the version's metadata (or, after it is in place, the alias) is written."
    root = tmp_path / "churn"
    shutil.copytree(trained, root)
    bundle = load_bundle(root)
    before = _state(root)
    real = mlprod.io.write_json

    def write_json(path: str | Path, obj: Any) -> Path:
        if Path(path).name == where:
            raise OSError(code, os.strerror(code), str(path))
        return real(path, obj)

    monkeypatch.setattr(mlprod.io, "write_json", write_json)
    with pytest.raises(BundleError) as e:
        save_bundle(bundle, root)
    msg = str(e.value)
    assert "\n" not in msg and str(root) in msg and os.strerror(code) in msg, msg
    assert _state(root) == before  # no version, no temporary, aliases.json byte for byte
    figures.hostile("hangs", f"save_bundle {errno.errorcode[code]} at {where}")


@pytest.fixture
def read_only_root(trained: Path, tmp_path: Path) -> Iterator[Path]:
    "A copy of the trained model root on a file system mounted read-only (skipped where mounting is not allowed)."
    with small_tmpfs(tmp_path / "ro", "8m") as mnt:
        shutil.copytree(trained, mnt / "churn")
        r = subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"cannot remount read-only: {r.stderr.decode().strip()}")
        yield mnt / "churn"


@figures.passed_only
def test_a_read_only_model_root_is_one_bundle_error_naming_it(read_only_root: Path) -> None:
    "A save or a promotion into a model root that cannot be written: one BundleError naming the root and the cause."
    root = read_only_root
    bundle = load_bundle(root)
    before = _state(root)
    with pytest.raises(BundleError) as e:
        save_bundle(bundle, root)
    assert str(e.value) == (
        f"{root}: cannot save a version (Read-only file system); the version was not kept "
        "(expected a writable model root with room for the version)"
    )
    with pytest.raises(BundleError) as e:
        promote(root, bundle.version)
    assert str(e.value) == f"{root}: cannot write to the model root (Read-only file system)"
    assert _state(root) == before
    figures.hostile("tracebacks", "save_bundle and promote on a read-only model root", runs=2)


# --- train and report evaluate on a full disk ---------------------------------------------------------------


def _limit_file_size(limit: int) -> Callable[[], None]:
    def limit_it() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_it


def _installed(
    *args: str, cwd: Path, limit: int | None = None, timeout: int = 120
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPROD")} | {
        "PYTHONDONTWRITEBYTECODE": "1"
    }
    return subprocess.run(
        [str(MLPROD), *args],
        capture_output=True,
        text=True,
        timeout=timeout,  # a hang fails the test rather than the suite
        env=env,
        cwd=cwd,
        preexec_fn=None if limit is None else _limit_file_size(limit),  # noqa: PLW1509
    )


def _failed_in_one_line(r: subprocess.CompletedProcess, named: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("mlprod: "), r.stderr[-2000:]
    assert "Traceback" not in r.stderr and named in r.stderr, r.stderr


@pytest.fixture
def workspace(trained: Path, tmp_path: Path) -> Path:
    "The config, the data, and a copy of the trained model root in models/churn."
    (tmp_path / "churn.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    shutil.copyfile(DATA, tmp_path / "data.csv")
    shutil.copytree(trained, tmp_path / "models" / "churn")
    return tmp_path


def _forest(ws: Path, trees: int = 200) -> Path:
    "A config whose model file is large (a forest of deep trees)."
    cfg = {**CONFIG, "name": "forest"}
    cfg["estimator"] = {
        "class": "sklearn.ensemble.RandomForestClassifier",
        "params": {"n_estimators": trees, "min_samples_leaf": 1, "random_state": 0},
    }
    path = ws / "forest.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


TRAIN = ("train", "--config", "forest.yaml", "--train-data", "data.csv", "--out-dir", "models/churn")


@figures.passed_only
def test_train_under_a_file_size_limit_fails_in_one_line_and_keeps_the_earlier_versions(
    workspace: Path,
) -> None:
    _forest(workspace)
    root = workspace / "models" / "churn"
    before = _state(root)
    t0 = time.monotonic()
    r = _installed(*TRAIN, "--compression", "0", cwd=workspace, limit=256 * 1024)
    assert time.monotonic() - t0 < 120
    _failed_in_one_line(r, "models/churn")
    assert _state(root) == before  # no version half written, no temporary, aliases.json byte for byte
    figures.hostile("hangs", "train under RLIMIT_FSIZE")


@pytest.mark.parametrize("file", ["model.joblib", "metadata.json", "manifest.json"])
@figures.passed_only
def test_train_meeting_enospc_fails_in_one_line_and_keeps_the_earlier_versions(
    file: str, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    "ENOSPC injected in-process while the version's model, metadata or manifest is written."
    import builtins

    monkeypatch.chdir(workspace)
    root = workspace / "models" / "churn"
    before = _state(root)
    real_open = builtins.open
    real_json, real_text = mlprod.io.write_json, mlprod.commit.write_text

    def full(path: Any) -> None:
        if Path(path).name == file and ".tmp-" in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    def open_(path: Any, mode: str = "r", *a: Any, **k: Any) -> Any:
        if "w" in mode and isinstance(path, str | os.PathLike):
            full(path)
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(mlprod.io, "write_json", lambda p, o: (full(p), real_json(p, o))[1])
    monkeypatch.setattr(mlprod.commit, "write_text", lambda p, t: (full(p), real_text(p, t))[1])
    r = _cli("train", "--config", "churn.yaml", "--train-data", "data.csv", "--out-dir", "models/churn")
    err = _one_line(r, "bundle error")
    assert os.strerror(errno.ENOSPC) in err and "models/churn" in err, err
    assert _state(root) == before
    figures.hostile("hangs", f"train ENOSPC at {file}")


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    "A 2 MiB tmpfs (a real full disk); skipped where mounting is not allowed."
    with small_tmpfs(tmp_path / "small", "2m") as mnt:
        yield mnt


@figures.passed_only
def test_train_onto_a_full_file_system_fails_in_one_line(workspace: Path, small_fs: Path) -> None:
    _forest(workspace)
    root = small_fs / "churn"
    shutil.copytree(workspace / "models" / "churn", root)
    before = _state(root)
    r = _installed(*TRAIN[:-1], str(root), "--compression", "0", cwd=workspace)
    _failed_in_one_line(r, str(root))
    assert os.strerror(errno.ENOSPC) in r.stderr, r.stderr
    assert _state(root) == before
    figures.hostile("hangs", "train onto a full tmpfs")


def _old_report(ws: Path) -> Path:
    "An earlier report folder (as a report run leaves one), which a failed run must leave byte for byte."
    out = ws / "reports" / "churn"
    out.mkdir(parents=True)
    for name in ("report.ipynb", "report.html", "metrics.json"):
        (out / name).write_text("an earlier report\n")
    (out / ".mlprod-report").write_text("an earlier report\n")
    return out


REPORT = (
    "report",
    "evaluate",
    "--model-dir",
    "models/churn",
    "--data",
    "data.csv",
    "--out-dir",
    "reports/churn",
)


@figures.passed_only
def test_report_under_a_file_size_limit_fails_in_one_line_without_hanging(workspace: Path) -> None:
    out = _old_report(workspace)
    before = _state(workspace / "reports")
    t0 = time.monotonic()
    r = _installed(*REPORT, cwd=workspace, limit=64 * 1024, timeout=180)
    took = time.monotonic() - t0
    _failed_in_one_line(r, "reports/churn")
    assert _state(workspace / "reports") == before, "the earlier report changed, or a staging folder is left"
    assert out.is_dir() and took < 180
    figures.hostile("hangs", "report evaluate under RLIMIT_FSIZE")


@figures.passed_only
def test_report_meeting_enospc_fails_in_one_line(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workspace)
    _old_report(workspace)
    before = _state(workspace / "reports")
    real = mlprod.commit.write_text  # the report writes its files through mlprod.commit

    def write_text(path: str | Path, text: str) -> Path:
        if Path(path).name == "report.html":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, text)

    monkeypatch.setattr(mlprod.commit, "write_text", write_text)
    err = _one_line(_cli(*REPORT), "report error")
    assert os.strerror(errno.ENOSPC) in err and "reports/churn" in err, err
    assert _state(workspace / "reports") == before
    figures.hostile("hangs", "report evaluate ENOSPC")


# --- lineage thousands of records deep ----------------------------------------------------------------------

DEPTH = 5000


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def deep_chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    "d0.csv (a source) <- d1.csv <- ... <- d5000.csv, each made by a 'split' of the one before; d5000 is a table."
    work = tmp_path_factory.mktemp("deep")
    files = [work / f"d{i}.csv" for i in range(DEPTH + 1)]
    for i, f in enumerate(files[:-1]):
        f.write_text(f"x\n{i}\n")
    shutil.copyfile(DATA, files[-1])
    for i in range(1, DEPTH + 1):
        record = {
            "format": 1,
            "step": "split",
            "created_at": "2026-01-01T00:00:00Z",
            "git": {"commit": None, "dirty": None},
            "output": {"path": files[i].name, "sha256": _sha(files[i])},
            "inputs": [
                {
                    "role": "data",
                    "path": files[i - 1].name,
                    "sha256": _sha(files[i - 1]),
                    "made_by": "split" if i > 1 else None,
                }
            ],
            "params": {},
        }
        (work / f"{files[i].name}.lineage.json").write_text(json.dumps(record))
    (work / "churn.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    return work


@figures.passed_only
def test_lineage_walks_a_chain_of_5000_records(deep_chain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(deep_chain)
    t0 = time.perf_counter()
    r = _cli("lineage", f"d{DEPTH}.csv")
    took = time.perf_counter() - t0
    assert r.exit_code == 0, (r.stderr[-500:], r.exception)
    lines = r.stdout.splitlines()
    assert sum(" [split]  ok" in line for line in lines) == DEPTH, r.stdout[-500:]
    assert any("d0.csv" in line and "source file" in line for line in lines)
    assert took < 10, f"{took:.1f} s"
    figures.hostile("lineage", f"mlprod lineage of a chain {DEPTH} records deep")


@figures.passed_only
def test_train_stores_a_chain_of_5000_records_and_shows_it(
    deep_chain: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(deep_chain)
    t0 = time.perf_counter()
    r = _cli("train", "--config", "churn.yaml", "--train-data", f"d{DEPTH}.csv", "--out-dir", "models/churn")
    assert r.exit_code == 0, (r.stderr[-500:], r.exception)
    version = load_bundle("models/churn").path
    assert version is not None
    stored = json.loads((version / "metadata.json").read_text())["lineage"]
    assert len(stored["records"]) == DEPTH - 1  # every record behind d5000's own, once
    r = _cli("models", "show", "models/churn")
    assert r.exit_code == 0, (r.stderr[-500:], r.exception)
    assert "d0.csv" in r.stdout
    r = _cli("lineage", str(version))
    assert r.exit_code == 0, (r.stderr[-500:], r.exception)
    assert sum(" [split]  ok" in line for line in r.stdout.splitlines()) == DEPTH
    assert time.perf_counter() - t0 < 30
    figures.hostile("lineage", f"train storing a chain {DEPTH} records deep", runs=3)


@figures.passed_only
def test_a_lineage_record_of_non_utf8_bytes_is_one_line(
    deep_chain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.csv").write_text("x\n1\n")
    (tmp_path / "b.csv.lineage.json").write_bytes(b'{"format": 1, "step": "\xff"}')
    (tmp_path / "c.csv").write_text("x\n1\n")
    good = {
        "format": 1,
        "step": "split",
        "output": {"path": "c.csv"},
        "inputs": [{"role": "data", "path": "b.csv"}],
    }
    (tmp_path / "c.csv.lineage.json").write_text(json.dumps(good))
    for target in ("b.csv", "c.csv"):  # its own record, and a record upstream
        err = _one_line(_cli("lineage", target), "data error")
        assert "b.csv.lineage.json" in err and "UTF-8" in err, err
    figures.hostile("lineage", "a lineage record of non-UTF-8 bytes", runs=2)


@figures.passed_only
@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_an_aliases_file_that_is_no_file_is_one_line(trained: Path, tmp_path: Path, kind: str) -> None:
    "A model root whose aliases.json is a named pipe (reading it would block for ever) or a folder."
    root = tmp_path / "root"
    shutil.copytree(trained, root, symlinks=True)
    (root / "aliases.json").unlink()
    if kind == "fifo":
        os.mkfifo(root / "aliases.json")
    else:
        (root / "aliases.json").mkdir()
    with pytest.raises(BundleError) as e:
        load_bundle(root)
    assert "aliases.json" in str(e.value) and "not a file" in str(e.value), str(e.value)
    for args in (["models", "list", str(root)], ["models", "verify", str(root)]):
        r = subprocess.run(
            [str(Path(sys.executable).parent / "mlprod"), *args], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        lines = r.stderr.splitlines()
        assert (
            len(lines) == 1 and lines[0].startswith("mlprod: bundle error: ") and "aliases.json" in lines[0]
        )
    figures.hostile("hangs", f"aliases.json a {kind}", runs=3)
