"""A library error names the library's own parameters (`version_skew='warn'`, `model_format='joblib'`,
`trusted_types`), never a command's flags or settings.ini, and carries the one it advises as `option`; the `mlprod`
command adds the flag or setting that sets it from one table (`mlprod.cli.OPTION_FLAGS`), so its line still
names the flag."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mlprod
from mlprod.bundle import Bundle, load_bundle, save_bundle
from mlprod.cli import OPTION_FLAGS, _error_line
from mlprod.errors import BundleError, IntegrityError, UntrustedTypeError, VersionSkewError
from mlprod.features import build_pipeline
from mlprod.layout import MANIFEST
from mlprod.schema import capture_schema, validate
from mlprod.tables import read_table
from mlprod.verify import _manifest

BUNDLE_MODULES = ("layout", "verify", "serialise", "registry", "bundle")


def _bundle(fixtures: Path) -> Bundle:
    df = read_table(fixtures / "binary.csv")  # (300, 8)
    schema = capture_schema(df, "classification", "churned", "customer_id")
    pipe = build_pipeline(schema, LogisticRegression(max_iter=1000), {"scale": True, "transformers": []})
    pipe.fit(validate(schema, df), df["churned"])
    return Bundle(pipe, {"name": "churn", "task": "classification"}, schema, {}, df.head(4))


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    "One joblib and one skops version of the same small model, built once; tests copy or only read them."
    root = tmp_path_factory.mktemp("options")
    b = _bundle(Path(__file__).parent / "fixtures")
    return {
        "joblib": save_bundle(b, root / "j" / "churn"),
        "skops": save_bundle(b, root / "s" / "churn", model_format="skops"),
    }


def _cli_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    return r.stderr.rstrip("\n")


def test_version_skew_names_its_parameter_and_the_command_its_flag(saved, tmp_path: Path, cli) -> None:
    v = tmp_path / "churn" / saved["joblib"].name
    shutil.copytree(saved["joblib"], v)
    meta = json.loads((v / "metadata.json").read_text())
    meta["versions"]["scikit-learn"] = "0.24.2"
    (v / "metadata.json").write_text(json.dumps(meta))
    (v / MANIFEST).write_text(json.dumps(_manifest(v), indent=2, sort_keys=True) + "\n")
    with pytest.raises(VersionSkewError) as e:
        load_bundle(v)
    msg = str(e.value)
    assert msg.endswith("retrain under this environment, or load anyway with version_skew='warn'"), msg
    assert e.value.option == ("version_skew", "warn")
    line = _cli_line(cli("models", "verify", str(v), cwd=tmp_path))
    assert line.endswith(
        "load anyway with version_skew='warn' (CLI: --version-skew warn, or version_skew = warn in settings.ini)"
    ), line


def test_an_untrusted_type_names_trusted_types_and_the_command_its_setting(
    saved, tmp_path: Path, cli
) -> None:
    with pytest.raises(UntrustedTypeError) as e:
        load_bundle(saved["skops"], trusted_types=[])
    msg = str(e.value)
    assert "untrusted type numpy.dtype" in msg, msg
    assert msg.endswith("(expected only types in the trusted list (trusted_types))"), msg
    assert e.value.option is not None and e.value.option[0] == "trusted_types"
    (tmp_path / "settings.ini").write_text("[mlprod]\ntrusted_types =\n")
    line = _cli_line(cli("models", "verify", str(saved["skops"]), cwd=tmp_path))
    assert line.endswith(
        "(expected only types in the trusted list (trusted_types)) (CLI: trusted_types in settings.ini)"
    ), line


def test_a_format_the_loader_does_not_allow_names_model_format(saved, tmp_path: Path, cli) -> None:
    with pytest.raises(IntegrityError) as e:
        load_bundle(saved["joblib"], allowed_formats=("skops",))
    assert str(e.value).endswith("(expected a bundle saved with model_format='skops')"), str(e.value)
    assert e.value.option == ("model_format", "skops")
    r = cli("models", "verify", str(saved["joblib"]), "--allowed-format", "skops", cwd=tmp_path)
    line = _cli_line(r)
    assert line.endswith("(expected a bundle saved with model_format='skops') (CLI: --model-format skops)"), (
        line
    )


def test_a_model_skops_cannot_store_names_model_format_joblib(saved, tmp_path: Path) -> None:
    schema = load_bundle(saved["joblib"]).schema
    with pytest.raises(BundleError) as e:
        save_bundle(Bundle(pd.Index(["a", "b"]), {"name": "x"}, schema), tmp_path / "x", model_format="skops")
    msg = str(e.value)
    assert msg.endswith("(or the joblib format: model_format='joblib'))"), msg
    assert e.value.option == ("model_format", "joblib")
    assert _error_line(e.value) == msg + " (CLI: --model-format joblib)"
    assert not (tmp_path / "x").exists()


def test_the_bundle_modules_name_no_flag_and_every_option_has_one() -> None:
    "No flag or settings.ini in the bundle's modules; every option a library error carries is in the CLI's table."
    package = Path(mlprod.__file__).parent
    for name in BUNDLE_MODULES:
        text = (package / f"{name}.py").read_text()
        assert "settings.ini" not in text and not re.search(r"[\"' ]--[a-z]", text), name
    options = {o for p in package.glob("*.py") for o in re.findall(r"option=\(\"(\w+)\"", p.read_text())}
    assert {"model_format", "version_skew", "trusted_types"} <= options
    assert options <= set(OPTION_FLAGS), options - set(OPTION_FLAGS)
    assert _error_line(BundleError("x", path="m")) == "m: x"  # no option: the line is the message


# The worker pool, batch prediction and the query name their own parameters (`workers`, `chunk_rows`, fetch's
# inputs); the command's line still names its flags.
FLAGGED_MODULES = ("pool", "batch", "query")


def test_pool_batch_and_query_name_no_flag() -> None:
    package = Path(mlprod.__file__).parent
    for name in FLAGGED_MODULES:
        text = (package / f"{name}.py").read_text()
        assert "settings.ini" not in text and not re.search(r"[\"' ]--[a-z]", text), name


def test_a_worker_that_cannot_start_names_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    from mlprod.errors import MlprodError
    from mlprod.pool import Pool

    def no_fork() -> int:
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    monkeypatch.setattr(os, "fork", no_fork)
    with pytest.raises(MlprodError) as e:
        Pool(2, lambda *a: None, lambda: None)
    msg = str(e.value)
    assert msg == f"cannot start a worker process: {os.strerror(errno.EAGAIN)} (expected fewer workers)", msg
    assert e.value.option == ("workers", "")
    assert _error_line(e.value) == msg + " (CLI: --workers N)"


def test_a_dead_worker_names_workers_and_chunk_rows(fixtures: Path, tmp_path: Path) -> None:
    import os

    from mlprod.batch import run_local
    from mlprod.errors import MlprodError

    class Dies:
        def __init__(self, b: Bundle) -> None:
            self.model, self._parent = b.model, os.getpid()

        def predict(self, df: pd.DataFrame, **kwargs: object) -> pd.DataFrame:
            os._exit(9)

    with pytest.raises(MlprodError) as e:
        run_local(
            Dies(_bundle(fixtures)), fixtures / "binary.csv", tmp_path / "p.jsonl", chunk_rows=50, workers=2
        )
    msg = str(e.value)
    assert msg.endswith("(expected fewer workers or a smaller chunk_rows if memory is short)"), msg
    assert e.value.option == ("workers", "")
    assert _error_line(e.value) == msg + " (CLI: --workers N)"


def test_capped_workers_are_a_warning_and_the_command_names_the_flag(fixtures: Path, tmp_path: Path) -> None:
    import os

    from mlprod.batch import run_local
    from mlprod.pool import WorkersCapped
    from mlprod.predict import Predictor

    cores = len(os.sched_getaffinity(0))
    with pytest.warns(WorkersCapped) as caught:
        run_local(
            Predictor(_bundle(fixtures)), fixtures / "binary.csv", tmp_path / "p.csv", workers=cores + 62
        )
    w = caught[0].message
    assert str(w).startswith(f"workers={cores + 62} capped to "), str(w)
    assert w.option == ("workers", str(cores + 62))
    assert w.says("--workers 64").startswith("--workers 64 capped to "), w.says("--workers 64")


def test_an_output_that_is_an_input_names_fetchs_inputs(tmp_path: Path, cli) -> None:
    from mlprod.errors import ConfigError
    from mlprod.query import fetch

    t = tmp_path / "t.csv"
    t.write_text("id\n1\n")
    q = tmp_path / "q.sql"
    q.write_text("SELECT * FROM t\n")
    with pytest.raises(ConfigError) as e:
        fetch(q, t, {"t": t})
    msg = str(e.value)
    assert msg.endswith("(expected an output that is none of sql_file, tables and database)"), msg
    assert e.value.option == ("fetch_inputs", "")
    line = _cli_line(
        cli("data", "fetch", "--sql", "q.sql", "--table", "t=t.csv", "--output", "t.csv", cwd=tmp_path)
    )
    assert line.endswith(
        "(expected an output that is none of sql_file, tables and database)"
        " (CLI: an --output that is none of --sql, --table and --database)"
    ), line
