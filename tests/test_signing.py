"""Signed bundles (issue 22): a detached Ed25519 signature over a version's manifest, checked by every load against
the keys settings.ini trusts, before anything is unpickled. Through the Python functions and the command."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import joblib
import pytest

from mlprod.bundle import load_bundle, save_bundle
from mlprod.errors import BundleError, ConfigError, IntegrityError
from mlprod.layout import MANIFEST, SIGNATURE
from mlprod.predict import Predictor
from mlprod.settings import MlprodSettings
from mlprod.signing import check_signature, new_key, sign_version
from mlprod.verify import _manifest

from conftest import churn_bundle

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    "One saved version and two key pairs (`release`, trusted; `stranger`, not), made once; tests copy them."
    base = tmp_path_factory.mktemp("signing")
    keys = base / "keys"
    out = {"version": save_bundle(churn_bundle(), base / "root" / "churn")}
    for name in ("release", "stranger"):
        out[name], out[name + ".pub"], _ = new_key(name, keys)
    return out


def _copy(made: dict[str, Path], tmp_path: Path) -> Path:
    dst = tmp_path / "churn" / made["version"].name
    shutil.copytree(made["version"], dst)
    return dst


def _always(made: dict[str, Path]) -> MlprodSettings:
    return MlprodSettings(require_signature="always", trusted_keys=[str(made["release.pub"])])


def _settings_ini(folder: Path, made: dict[str, Path], policy: str = "always") -> None:
    shutil.copy(made["release.pub"], folder / "release.pub")  # listed relative to settings.ini
    (folder / "settings.ini").write_text(
        f"[mlprod]\nrequire_signature = {policy}\ntrusted_keys = release.pub\n"
    )


def _one_line_exit_2(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr


class _RunsOnLoad:
    "Unpickling this writes `marker`: code that runs on load, visible as a new file."

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.write_text, (self.marker, "this code ran on load\n"))


def test_sign_then_verify(made, tmp_path: Path) -> None:
    v = _copy(made, tmp_path)
    folder, kid = sign_version(v, made["release"])
    assert folder == v and (v / SIGNATURE).is_file()
    record = json.loads((v / SIGNATURE).read_text())
    assert record["key_id"] == kid and record["algorithm"] == "ed25519"
    assert SIGNATURE not in json.loads((v / MANIFEST).read_text())["files"]  # detached: not in what it signs
    assert check_signature(v, _always(made)) == kid
    b = load_bundle(v, settings=_always(made))  # the manifest, the signature and the golden rows all pass
    assert b.version == v.name
    assert not [p.name for p in v.parent.iterdir() if p.name.startswith(".")]  # no debris in the root


def test_unsigned_bundles_load_by_default_and_are_refused_under_always(made, tmp_path: Path) -> None:
    v = _copy(made, tmp_path)
    assert load_bundle(v).version == v.name  # if_present, the default: a bundle from before signatures loads
    with pytest.raises(IntegrityError, match="unsigned bundle refused: require_signature = always"):
        load_bundle(v, settings=_always(made))


@pytest.mark.parametrize(
    "name", ["manifest.json", "model.joblib", "metadata.json", "schema.json", "golden.jsonl"]
)
def test_one_byte_changed_after_signing_is_refused(made, tmp_path: Path, name: str) -> None:
    v = _copy(made, tmp_path)
    sign_version(v, made["release"])
    data = bytearray((v / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (v / name).write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=name.replace(".", r"\.")):
        load_bundle(v, settings=_always(made))


def test_a_rewritten_manifest_breaks_the_signature(made, tmp_path: Path) -> None:
    "Whoever changes a file and writes a consistent manifest still cannot sign it with a trusted key."
    v = _copy(made, tmp_path)
    _, kid = sign_version(v, made["release"])
    (v / "metrics.json").write_text('{"accuracy": 0.99}\n')
    (v / MANIFEST).write_text(json.dumps(_manifest(v), indent=2, sort_keys=True) + "\n")
    with pytest.raises(IntegrityError, match=f"signature by key {kid} does not match manifest.json"):
        load_bundle(v, settings=_always(made))


def test_an_unlisted_signer_is_refused_before_unpickling(made, tmp_path: Path, cli) -> None:
    v = _copy(made, tmp_path)
    marker = tmp_path / "ran.marker"
    joblib.dump(_RunsOnLoad(marker), v / "model.joblib")
    (v / MANIFEST).write_text(json.dumps(_manifest(v), indent=2, sort_keys=True) + "\n")
    _, kid = sign_version(v, made["stranger"])
    for load in (load_bundle, Predictor.load):
        with pytest.raises(IntegrityError, match=f"signed by key {kid}, which is not one of trusted_keys"):
            load(v, settings=_always(made))
    assert not marker.exists(), "the pickle signed by an unlisted key ran"
    _settings_ini(tmp_path, made)
    _one_line_exit_2(cli("models", "verify", str(v), cwd=tmp_path), "integrity error", kid)
    assert not marker.exists()


def test_the_trust_list_never_comes_from_the_bundle(made, tmp_path: Path) -> None:
    "A public key dropped into the version is not read: the signer is still unlisted."
    v = _copy(made, tmp_path)
    _, kid = sign_version(v, made["stranger"])
    shutil.copy(made["stranger.pub"], v / "stranger.pub")
    with pytest.raises(IntegrityError, match=f"signed by key {kid}, which is not one of trusted_keys"):
        load_bundle(v, settings=_always(made))


def test_key_files_are_0600_from_creation_and_never_in_a_model_root(made, tmp_path: Path) -> None:
    private, public, kid = new_key("k", tmp_path / "keys")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert len(kid) == 16 and public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    with pytest.raises(ConfigError, match="never overwritten"):
        new_key("k", tmp_path / "keys")
    v = _copy(made, tmp_path)
    for inside in (v, made["version"].parent):  # a version, a model root (its aliases.json)
        with pytest.raises(BundleError):
            new_key("k", inside)
        assert not list(inside.glob("k.*"))


def test_the_private_key_is_never_readable_by_others_while_written(tmp_path: Path, monkeypatch) -> None:
    "The mode is the open's, not a chmod after: a umask of 0 still gives 0600, and chmod is never called."
    import os

    calls: list[str] = []
    monkeypatch.setattr(os, "chmod", lambda *a, **k: calls.append("chmod"))
    old = os.umask(0)
    try:
        private, _, _ = new_key("k", tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and not calls


def test_the_command_signs_and_verifies_under_settings(made, tmp_path: Path, cli) -> None:
    v = _copy(made, tmp_path)
    r = cli("keys", "new", "ops", "--dir", "keys", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "keys" / "ops.key").stat().st_mode) == 0o600
    _settings_ini(tmp_path, made)
    _one_line_exit_2(cli("models", "verify", str(v), cwd=tmp_path), "unsigned bundle refused")
    r = cli("models", "sign", str(v), "--key", str(made["release"]), cwd=tmp_path)
    assert r.returncode == 0 and "signed" in r.stdout, r.stderr
    r = cli("models", "verify", str(v), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = cli("predict", "--model-dir", str(v), "--input", str(FIXTURES / "binary.csv"), "--output",
            str(tmp_path / "p.csv"), cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_a_bad_trusted_key_file_is_one_line_naming_it(made, tmp_path: Path, cli) -> None:
    v = _copy(made, tmp_path)
    sign_version(v, made["release"])
    (tmp_path / "release.pub").write_text("not a key\n")
    (tmp_path / "settings.ini").write_text(
        "[mlprod]\nrequire_signature = always\ntrusted_keys = release.pub\n"
    )
    _one_line_exit_2(
        cli("models", "verify", str(v), cwd=tmp_path), "release.pub", "not an Ed25519 public key"
    )


def test_train_signs_at_train_time(made, tmp_path: Path, cli) -> None:
    root = tmp_path / "models" / "churn"
    config = str(Path(__file__).parents[1] / "configs" / "churn_logreg.yaml")
    r = cli("train", "--config", config, "--train-data", str(FIXTURES / "binary.csv"), "--out-dir", str(root),
            "--sign-key", str(made["release"]), cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (v,) = [p for p in root.iterdir() if p.is_dir()]
    assert check_signature(v, _always(made)) == json.loads((v / SIGNATURE).read_text())["key_id"]
    r = cli("train", "--config", config, "--train-data", str(FIXTURES / "binary.csv"), "--out-dir", str(root),
            "--sign-key", str(made["release.pub"]), cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2 and "not an Ed25519 private key" in r.stderr, r.stderr
    assert len([p for p in root.iterdir() if p.is_dir()]) == 1  # refused before training
