"""The bundle's trust boundary: the model format a loader allows, crafted skops trees, required golden rows,
and versions that belong to their model root. Each through the Python function and through the command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from mlprod.bundle import Bundle, load_bundle, save_bundle
from mlprod.errors import BundleError, IntegrityError
from mlprod.features import build_pipeline
from mlprod.layout import MANIFEST
from mlprod.predict import Predictor
from mlprod.registry import list_versions, promote
from mlprod.schema import capture_schema, validate
from mlprod.tables import read_table
from mlprod.verify import _manifest

TRUSTED = ["numpy.dtype", "sklearn.tree._tree.Tree"]
SETTINGS = "[mlprod]\ntrusted_types = numpy.dtype, sklearn.tree._tree.Tree\n"


def _bundle(fixtures: Path, estimator=None) -> Bundle:
    df = read_table(fixtures / "binary.csv")  # (300, 8)
    schema = capture_schema(df, "classification", "churned", "customer_id")
    estimator = LogisticRegression(max_iter=1000) if estimator is None else estimator
    pipe = build_pipeline(schema, estimator, {"scale": True, "transformers": []})
    pipe.fit(validate(schema, df), df["churned"])
    return Bundle(pipe, {"name": "churn", "task": "classification"}, schema, {"accuracy": 0.75}, df.head(8))


def _rewrite_manifest(folder: Path) -> None:
    "What whoever can write the whole bundle does: regenerate the manifest after changing files."
    (folder / MANIFEST).write_text(json.dumps(_manifest(folder), indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    "One joblib and one skops version of the same small model, built once; tests copy them."
    fixtures = Path(__file__).parent / "fixtures"
    root = tmp_path_factory.mktemp("trust")
    b = _bundle(fixtures)
    return {
        "joblib": save_bundle(b, root / "j" / "churn"),
        "skops": save_bundle(b, root / "s" / "churn", model_format="skops"),
    }


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "churn" / src.name
    shutil.copytree(src, dst)
    return dst


class _RunsOnLoad:
    "Unpickling this writes `marker`: code that runs on load, visible as a new file."

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.write_text, (self.marker, "this code ran on load\n"))


def _one_line_exit_2(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr


# --- the model format: what the bundle records and what the loader allows ------------------------------


def test_a_pickle_beside_a_skops_model_is_refused_before_unpickling(saved, tmp_path: Path, cli) -> None:
    "A skops bundle with a code-running model.joblib added and its manifest rebuilt: nothing is unpickled."
    v = _copy(saved["skops"], tmp_path)
    marker = tmp_path / "ran.marker"
    joblib.dump(_RunsOnLoad(marker), v / "model.joblib")
    _rewrite_manifest(v)
    with pytest.raises(IntegrityError, match=r"model\.joblib: "):
        load_bundle(v, trusted_types=TRUSTED)
    with pytest.raises(IntegrityError, match=r"model\.joblib: "):
        Predictor.load(v, trusted_types=TRUSTED)
    assert not marker.exists(), "the pickle beside the skops model ran"
    (tmp_path / "settings.ini").write_text(SETTINGS)
    _one_line_exit_2(cli("models", "verify", str(v), cwd=tmp_path), "integrity error", "model.joblib")
    assert not marker.exists()


def test_a_pickle_in_place_of_a_recorded_skops_model_is_refused(saved, tmp_path: Path, cli) -> None:
    "metadata.json says skops; the skops file is swapped for a pickle and the manifest rebuilt."
    v = _copy(saved["skops"], tmp_path)
    marker = tmp_path / "ran.marker"
    (v / "model.skops").unlink()
    joblib.dump(_RunsOnLoad(marker), v / "model.joblib")
    _rewrite_manifest(v)
    with pytest.raises(IntegrityError, match=r"model\.joblib: .*skops"):
        load_bundle(v, trusted_types=TRUSTED)
    assert not marker.exists()
    _one_line_exit_2(cli("models", "verify", str(v), cwd=tmp_path), "model.joblib")
    assert not marker.exists()


def test_a_loader_that_allows_skops_only_refuses_a_joblib_bundle(
    saved, tmp_path: Path, cli, fixtures
) -> None:
    "allowed_formats=('skops',): a joblib bundle (even a consistent one) is refused before it is unpickled."
    v = _copy(saved["joblib"], tmp_path)
    marker = tmp_path / "ran.marker"
    joblib.dump(_RunsOnLoad(marker), v / "model.joblib")
    _rewrite_manifest(v)
    with pytest.raises(IntegrityError, match=r"model\.joblib: .*joblib.*allow"):
        load_bundle(v, allowed_formats=("skops",))
    with pytest.raises(IntegrityError, match=r"model\.joblib: "):
        Predictor.load(v, allowed_formats=("skops",))
    assert not marker.exists()
    # the skops bundle loads under the same rule
    assert load_bundle(saved["skops"], trusted_types=TRUSTED, allowed_formats=("skops",)).model is not None
    with pytest.raises(BundleError, match="unknown model format"):
        load_bundle(saved["skops"], trusted_types=TRUSTED, allowed_formats=("pickle",))
    # the command: the option, and the setting
    r = cli("models", "verify", str(v), "--allowed-format", "skops", cwd=tmp_path)
    _one_line_exit_2(r, "integrity error", "model.joblib")
    (tmp_path / "settings.ini").write_text(SETTINGS + "allowed_formats = skops\n")
    out = tmp_path / "p.jsonl"
    r = cli(
        "predict",
        "--model-dir",
        str(v),
        "--input",
        str(fixtures / "binary.csv"),
        "--output",
        str(out),
        cwd=tmp_path,
    )
    _one_line_exit_2(r, "model.joblib")
    assert not out.exists() and not marker.exists()
    r = cli("models", "verify", str(saved["skops"]), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # every other command that loads a model: evaluate, report (before a kernel starts), predict on Dask
    data = str(fixtures / "binary.csv")
    only = ("--allowed-format", "skops")
    runs = {
        "evaluate": (
            "evaluate",
            "--predictions",
            data,
            "--truth",
            data,
            "--model-dir",
            str(v),
            "--output",
            "m.json",
        ),
        "report": ("report", "evaluate", "--model-dir", str(v), "--data", data, "--out-dir", "rep"),
        "dask": (
            "predict",
            "--engine",
            "dask",
            "--model-dir",
            str(v),
            "--input",
            data,
            "--output",
            "d.parquet",
        ),
    }
    (tmp_path / "settings.ini").write_text(SETTINGS)
    for args in runs.values():
        _one_line_exit_2(cli(*args, *only, cwd=tmp_path), "model.joblib")
    assert not {"m.json", "rep", "d"} & {p.name for p in tmp_path.iterdir()} and not marker.exists()
    (tmp_path / "settings.ini").write_text(SETTINGS + "allowed_formats = skops, pickle\n")
    _one_line_exit_2(cli("models", "verify", str(saved["skops"]), cwd=tmp_path), "allowed_formats")


# --- skops trees: every structural invariant, before anything predicts -----------------------------------


def _tree_state(est) -> list[tuple[object, dict]]:
    "The (tree, state) pairs of a fitted DecisionTree or RandomForest."
    trees = [est.tree_] if hasattr(est, "tree_") else [e.tree_ for e in est.estimators_]
    return [(t, t.__getstate__()) for t in trees]


def _first_internal(nodes: np.ndarray) -> int:
    return int(np.flatnonzero(nodes["left_child"] != -1)[0])


def _first_leaf(nodes: np.ndarray) -> int:
    return int(np.flatnonzero(nodes["left_child"] == -1)[0])


def _alter(nodes: np.ndarray, how: str) -> None:
    "Change a copy of a tree's node array the way a crafted file would."
    i, leaf = _first_internal(nodes), _first_leaf(nodes)
    if how == "child out of range":
        nodes["left_child"][i] = len(nodes) + 1000
    elif how == "negative child":
        nodes["right_child"][i] = -7
    elif how == "cycle":
        nodes["left_child"][_first_internal(nodes[1:]) + 1] = 0  # a node below the root points back at it
    elif how == "leaf flag vs feature":
        nodes["feature"][leaf] = 0  # a leaf that claims to split
    elif how == "one child a leaf marker":
        nodes["right_child"][i] = -1
    elif how == "feature past the input width":
        nodes["feature"][i] = 10_000
    elif how == "non-finite threshold":
        nodes["threshold"][i] = np.nan
    else:
        raise AssertionError(how)


CRAFTS = [
    "child out of range",
    "negative child",
    "cycle",
    "leaf flag vs feature",
    "one child a leaf marker",
    "feature past the input width",
    "non-finite threshold",
]

LOAD_IN_A_CHILD = """
import sys
from mlprod.bundle import load_bundle
from mlprod.errors import MlprodError
try:
    b = load_bundle(sys.argv[1], trusted_types=sys.argv[2].split(","))
except MlprodError as e:
    print("refused:", type(e).__name__, e)
    sys.exit(3)
print("loaded")
"""


@pytest.fixture(scope="module")
def forests(tmp_path_factory) -> dict[str, Path]:
    "A tiny skops-saved DecisionTree and RandomForest (3 trees), built once."
    fixtures = Path(__file__).parent / "fixtures"
    root = tmp_path_factory.mktemp("trees")
    return {
        "tree": save_bundle(
            _bundle(fixtures, DecisionTreeClassifier(max_depth=3, random_state=0)),
            root / "tree",
            model_format="skops",
        ),
        "forest": save_bundle(
            _bundle(fixtures, RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0)),
            root / "forest",
            model_format="skops",
        ),
    }


def _craft(src: Path, tmp_path: Path, how: str) -> Path:
    "A copy of `src` whose (last) tree is altered `how`, saved by skops, manifest rebuilt: only the tree check is left."
    import skops.io as sio

    v = _copy(src, tmp_path)
    model = sio.load(v / "model.skops", trusted=TRUSTED + sio.get_untrusted_types(file=v / "model.skops"))
    est = model.steps[-1][1]
    tree, state = _tree_state(est)[-1]
    nodes = state["nodes"].copy()
    _alter(nodes, how)
    tree.__setstate__({**state, "nodes": nodes})  # never used to predict here
    sio.dump(model, v / "model.skops")
    _rewrite_manifest(v)
    return v


@pytest.mark.parametrize("kind", ["tree", "forest"])
def test_a_genuine_skops_tree_model_loads_and_predicts(forests, kind: str, fixtures: Path) -> None:
    b = load_bundle(forests[kind], trusted_types=TRUSTED)
    X = validate(b.schema, read_table(fixtures / "binary.csv"))
    assert b.model.predict_proba(X).shape == (300, 2)


@pytest.mark.parametrize("how", CRAFTS)
# Every craft on a single tree in `make test`; on a forest's trees too in `make test-slow` (a child process each).
@pytest.mark.parametrize("kind", ["tree", pytest.param("forest", marks=pytest.mark.slow)])
def test_a_crafted_tree_is_refused_before_it_predicts(forests, kind: str, how: str, tmp_path: Path) -> None:
    v = _craft(forests[kind], tmp_path, how)
    r = subprocess.run(
        [sys.executable, "-c", LOAD_IN_A_CHILD, str(v), ",".join(TRUSTED)],
        capture_output=True,
        text=True,
        timeout=60,  # a cycle makes predict loop forever
        env={k: val for k, val in os.environ.items() if k != "PYTHONPATH"},
    )
    # a crash (a negative return code: a signal), a hang or a load that went through all fail here
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "refused: IntegrityError" in r.stdout and "model.skops" in r.stdout, r.stdout


def test_a_crafted_tree_through_the_command(forests, tmp_path: Path, cli, fixtures: Path) -> None:
    v = _craft(forests["forest"], tmp_path, "child out of range")
    (tmp_path / "settings.ini").write_text(SETTINGS)
    _one_line_exit_2(cli("models", "verify", str(v), cwd=tmp_path), "integrity error", "model.skops", "tree")
    out = tmp_path / "p.jsonl"
    r = cli(
        "predict",
        "--model-dir",
        str(v),
        "--input",
        str(fixtures / "binary.csv"),
        "--output",
        str(out),
        cwd=tmp_path,
    )
    _one_line_exit_2(r, "model.skops")
    assert not out.exists()


def test_the_workspace_settings_let_no_crafted_tree_through(forests, tmp_path: Path) -> None:
    "settings.ini trusts Tree (forests in skops are a real use): with exactly its trusted types, a crafted forest is refused."
    from mlprod.settings import load_settings

    s = load_settings(Path(__file__).resolve().parent.parent / "settings.ini")
    trusted = s.list("trusted_types")
    assert "sklearn.tree._tree.Tree" in trusted and s.list("allowed_formats") == ["joblib", "skops"]
    v = _craft(forests["forest"], tmp_path, "cycle")
    r = subprocess.run(
        [sys.executable, "-c", LOAD_IN_A_CHILD, str(v), ",".join(trusted)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: val for k, val in os.environ.items() if k != "PYTHONPATH"},
    )
    assert r.returncode == 3 and "model.skops" in r.stdout and "cycle" in r.stdout, (r.returncode, r.stdout)


# --- golden rows are required where they were saved ------------------------------------------------------


def _golden_gone(v: Path, how: str) -> None:
    g = v / "golden.jsonl"
    lines = g.read_text().splitlines()
    if how == "deleted":
        g.unlink()
    elif how == "emptied":
        g.write_text("")
    elif how == "fewer rows":
        g.write_text("\n".join(lines[:3]) + "\n")
    elif how == "no expected columns":
        rows = [
            {k: val for k, val in json.loads(line).items() if not k.startswith("expected_")} for line in lines
        ]
        g.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif how == "no proba columns":
        rows = [
            {k: val for k, val in json.loads(line).items() if not k.startswith("expected_proba")}
            for line in lines
        ]
        g.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        raise AssertionError(how)
    _rewrite_manifest(v)


@pytest.mark.parametrize(
    "how", ["deleted", "emptied", "fewer rows", "no expected columns", "no proba columns"]
)
def test_golden_rows_cannot_be_removed(saved, tmp_path: Path, how: str, cli) -> None:
    v = _copy(saved["joblib"], tmp_path)
    assert json.loads((v / "metadata.json").read_text())["golden_rows"] == 8
    _golden_gone(v, how)
    with pytest.raises(IntegrityError, match=r"golden\.jsonl: .*8"):
        load_bundle(v)
    with pytest.raises(IntegrityError, match=r"golden\.jsonl: "):
        Predictor.load(v)
    _one_line_exit_2(cli("models", "verify", str(v), cwd=tmp_path), "integrity error", "golden.jsonl")


def test_a_swapped_model_without_golden_rows_no_longer_verifies(
    saved, tmp_path: Path, fixtures: Path, cli
) -> None:
    "The attack in full: another model in place, golden.jsonl deleted, manifest rebuilt."
    v = _copy(saved["joblib"], tmp_path)
    other = _bundle(fixtures, DecisionTreeClassifier(max_depth=1, random_state=0)).model
    joblib.dump(other, v / "model.joblib", compress=3)
    (v / "golden.jsonl").unlink()
    _rewrite_manifest(v)
    r = cli("models", "verify", str(v), cwd=tmp_path)
    _one_line_exit_2(r, "golden.jsonl")
    assert "golden (0 rows) all match" not in r.stdout


def test_a_bundle_saved_before_the_count_was_recorded_loads_as_before(saved, tmp_path: Path) -> None:
    v = _copy(saved["joblib"], tmp_path)
    meta = json.loads((v / "metadata.json").read_text())
    del meta["golden_rows"]
    (v / "metadata.json").write_text(json.dumps(meta, indent=2))
    (v / "golden.jsonl").unlink()
    _rewrite_manifest(v)
    assert load_bundle(v).golden is None


def test_a_bundle_saved_without_golden_rows_records_zero(fixtures: Path, tmp_path: Path) -> None:
    b = _bundle(fixtures)
    b.golden = None
    v = save_bundle(b, tmp_path / "m")
    assert json.loads((v / "metadata.json").read_text())["golden_rows"] == 0
    assert load_bundle(v).golden is None


# --- promote names a version of that root; versions are real folders -----------------------------------


@pytest.fixture
def two_roots(fixtures: Path, tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    "Two model roots with one version each: (root a, its version, root b, its version)."
    b = _bundle(fixtures)
    va = save_bundle(b, tmp_path / "a")
    vb = save_bundle(b, tmp_path / "b")
    return va.parent, va, vb.parent, vb


@pytest.mark.parametrize(
    "name",
    ["..", ".", "", "../b/{vb}", "{vb_abs}", "{vb}/..", "{va}/", "{va}/.", "./{va}", "{va}\\..", "{va}\x00"],
)
def test_promote_names_a_version_of_that_root_only(two_roots, name: str, cli, tmp_path: Path) -> None:
    a, va, _b, vb = two_roots
    version = name.format(vb=vb.name, vb_abs=vb, va=va.name)
    before = (a / "aliases.json").read_bytes()
    with pytest.raises(BundleError, match=r"version"):
        promote(a, version)
    assert (a / "aliases.json").read_bytes() == before
    if "\x00" not in version:  # a NUL cannot be passed as a command-line argument
        _one_line_exit_2(cli("models", "promote", str(a), version, cwd=tmp_path), "version")
        assert (a / "aliases.json").read_bytes() == before


def test_a_symlinked_version_is_refused_at_promote_list_and_load(two_roots, cli, tmp_path: Path) -> None:
    "A version folder that is a symbolic link into another root: refused everywhere."
    a, va, b, vb = two_roots
    link = a / ("20990101T000000.000000Z-" + vb.name.split("-")[-1])
    link.symlink_to(vb, target_is_directory=True)
    before = (a / "aliases.json").read_bytes()
    with pytest.raises(IntegrityError, match=r"symbolic link"):
        promote(a, link.name)
    assert (a / "aliases.json").read_bytes() == before
    _one_line_exit_2(cli("models", "promote", str(a), link.name, cwd=tmp_path), "symbolic link")
    with pytest.raises(IntegrityError, match=r"symbolic link"):
        list_versions(a)
    _one_line_exit_2(cli("models", "list", str(a), cwd=tmp_path), "symbolic link")
    with pytest.raises(IntegrityError, match=r"symbolic link"):
        load_bundle(link)
    # an alias edited to name the link: loading the root refuses it too
    (a / "aliases.json").write_text(json.dumps({"latest": va.name, "champion": link.name}))
    with pytest.raises(IntegrityError, match=r"symbolic link"):
        load_bundle(a)
    _one_line_exit_2(cli("models", "verify", str(a), cwd=tmp_path), "symbolic link")
    assert load_bundle(b).path == vb  # the other root itself is untouched and fine
