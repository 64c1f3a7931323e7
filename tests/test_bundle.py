"""The bundle: tamper suite, crash safety, version skew, golden re-run, skops trust, custom transformers."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import joblib
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from mlprod.bundle import Bundle, load_bundle, save_bundle
from mlprod.errors import (
    BundleError,
    IntegrityError,
    UntrustedTypeError,
    VersionSkewError,
    VersionSkewWarning,
)
from mlprod.features import build_pipeline
from mlprod.layout import MANIFEST
from mlprod.registry import list_versions, promote, read_aliases
from mlprod.schema import capture_schema, validate
from mlprod.tables import read_table
from mlprod.verify import _manifest

TRUSTED = ["numpy.dtype", "sklearn.tree._tree.Tree", "mlprod.features.ColumnProduct"]


def _bundle(fixtures: Path, estimator=None, transformers=None) -> Bundle:
    df = read_table(fixtures / "binary.csv")  # (300, 8)
    schema = capture_schema(df, "classification", "churned", "customer_id")
    opts = {"scale": True, "transformers": transformers or []}
    estimator = LogisticRegression(max_iter=1000) if estimator is None else estimator
    pipe = build_pipeline(schema, estimator, opts)
    pipe.fit(validate(schema, df), df["churned"])
    return Bundle(pipe, {"name": "churn", "task": "classification"}, schema, {"accuracy": 0.75}, df.head(8))


@pytest.fixture(scope="module")
def saved(tmp_path_factory, fixtures_dir=Path(__file__).parent / "fixtures") -> Path:
    "One saved version (joblib), built once; tests copy it."
    root = tmp_path_factory.mktemp("bundles") / "churn"
    return save_bundle(_bundle(fixtures_dir), root)


@pytest.fixture
def version(saved: Path, tmp_path: Path) -> Path:
    "A private copy of the saved version."
    dst = tmp_path / "churn" / saved.name
    shutil.copytree(saved, dst)
    return dst


def _rewrite_manifest(folder: Path) -> None:
    "What a careless copy (or an attacker) does: regenerate the manifest after changing files."
    (folder / MANIFEST).write_text(json.dumps(_manifest(folder), indent=2, sort_keys=True) + "\n")


def test_round_trip(version: Path) -> None:
    b = load_bundle(version)
    assert b.version == version.name and b.metadata["name"] == "churn" and b.metrics == {"accuracy": 0.75}
    files = sorted(p.relative_to(version).as_posix() for p in version.rglob("*") if p.is_file())
    assert files == [
        "config.yaml",
        "golden.jsonl",
        "manifest.json",
        "metadata.json",
        "metrics.json",
        "model.joblib",
        "schema.json",
    ]
    meta = json.loads((version / "metadata.json").read_text())
    assert set(meta["versions"]) == {"python", "scikit-learn", "numpy", "pandas", "joblib"}
    for p in version.rglob("*"):  # no absolute path stored anywhere in the bundle
        if p.is_file() and p.suffix != ".joblib":
            assert str(version.parent) not in p.read_text() and "/tmp/" not in p.read_text()


# --- tamper suite --------------------------------------------------------------------------------

FILES = [
    "config.yaml",
    "golden.jsonl",
    "metadata.json",
    "metrics.json",
    "model.joblib",
    "schema.json",
    "manifest.json",
]


def _flip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


@pytest.mark.parametrize("how", ["flip", "truncate", "delete"])
@pytest.mark.parametrize("name", FILES)
def test_tampered_file_is_refused_naming_it(version: Path, name: str, how: str, monkeypatch) -> None:
    target = version / name
    {"flip": _flip, "truncate": _truncate, "delete": Path.unlink}[how](target)
    calls = []
    monkeypatch.setattr(joblib, "load", lambda *a, **k: calls.append(a))  # must never be reached
    with pytest.raises(IntegrityError) as info:
        load_bundle(version)
    assert str(target) in str(info.value) or (name == MANIFEST and "manifest.json" in str(info.value))
    assert calls == []


def test_extra_file_is_refused(version: Path) -> None:
    (version / "notes.txt").write_text("hello")
    with pytest.raises(IntegrityError, match=r"notes\.txt: file not in the manifest"):
        load_bundle(version)


def test_another_valid_model_is_refused(version: Path, fixtures: Path) -> None:
    other = _bundle(fixtures, RandomForestClassifier(n_estimators=5, random_state=1)).model
    joblib.dump(other, version / "model.joblib", compress=3)
    with pytest.raises(IntegrityError, match=r"model\.joblib: sha256 does not match"):
        load_bundle(version)


def test_swapped_model_with_regenerated_manifest_is_caught_by_golden(version: Path, fixtures: Path) -> None:
    other = _bundle(fixtures, RandomForestClassifier(n_estimators=5, max_depth=2, random_state=1)).model
    joblib.dump(other, version / "model.joblib", compress=3)
    _rewrite_manifest(version)
    with pytest.raises(
        IntegrityError,
        match=r"golden\.jsonl: golden row \d+ \(customer_id='c\d+', age=.*\): .* no longer behaves",
    ):
        load_bundle(version)


@pytest.mark.parametrize("bad", ["../outside.txt", "/etc/hostname", "id_maps/../../x"])
def test_manifest_paths_outside_the_bundle_are_refused(version: Path, bad: str) -> None:
    m = json.loads((version / MANIFEST).read_text())
    m["files"][bad] = {"sha256": "0" * 64, "bytes": 1}
    (version / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(IntegrityError, match="outside the bundle"):
        load_bundle(version)


def test_symlink_out_of_the_bundle_is_refused(version: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    (version / "metrics.json").unlink()
    (version / "metrics.json").symlink_to(secret)
    _rewrite_manifest(version)
    with pytest.raises(IntegrityError, match="symbolic link"):
        load_bundle(version)


# --- versions ------------------------------------------------------------------------------------


def _record_versions(version: Path, **changes: str) -> None:
    meta = json.loads((version / "metadata.json").read_text())
    meta["versions"].update(changes)
    (version / "metadata.json").write_text(json.dumps(meta))
    _rewrite_manifest(version)


def test_other_sklearn_minor_is_an_error_or_a_warning(version: Path) -> None:
    import sklearn

    _record_versions(version, **{"scikit-learn": "1.2.0"})
    with pytest.raises(VersionSkewError) as info:
        load_bundle(version)
    msg = str(info.value)
    assert (
        "scikit-learn 1.2.0" in msg and f"scikit-learn {sklearn.__version__}" in msg and "version_skew" in msg
    )
    with pytest.warns(
        VersionSkewWarning, match=rf"scikit-learn 1\.2\.0, running scikit-learn {sklearn.__version__}"
    ):
        assert load_bundle(version, version_skew="warn").version == version.name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_bundle(version, version_skew="ignore")


def test_patch_level_difference_is_silent_and_pandas_minor_warns(version: Path) -> None:
    import sklearn

    major, minor, *_ = sklearn.__version__.split(".")
    _record_versions(version, **{"scikit-learn": f"{major}.{minor}.999"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_bundle(version)
    _record_versions(version, pandas="1.0.0")
    with pytest.warns(VersionSkewWarning, match="pandas 1.0.0"):
        load_bundle(version)


def test_bundle_from_a_newer_mlprod_is_refused(version: Path) -> None:
    meta = json.loads((version / "metadata.json").read_text())
    meta["mlprod_version"] = "99.0.0"
    (version / "metadata.json").write_text(json.dumps(meta))
    _rewrite_manifest(version)
    with pytest.raises(BundleError, match="saved by mlprod 99.0.0, newer than this mlprod"):
        load_bundle(version)


# --- registry ------------------------------------------------------------------------------------


def test_versions_aliases_promote_and_rollback(fixtures: Path, tmp_path: Path) -> None:
    b = _bundle(fixtures)
    root = tmp_path / "churn"
    v1 = save_bundle(b, root)
    v2 = save_bundle(b, root, compression=0)
    assert v1 != v2 and read_aliases(root) == {"latest": v2.name}
    assert load_bundle(root).version == v2.name
    promote(root, v2.name)
    promote(root, v1.name)  # roll back
    assert load_bundle(root).version == v1.name
    rows = list_versions(root)
    assert [r["version"] for r in rows] == [v1.name, v2.name]
    assert rows[0]["aliases"] == ["champion"] and rows[1]["aliases"] == ["latest"]
    assert rows[0]["metrics"] == {"accuracy": 0.75} and rows[0]["created_at"].endswith("Z")
    with pytest.raises(BundleError, match="no version 'nope'"):
        promote(root, "nope")


def test_a_model_root_holds_only_its_versions_and_aliases(fixtures: Path, tmp_path: Path) -> None:
    "Saves and promotions leave nothing hidden in the model root: no lock file, no temporary."
    b = _bundle(fixtures)
    root = tmp_path / "churn"
    v1 = save_bundle(b, root)
    v2 = save_bundle(b, root, compression=0)
    promote(root, v1.name)
    assert {p.name for p in root.iterdir()} == {"aliases.json", "history.jsonl", v1.name, v2.name}
    assert read_aliases(root) == {"latest": v2.name, "champion": v1.name}


def test_unparseable_aliases(tmp_path: Path, saved: Path) -> None:
    root = tmp_path / "m"
    shutil.copytree(saved, root / saved.name)
    (root / "aliases.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"aliases\.json: aliases file does not parse"):
        load_bundle(root)


# --- crash safety and concurrency ----------------------------------------------------------------


def _save_forever(bundle: Bundle, root: Path) -> None:
    while True:
        save_bundle(bundle, root, compression=1)


def test_sigkill_during_save_never_leaves_a_half_version(fixtures: Path, tmp_path: Path) -> None:
    b = _bundle(fixtures, RandomForestClassifier(n_estimators=30, random_state=0))
    root = tmp_path / "churn"
    first = save_bundle(b, root)
    ctx = mp.get_context("fork")
    rng = random.Random(0)
    checked: set[str] = set()
    leftovers = 0
    for _ in range(20):
        p = ctx.Process(target=_save_forever, args=(b, root))
        p.start()
        # a save serialises the model first (no folder yet: 0.02-0.2 s here), then writes its hidden folder
        time.sleep(rng.uniform(0.0, 0.4))
        p.kill()  # SIGKILL, at a random moment of some save
        p.join()
        json.loads((root / "aliases.json").read_text())  # always parses
        for d in root.iterdir():
            if (
                d.is_dir() and not d.name.startswith(".") and d.name not in checked
            ):  # every visible version is whole
                load_bundle(d, check_golden=False)
                checked.add(d.name)
        leftovers += sum(1 for d in root.iterdir() if d.name.startswith((".tmp-", ".aliases.json.")))
    assert leftovers > 0  # the kills did land inside saves
    assert load_bundle(first).version == first.name
    save_bundle(b, root)  # the next save sweeps the dead processes' temporaries
    assert not [d for d in root.iterdir() if d.name.startswith((".tmp-", ".aliases.json."))]
    assert len([d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]) >= 1
    latest = read_aliases(root)["latest"]
    assert load_bundle(root).version == latest


def _save_once(bundle: Bundle, root: Path) -> None:
    save_bundle(bundle, root)


def test_two_concurrent_saves_both_land(fixtures: Path, tmp_path: Path) -> None:
    b = _bundle(fixtures)
    root = tmp_path / "churn"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_save_once, args=(b, root)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    versions = list_versions(root)
    assert len(versions) == 2
    assert read_aliases(root)["latest"] == max(v["version"] for v in versions)


# --- skops and custom transformers ----------------------------------------------------------------


def test_skops_round_trip_and_untrusted_type(fixtures: Path, tmp_path: Path) -> None:
    b = _bundle(
        fixtures,
        transformers=[
            {
                "class": "mlprod.features.ColumnProduct",
                "params": {"columns": ["age", "score"], "name": "age_score"},
            }
        ],
    )
    v = save_bundle(b, tmp_path / "m", model_format="skops")
    assert (v / "model.skops").exists() and not (v / "model.joblib").exists()
    loaded = load_bundle(v, trusted_types=TRUSTED)
    X = validate(b.schema, read_table(fixtures / "binary.csv"))
    assert (loaded.model.predict(X) == b.model.predict(X)).all()
    with pytest.raises(
        UntrustedTypeError, match=r"model\.skops: untrusted types? .*mlprod\.features\.ColumnProduct"
    ):
        load_bundle(v, trusted_types=["numpy.dtype"])


def test_custom_transformer_model_loads_in_a_fresh_process(fixtures: Path, tmp_path: Path) -> None:
    b = _bundle(
        fixtures,
        RandomForestClassifier(n_estimators=10, random_state=0),
        [
            {
                "class": "mlprod.features.ColumnProduct",
                "params": {"columns": ["age", "score"], "name": "age_score"},
            }
        ],
    )
    v = save_bundle(b, tmp_path / "m")
    here = b.model.predict_proba(validate(b.schema, read_table(fixtures / "binary.csv")))[:, 1]  # (300,)
    code = (
        "import sys, json\n"
        "from mlprod.bundle import load_bundle\nfrom mlprod.schema import validate\nfrom mlprod.tables import read_table\n"
        "b = load_bundle(sys.argv[1])\n"
        "X = validate(b.schema, read_table(sys.argv[2]))\n"
        "print(json.dumps(b.model.predict_proba(X)[:, 1].tolist()))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(v), str(fixtures / "binary.csv")],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # nowhere near the notebooks
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == here.tolist()
    assert "ColumnProduct" in type(b.model.steps[0][1]).__name__


def test_golden_rows_store_inputs_and_outputs(version: Path) -> None:
    g = pd.read_json(version / "golden.jsonl", lines=True)
    assert len(g) == 8 and {
        "customer_id",
        "expected_prediction",
        "expected_proba_0",
        "expected_proba_1",
    } <= set(g.columns)


# --- untrusted files: a model file crafted to run code on load ---------------------------------------------


class _RunsOnLoad:
    "Unpickling this calls Path.write_text(marker, ...): code that runs on load, visible as a new file."

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.write_text, (self.marker, "this code ran on load\n"))


class _SetsStateOnLoad:
    "A type skops does not trust: constructing it on load would write the marker (its __setstate__)."

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __setstate__(self, state: dict) -> None:
        Path(state["marker"]).write_text("this code ran on load\n")
        self.__dict__.update(state)


def _payload_is_live(tmp_path: Path) -> None:
    "The crafted pickle does run code when unpickled directly: its absence later is the bundle's doing."
    probe = tmp_path / "probe.marker"
    joblib.dump(_RunsOnLoad(probe), tmp_path / "probe.joblib")
    joblib.load(tmp_path / "probe.joblib")
    assert probe.exists()


def test_crafted_joblib_is_refused_by_the_manifest_and_never_runs(version: Path, tmp_path: Path) -> None:
    "A model.joblib swapped for a pickle that runs code: load_bundle refuses it on the sha256, before any unpickling."
    _payload_is_live(tmp_path)
    marker = tmp_path / "ran.marker"
    joblib.dump(_RunsOnLoad(marker), version / "model.joblib")
    with pytest.raises(IntegrityError, match=r"model\.joblib: sha256 does not match"):
        load_bundle(version)
    assert not marker.exists(), "the crafted pickle ran"
    from mlprod.verify import verify_files

    with pytest.raises(IntegrityError):
        verify_files(version, model_bytes=False)  # what `models show` checks: nothing is unpickled either
    assert not marker.exists()


def test_crafted_model_with_a_consistent_manifest_is_refused_by_skops(fixtures: Path, tmp_path: Path) -> None:
    """The secure format: even when the manifest is regenerated to match (an attacker who can write the whole
    bundle), skops refuses the untrusted type before constructing anything, and no code runs."""
    import skops.io as sio

    v = save_bundle(_bundle(fixtures), tmp_path / "m", model_format="skops")
    marker = tmp_path / "ran.marker"
    sio.dump({"model": _SetsStateOnLoad(str(marker))}, v / "model.skops")
    _rewrite_manifest(v)
    with pytest.raises(UntrustedTypeError, match=r"model\.skops: untrusted type .*_SetsStateOnLoad"):
        load_bundle(v, trusted_types=TRUSTED)
    assert not marker.exists(), "skops constructed an untrusted object"


def test_crafted_skops_file_is_refused_by_the_manifest_first(fixtures: Path, tmp_path: Path) -> None:
    import skops.io as sio

    v = save_bundle(_bundle(fixtures), tmp_path / "m", model_format="skops")
    marker = tmp_path / "ran.marker"
    sio.dump({"model": _SetsStateOnLoad(str(marker))}, v / "model.skops")
    with pytest.raises(IntegrityError, match=r"model\.skops: sha256 does not match"):
        load_bundle(v, trusted_types=[*TRUSTED, f"{__name__}._SetsStateOnLoad", "builtins.dict"])
    assert not marker.exists()


def _link_out(version: Path, tmp_path: Path, how: str) -> None:
    "Replace part of a bundle by a symbolic link to an identical copy outside it, manifest kept consistent."
    import hashlib

    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    if how == "model file":
        shutil.copyfile(version / "model.joblib", outside / "model.joblib")
        (version / "model.joblib").unlink()
        (version / "model.joblib").symlink_to(outside / "model.joblib")
    elif how == "manifest":
        shutil.copyfile(version / MANIFEST, outside / MANIFEST)
        (version / MANIFEST).unlink()
        (version / MANIFEST).symlink_to(outside / MANIFEST)
    else:  # a folder of the bundle
        (outside / "id_maps").mkdir()
        (outside / "id_maps" / "users.csv").write_text("id,index\nu1,0\n")
        (version / "id_maps").symlink_to(outside / "id_maps", target_is_directory=True)
        m = json.loads((version / MANIFEST).read_text())
        m["files"]["id_maps/users.csv"] = {
            "sha256": hashlib.sha256((outside / "id_maps" / "users.csv").read_bytes()).hexdigest(),
            "bytes": 17,
        }
        (version / MANIFEST).write_text(json.dumps(m))


@pytest.mark.parametrize("how", ["model file", "manifest", "folder"])
def test_symlinks_out_are_refused_even_with_matching_hashes(
    version: Path, tmp_path: Path, how: str, monkeypatch
) -> None:
    _link_out(version, tmp_path, how)
    calls = []
    monkeypatch.setattr(joblib, "load", lambda *a, **k: calls.append(a))  # must never be reached
    with pytest.raises(IntegrityError, match="symbolic link|not a plain file"):
        load_bundle(version)
    assert calls == []


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "./../x", "id_maps/../../x", "a\\..\\..\\x", ""])
def test_manifest_escapes_are_refused_before_anything_is_read(version: Path, bad: str, monkeypatch) -> None:
    "`../x`, an absolute path, a Windows-style escape, an empty name: refused, and no file is opened by them."
    m = json.loads((version / MANIFEST).read_text())
    m["files"][bad] = {"sha256": "0" * 64, "bytes": 1}
    (version / MANIFEST).write_text(json.dumps(m))
    calls = []
    monkeypatch.setattr(joblib, "load", lambda *a, **k: calls.append(a))
    with pytest.raises(IntegrityError, match="outside the bundle"):
        load_bundle(version)
    assert calls == []


def test_models_verify_refuses_a_crafted_model_and_runs_nothing(version: Path, tmp_path: Path) -> None:
    "`mlprod models verify` on a bundle whose model.joblib was swapped for a code-running pickle: exit 2."
    from typer.testing import CliRunner

    from mlprod.cli import app

    if not any(g.name == "models" for g in app.registered_groups):
        pytest.skip("`mlprod models verify` is not wired yet")
    marker = tmp_path / "ran.marker"
    joblib.dump(_RunsOnLoad(marker), version / "model.joblib")
    r = CliRunner().invoke(app, ["models", "verify", str(version)])
    assert r.exit_code == 2 and r.stderr.startswith("mlprod: integrity error: "), r.output
    assert r.stderr.count("\n") == 1 and "model.joblib: sha256 does not match" in r.stderr
    assert not marker.exists()
