"""What the public load unpickles: `load_bundle` and `Predictor.load` read the model file once, compare the sha256 of
those bytes with the manifest, and unpickle those same bytes from memory.

So a byte changed anywhere (the model, the golden rows, the manifest), a model file cut short by a crash or grown,
or a pickle crafted to run code is refused before anything is unpickled, and a file swapped on disk after the read
changes nothing. Every kind of model file (joblib compressed and not, skops) loads to a model that predicts what
the saved one predicted (a hypothesis property)."""

from __future__ import annotations

import gc
import hashlib
import json
import shutil
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from mlprod.bundle import Bundle, load_bundle, save_bundle
from mlprod.errors import IntegrityError
from mlprod.features import build_pipeline
from mlprod.layout import MANIFEST
from mlprod.predict import Predictor
from mlprod.schema import capture_schema, validate
from mlprod.tables import read_table

FIXTURES = Path(__file__).parent / "fixtures"
TRUSTED = ["numpy.dtype", "sklearn.tree._tree.Tree"]
DF = read_table(FIXTURES / "binary.csv")  # (300, 8)
SCHEMA = capture_schema(DF, "classification", "churned", "customer_id")
X = validate(SCHEMA, DF)  # (300, n_features)

# a model file as each kind of save writes it: (model_format, compression)
KINDS = {"joblib uncompressed": ("joblib", 0), "joblib compressed": ("joblib", 3), "skops": ("skops", 3)}


def _fitted(estimator: Any, rows: np.ndarray | None = None) -> Any:
    "A pipeline of the binary fixture around `estimator`, fit on `rows` (all by default)."
    df = DF if rows is None else DF.iloc[rows]
    pipe = build_pipeline(SCHEMA, estimator, {"scale": True})
    return pipe.fit(validate(SCHEMA, df), df["churned"])


def _save(model: Any, root: Path, kind: str = "joblib uncompressed") -> Path:
    model_format, compression = KINDS[kind]
    bundle = Bundle(model, {"name": "churn"}, SCHEMA, {}, DF.head(8))
    return save_bundle(bundle, root, compression=compression, model_format=model_format)


FOREST = _fitted(RandomForestClassifier(n_estimators=20, random_state=0))  # ~0.5 MB uncompressed


@pytest.fixture(scope="module", params=list(KINDS))
def saved(request, tmp_path_factory) -> Path:
    "One version of FOREST per kind of model file, saved once; tests copy it."
    return _save(FOREST, tmp_path_factory.mktemp("saved") / "churn", request.param)


@pytest.fixture
def version(saved: Path, tmp_path: Path) -> Path:
    "A private copy of the saved version."
    dst = tmp_path / "churn" / saved.name
    shutil.copytree(saved, dst)
    return dst


def _model_file(version: Path) -> Path:
    return next(p for p in version.iterdir() if p.stem == "model")


LOADERS: dict[str, Callable[[Path], Any]] = {  # each public load, to the model it hands back
    "load_bundle": lambda v: load_bundle(v, trusted_types=TRUSTED).model,
    "Predictor.load": lambda v: Predictor.load(v, trusted_types=TRUSTED).model,
}


@pytest.fixture
def unpickled(monkeypatch) -> list[str]:
    "Every call of an unpickler of a model file: joblib's and skops' (none may be made before the check)."
    import skops.io as sio

    calls: list[str] = []
    for module, name in [(joblib, "load"), (sio, "loads"), (sio, "get_untrusted_types")]:
        real = getattr(module, name)
        monkeypatch.setattr(
            module, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k)
        )
    return calls


# --- as saved --------------------------------------------------------------------------------------


@pytest.mark.parametrize("load", LOADERS.values(), ids=list(LOADERS))
def test_every_kind_of_model_file_loads_and_predicts_as_saved(version: Path, load) -> None:
    model = load(version)
    assert (model.predict_proba(X) == FOREST.predict_proba(X)).all()


def test_a_manifest_with_the_block_digests_of_an_earlier_mlprod_still_loads_and_is_checked_whole(
    version: Path,
) -> None:
    "Manifests written before the plain load also list each 2 MiB block's sha256: ignored; the file's own counts."
    manifest = json.loads((version / MANIFEST).read_text())
    model = _model_file(version)
    data = model.read_bytes()
    block = 1024
    manifest["files"][model.name].update(
        block_bytes=block,
        blocks=[hashlib.sha256(data[i : i + block]).hexdigest() for i in range(0, len(data), block)],
    )
    (version / MANIFEST).write_text(json.dumps(manifest))
    assert (load_bundle(version, trusted_types=TRUSTED).model.predict(X) == FOREST.predict(X)).all()
    changed = bytearray(data)
    changed[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(changed))
    with pytest.raises(IntegrityError, match=rf"{model.name}: sha256 does not match the manifest"):
        load_bundle(version, trusted_types=TRUSTED)


# --- tampered, cut short, crafted ----------------------------------------------------------------------


def _flip(p: Path, at: int) -> None:
    data = bytearray(p.read_bytes())
    data[at] ^= 0x01
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("load", LOADERS.values(), ids=list(LOADERS))
def test_one_changed_byte_of_the_model_file_is_refused_before_anything_is_unpickled(
    version: Path, load, where: str, unpickled: list[str]
) -> None:
    model = _model_file(version)
    size = model.stat().st_size
    _flip(model, {"first": 0, "middle": size // 2, "last": size - 1}[where])
    with pytest.raises(
        IntegrityError, match=rf"{model.name}: sha256 does not match the manifest \(the file changed\)"
    ):
        load(version)
    assert unpickled == []


@pytest.mark.parametrize("load", LOADERS.values(), ids=list(LOADERS))
def test_one_changed_byte_of_the_golden_rows_is_refused_before_anything_is_unpickled(
    version: Path, load, unpickled: list[str]
) -> None:
    golden = version / "golden.jsonl"
    _flip(golden, golden.stat().st_size // 2)
    with pytest.raises(IntegrityError, match=r"golden\.jsonl: sha256 does not match the manifest"):
        load(version)
    assert unpickled == []


@pytest.mark.parametrize("byte", ["in the model's sha256", "in the JSON's syntax"])
@pytest.mark.parametrize("load", LOADERS.values(), ids=list(LOADERS))
def test_one_changed_byte_of_the_manifest_is_refused_before_anything_is_unpickled(
    version: Path, load, byte: str, unpickled: list[str]
) -> None:
    text = (version / MANIFEST).read_text()
    model = _model_file(version)
    digest = json.loads(text)["files"][model.name]["sha256"]
    at = text.index(digest) + 10 if byte == "in the model's sha256" else text.index("{")
    _flip(version / MANIFEST, at)
    says = (
        rf"{model.name}: sha256 does not match the manifest"
        if byte == "in the model's sha256"
        else r"manifest\.json: manifest\.json is malformed"
    )
    with pytest.raises(IntegrityError, match=says):
        load(version)
    assert unpickled == []


@pytest.mark.parametrize("cut", ["to half", "by one byte", "to nothing", "grown by one byte"])
@pytest.mark.parametrize("load", LOADERS.values(), ids=list(LOADERS))
def test_a_model_file_cut_short_by_a_crash_or_grown_is_refused_before_anything_is_unpickled(
    version: Path, load, cut: str, unpickled: list[str]
) -> None:
    model = _model_file(version)
    data = model.read_bytes()
    model.write_bytes(
        {
            "to half": data[: len(data) // 2],
            "by one byte": data[:-1],
            "to nothing": b"",
            "grown by one byte": data + b"\0",
        }[cut]
    )
    size = model.stat().st_size
    with pytest.raises(
        IntegrityError,
        match=rf"{model.name}: sha256 does not match the manifest \(the file changed: {size} bytes, listed {len(data)}\)",
    ):
        load(version)
    assert unpickled == []


@pytest.mark.parametrize("load", LOADERS.values(), ids=list(LOADERS))
def test_a_missing_model_file_is_refused(version: Path, load, unpickled: list[str]) -> None:
    model = _model_file(version)
    model.unlink()
    with pytest.raises(IntegrityError, match=rf"{model.name}: file listed in the manifest is missing"):
        load(version)
    assert unpickled == []


class _RunsOnLoad:
    "Unpickling this calls Path.write_text(marker, ...): code that runs on load, visible as a new file."

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.write_text, (self.marker, "this code ran on load\n"))


def test_the_crafted_pickle_runs_code_when_unpickled_without_the_check(tmp_path: Path) -> None:
    "The payload is live: its absence in the tests below is the load's doing."
    marker = tmp_path / "ran.marker"
    joblib.dump(_RunsOnLoad(marker), tmp_path / "model.joblib")
    joblib.load(tmp_path / "model.joblib")
    assert marker.exists()


@pytest.mark.parametrize("compression", [0, 3], ids=["uncompressed", "compressed"])
@pytest.mark.parametrize("load", LOADERS.values(), ids=list(LOADERS))
def test_a_crafted_pickle_whose_hash_does_not_match_never_runs(
    version: Path, load, compression: int, tmp_path: Path, unpickled: list[str]
) -> None:
    model = _model_file(version)
    marker = tmp_path / "ran.marker"
    joblib.dump(_RunsOnLoad(marker), version / "crafted.joblib", compress=compression)
    (version / "crafted.joblib").replace(model)  # in place of the model, whatever its format
    with pytest.raises(IntegrityError, match=rf"{model.name}: sha256 does not match the manifest"):
        load(version)
    assert not marker.exists(), "the crafted pickle ran"
    assert unpickled == []


def test_a_model_file_swapped_on_disk_after_the_read_changes_nothing(
    saved: Path, tmp_path: Path, monkeypatch
) -> None:
    """The bytes unpickled are the bytes checked: the model file is swapped for a crafted pickle after the files
    were read and checked, while the golden rows are validated (before anything is unpickled); the load gives the
    saved model and the pickle never runs."""
    import mlprod.schema

    version = tmp_path / "churn" / saved.name
    shutil.copytree(saved, version)
    model = _model_file(version)
    marker = tmp_path / "ran.marker"
    joblib.dump(_RunsOnLoad(marker), tmp_path / "crafted.joblib")
    swaps: list[int] = []
    real_validate = mlprod.schema.validate

    def validate(*a: Any, **k: Any) -> Any:
        if not swaps:  # what an attacker racing the load does, once the files were checked
            shutil.copyfile(tmp_path / "crafted.joblib", model)
            swaps.append(1)
        return real_validate(*a, **k)

    monkeypatch.setattr(mlprod.schema, "validate", validate)
    loaded = load_bundle(version, trusted_types=TRUSTED).model
    assert swaps, "the golden rows were never validated"
    assert model.read_bytes() == (tmp_path / "crafted.joblib").read_bytes()  # it was swapped indeed
    assert (loaded.predict_proba(X) == FOREST.predict_proba(X)).all()
    assert not marker.exists(), "the unpickler read the file, not the checked bytes"
    monkeypatch.undo()
    with pytest.raises(IntegrityError, match=rf"{model.name}: sha256 does not match"):
        load_bundle(version, trusted_types=TRUSTED)  # the next load reads the swapped file, and refuses it
    assert not marker.exists()


# --- what a load leaves ----------------------------------------------------------------------------


def test_a_loaded_model_is_freed_by_reference_counting_alone(version: Path) -> None:
    "The CLI holds the cyclic collector off: nothing of a load may keep the model's arrays alive after it."
    was = gc.isenabled()
    gc.disable()
    try:
        bundle = load_bundle(version, trusted_types=TRUSTED)
        tree = bundle.model.steps[-1][1].estimators_[0].tree_
        refs = [weakref.ref(bundle.model), weakref.ref(bundle.model.steps[-1][1].estimators_[0])]
        del bundle, tree
        assert [r() for r in refs] == [None, None]
    finally:
        if was:
            gc.enable()


def test_loads_on_several_threads_at_once_each_get_their_own_model(version: Path) -> None:
    got: dict[tuple[int, int], Any] = {}

    def work(i: int) -> None:
        for r in range(3):
            got[i, r] = load_bundle(version, trusted_types=TRUSTED).model

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 12 and len({id(m) for m in got.values()}) == 12
    want = FOREST.predict_proba(X)  # (300, 2)
    for model in got.values():
        assert (model.predict_proba(X) == want).all()


# --- the property ----------------------------------------------------------------------------------

ESTIMATORS: dict[str, Callable[[int], Any]] = {
    "logistic": lambda seed: LogisticRegression(C=0.1 + seed % 7, max_iter=1000),
    "tree": lambda seed: DecisionTreeClassifier(max_depth=1 + seed % 6, random_state=seed),
    "forest": lambda seed: RandomForestClassifier(n_estimators=1 + seed % 8, max_depth=4, random_state=seed),
}


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(
    st.sampled_from(sorted(ESTIMATORS)),
    st.sampled_from(sorted(KINDS)),
    st.integers(0, 9),  # the compression level
    st.integers(0, 2**16),  # the seed: of the estimator and of the rows it is fit on
)
def test_a_loaded_model_predicts_what_the_saved_one_predicted(
    tmp_path_factory, estimator: str, kind: str, compression: int, seed: int
) -> None:
    rows = np.random.default_rng(seed).choice(len(DF), size=120, replace=False)  # (120,)
    model = _fitted(ESTIMATORS[estimator](seed), rows)
    model_format = KINDS[kind][0]
    bundle = Bundle(model, {"name": "churn"}, SCHEMA, {}, DF.head(4))
    root = tmp_path_factory.mktemp("property") / "churn"
    v = save_bundle(bundle, root, compression=compression, model_format=model_format)
    for load in LOADERS.values():
        loaded = load(v)
        assert (loaded.predict(X) == model.predict(X)).all()
        assert (loaded.predict_proba(X) == model.predict_proba(X)).all()
