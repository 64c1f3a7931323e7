"""The workspace settings (`mlprod.settings`): a declared pydantic model, read from settings.ini with today's
one-line messages (the file, the key as `column`, what was expected), pydantic's own text never shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from mlprod.errors import ConfigError
from mlprod.formats import CHUNK_ROWS
from mlprod.keys import config_error, key
from mlprod.settings import SETTINGS_SPEC, Int, MlprodSettings, load_settings

EVERY_KEY = (
    "outputs, models, predictions, reports, report_templates, seed, version_skew, compression, model_format, "
    "trusted_types, allowed_formats, chunk_rows, require_signature, trusted_keys"
)

# settings.ini's [mlprod] lines -> the message after "<file>: ", word for word as the command prints it
REFUSED = {
    "compresion = 3": f"column 'compresion': unknown setting (expected one of {EVERY_KEY})",
    "seed = zero": "column 'seed': invalid value 'zero' (expected an integer)",
    "seed = 1.5": "column 'seed': invalid value '1.5' (expected an integer)",
    "compression = 12": "column 'compression': 12 is out of range (expected an integer in [0, 9])",
    "compression = -1": "column 'compression': -1 is out of range (expected an integer in [0, 9])",
    "chunk_rows = 0": "column 'chunk_rows': 0 is out of range (expected an integer in [1, ...])",
    "chunk_rows = many": "column 'chunk_rows': invalid value 'many' (expected an integer)",
    "version_skew = sometimes": "column 'version_skew': invalid value 'sometimes' (expected error or warn or ignore)",
    "model_format = pickle": "column 'model_format': invalid value 'pickle' (expected joblib or skops)",
    "allowed_formats = joblib, pickle": (
        "column 'allowed_formats': invalid value 'joblib, pickle' "
        "(expected one or more of joblib, skops, comma-separated)"
    ),
    "allowed_formats =": (
        "column 'allowed_formats': invalid value '' (expected one or more of joblib, skops, comma-separated)"
    ),
    # the first key at fault in the file's order, whatever the model's order
    "compression = 99\nseed = x": "column 'compression': 99 is out of range (expected an integer in [0, 9])",
    "seed = x\nzzz = 1": "column 'seed': invalid value 'x' (expected an integer)",
}

PYDANTIC_WORDS = (
    "validation error",
    "pydantic",
    "Input should",
    "type=",
    "errors.pydantic.dev",
    "literal_error",
)


@pytest.mark.parametrize("lines", list(REFUSED), ids=list(REFUSED))
def test_each_refused_value_keeps_its_message(tmp_path: Path, lines: str) -> None:
    ini = tmp_path / "settings.ini"
    ini.write_text(f"[mlprod]\nreports = r\n{lines}\n")
    with pytest.raises(ConfigError) as e:
        load_settings(ini)
    assert str(e.value) == f"{ini}: {REFUSED[lines]}"
    assert e.value.path == ini and e.value.column == REFUSED[lines].split("'")[1]
    assert e.value.__cause__ is None and e.value.__suppress_context__  # raised `from None`: no pydantic chain
    assert not any(w in str(e.value) for w in PYDANTIC_WORDS), str(e.value)


def test_the_command_prints_the_same_one_line(cli, tmp_path: Path) -> None:
    (tmp_path / "settings.ini").write_text("[mlprod]\nallowed_formats = joblib, pickle\n")
    r = cli("settings", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr == (
        f"mlprod: config error: {tmp_path.resolve() / 'settings.ini'}: "
        + REFUSED["allowed_formats = joblib, pickle"]
        + "\n"
    ), r.stderr


def test_values_accepted_as_before(tmp_path: Path) -> None:
    ini = tmp_path / "settings.ini"
    ini.write_text(
        "[mlprod]\nseed = 1_000\nchunk_rows = 7\ntrusted_types =\nallowed_formats = skops\n"
        "version_skew = warn\nmodels = m\n"
    )
    s = load_settings(ini)
    assert s.int("seed") == 1000 and s.int("chunk_rows") == 7 and s.list("trusted_types") == []
    assert s.list("allowed_formats") == ["skops"] and s.get("version_skew") == "warn"
    assert s.values["seed"] == "1_000"  # shown as written
    assert s.sources["seed"].endswith("settings.ini [mlprod]") and s.sources["reports"] == "built-in default"


def test_one_declared_field_per_setting() -> None:
    fields = MlprodSettings.model_fields
    assert ", ".join(fields) == EVERY_KEY
    assert list(SETTINGS_SPEC) == list(fields)
    for name, info in fields.items():
        assert info.description, name  # every setting has its help
        assert SETTINGS_SPEC[name][1] == info.description
    assert MlprodSettings().chunk_rows == CHUNK_ROWS  # the one default chunk size, from mlprod.formats
    assert SETTINGS_SPEC["chunk_rows"][0] == str(CHUNK_ROWS)
    assert SETTINGS_SPEC["allowed_formats"][0] == "joblib, skops" and SETTINGS_SPEC["trusted_types"][0] == ""
    assert load_settings(search=False).int("chunk_rows") == CHUNK_ROWS


class _Toy(BaseModel):
    "Another declared model, as a model config would be: the one mapper (mlprod.keys) is not tied to the settings."

    model_config = ConfigDict(extra="forbid")
    task: Literal["classification", "regression"] = key(
        "classification or regression", choice=True, default="classification"
    )
    folds: Int = key("an integer", choice=True, out_of_range="an integer in [2, ...]", ge=2, default=5)


def test_config_error_serves_any_declared_model_with_lines() -> None:
    data = {"task": "ranking", "folds": "1"}
    with pytest.raises(ValidationError) as e:
        _Toy.model_validate(data)
    err = config_error(e.value, _Toy, "m.yaml", lines={"task": 3, "folds": 4}, order=list(data))
    assert isinstance(err, ConfigError)
    assert (
        str(err) == "m.yaml:3: column 'task': invalid value 'ranking' (expected classification or regression)"
    )
    data = {"folds": "1", "seeds": 2}
    with pytest.raises(ValidationError) as e:
        _Toy.model_validate(data)
    err = config_error(
        e.value, _Toy, "m.yaml", lines={"folds": 4, "seeds": 5}, order=list(data), unknown="unknown key"
    )
    assert str(err) == "m.yaml:4: column 'folds': 1 is out of range (expected an integer in [2, ...])"
    data = {"seeds": 2}
    with pytest.raises(ValidationError) as e:
        _Toy.model_validate(data)
    err = config_error(e.value, _Toy, "m.yaml", lines={"seeds": 5}, order=list(data), unknown="unknown key")
    assert str(err) == "m.yaml:5: column 'seeds': unknown key (expected one of task, folds)"


def test_help_imports_no_pydantic() -> None:
    "Settings are read inside the commands: `mlprod --help` pays for neither pydantic nor the settings module."
    code = "import sys; sys.argv=['mlprod','--help']\nimport mlprod.cli as c\ntry: c.main()\nexcept SystemExit: pass\n"
    code += "print([m for m in ('pydantic', 'mlprod.settings') if m in sys.modules])"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip().endswith("[]"), r.stdout + r.stderr


# -- the same settings from Python: one trust list for the command and the Python API ----------------------


@pytest.fixture(scope="module")
def skops_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    "A skops bundle whose pipeline holds mlprod's own ColumnProduct: a type skops does not trust by itself."
    from mlprod.bundle import save_bundle
    from mlprod.tables import read_table
    from mlprod.train import train_from_data

    from conftest import CHURN_CONFIG, FIXTURES

    product = {
        "class": "mlprod.features.ColumnProduct",
        "params": {"columns": ["age", "score"], "name": "a_s"},
    }
    cfg = CHURN_CONFIG | {"preprocessing": {"scale": True, "transformers": [product]}}
    bundle = train_from_data(cfg, read_table(FIXTURES / "binary.csv"))
    return save_bundle(bundle, tmp_path_factory.mktemp("skops") / "churn", model_format="skops")


def test_a_skops_bundle_loads_with_the_projects_settings_and_not_without(
    skops_model: Path, tmp_path: Path
) -> None:
    from mlprod.bundle import load_bundle
    from mlprod.errors import UntrustedTypeError
    from mlprod.predict import Predictor

    (tmp_path / "settings.ini").write_text(
        "[mlprod]\ntrusted_types = numpy.dtype, mlprod.features.ColumnProduct\nversion_skew = error\n"
    )
    (tmp_path / "nbs").mkdir()
    with pytest.raises(UntrustedTypeError, match=r"mlprod\.features\.ColumnProduct"):
        Predictor.load(skops_model)  # the library reads no settings.ini by itself
    settings = MlprodSettings.from_file(tmp_path / "settings.ini")
    assert settings.trusted_types == load_settings(tmp_path / "settings.ini").list("trusted_types")
    predictor = Predictor.load(skops_model, settings=settings)
    assert predictor.version == skops_model.name
    assert load_bundle(skops_model, settings=MlprodSettings.load(tmp_path / "nbs")).path == skops_model
    with pytest.raises(UntrustedTypeError):  # an argument given wins over the settings
        Predictor.load(skops_model, trusted_types=["numpy.dtype"], settings=settings)
    with pytest.raises(UntrustedTypeError):  # and a project without a settings.ini has the defaults
        Predictor.load(skops_model, settings=MlprodSettings.load(tmp_path.parent / "no-such-project"))


def test_settings_from_python_refuse_what_the_command_refuses(tmp_path: Path) -> None:
    from mlprod.settings import loading_options

    ini = tmp_path / "settings.ini"
    ini.write_text("[mlprod]\nallowed_formats = skops\nversion_skew = warn\n")
    assert loading_options(MlprodSettings.from_file(ini)) == ("warn", (), ("skops",))
    assert loading_options(None, trusted_types=["x.Y"]) == ("error", ("x.Y",), ("joblib", "skops"))
    for line, said in REFUSED.items():
        ini.write_text(f"[mlprod]\n{line}\n")
        with pytest.raises(ConfigError) as e:
            MlprodSettings.from_file(ini)
        assert str(e.value) == f"{ini}: {said}"
    with pytest.raises(ConfigError, match="settings must be MlprodSettings, got str"):
        loading_options(str(ini))  # type: ignore[arg-type]


def test_the_report_functions_take_the_settings_too(
    skops_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from mlprod.errors import UntrustedTypeError
    from mlprod.report import evaluate_report

    from conftest import FIXTURES

    monkeypatch.chdir(tmp_path)
    ini = tmp_path / "settings.ini"
    ini.write_text("[mlprod]\ntrusted_types = numpy.dtype, mlprod.features.ColumnProduct\n")
    with pytest.raises(UntrustedTypeError):  # refused before a kernel starts
        evaluate_report(skops_model, FIXTURES / "binary.csv", tmp_path / "r")
    assert not (tmp_path / "r").exists()
    out = evaluate_report(
        skops_model, FIXTURES / "binary.csv", tmp_path / "r", settings=MlprodSettings.from_file(ini)
    )
    assert json.loads((out / "metrics.json").read_text())["rows"] == 300
