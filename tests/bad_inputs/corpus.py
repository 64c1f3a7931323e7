"""The bad-input corpus: each case is a committed file in this folder or a generator, with the error kind it must
raise in every command that reads that kind of input (tests/test_bad_inputs.py runs them all).

A case names its *role*, the kind of input it is; each role is read by several *slots*, a command's option:

    table        any table a command reads             train.data predict.input evaluate.predictions
                                                       evaluate.truth split.input report.data fetch.table
    rows         a table for the churn model            train.data predict.input evaluate.truth report.data
    predictions  a predictions table                    evaluate.predictions
    config       a model config (YAML)                  train.config
    settings     a settings.ini given with --settings   every command that reads the settings
    sql          a SQL file                             fetch.sql
    bundle       a model version or model root          predict.model evaluate.model report.model
                                                       models.verify models.show models.promote
                                                       models.list (the version's model root)
    output       where a command writes                 train.out predict.out evaluate.out split.out
                                                       report.out fetch.out

`expect` maps a slot (or "*", every slot of the role) to (kind, fragment of the message), or OK: the command
must succeed (an unseen category, a byte-order mark, missing feature values). A slot the case does not list is
not run. `nobody` cases run as an unprivileged user: root reads and writes whatever the permission bits say.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlprod.errors import (
    BundleError,
    ConfigError,
    DataError,
    IntegrityError,
    MlprodError,
    QueryError,
    ReportError,
    SchemaError,
    VersionSkewError,
)

HERE = Path(__file__).resolve().parent
OK = "ok"

ROLES: dict[str, tuple[str, ...]] = {
    "table": (
        "train.data",
        "predict.input",
        "evaluate.predictions",
        "evaluate.truth",
        "split.input",
        "report.data",
        "fetch.table",
    ),
    "rows": ("train.data", "predict.input", "evaluate.truth", "report.data"),
    "predictions": ("evaluate.predictions",),
    "config": ("train.config",),
    "settings": (
        "train.settings",
        "predict.settings",
        "evaluate.settings",
        "split.settings",
        "report.settings",
        "models.settings",
    ),
    "sql": ("fetch.sql",),
    "bundle": (
        "predict.model",
        "evaluate.model",
        "report.model",
        "models.verify",
        "models.show",
        "models.promote",
        "models.list",
    ),
    "output": ("train.out", "predict.out", "evaluate.out", "split.out", "report.out", "fetch.out"),
}

Expect = tuple[type[MlprodError], str] | str


@dataclass(frozen=True)
class Made:
    "A bad input made for one run: the path to pass, the path the message must name, and extras for the slot."

    path: Path
    named: Path | None = None  # default: `path`
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. {"version": name} for models promote


@dataclass(frozen=True)
class Case:
    id: str
    role: str
    source: (
        str | Callable[[Path, str, Any], Made]
    )  # a file under tests/bad_inputs/, or make(folder, slot, ws)
    expect: dict[str, Expect]
    nobody: bool = False  # needs an unprivileged user (permissions)
    note: str = ""

    def slots(self) -> list[str]:
        if "*" in self.expect:
            return list(ROLES[self.role])
        given = {k.partition("@")[0] for k in self.expect}
        return [s for s in ROLES[self.role] if s in given]

    def expected(self, slot: str, how: str = "") -> Expect:
        "What `slot` must do; `how` ('python' or 'cli') picks an override written as 'slot@how'."
        for key in (f"{slot}@{how}", slot, "*"):
            if key in self.expect:
                return self.expect[key]
        raise KeyError(slot)

    def make(self, folder: Path, slot: str, ws: Any) -> Made:
        "Put the bad input into `folder` (a fresh folder for this run) and say how to pass it."
        if callable(self.source):
            return self.source(folder, slot, ws)
        dst = folder / Path(self.source).name
        shutil.copyfile(HERE / self.source, dst)
        return Made(dst)


# --- generators ------------------------------------------------------------------------------------


def _folder_named_like_a_table(folder: Path, slot: str, ws: Any) -> Made:
    p = folder / ("q.sql" if slot == "fetch.sql" else "data.csv")
    p.mkdir()
    return Made(p)


def _missing_file(folder: Path, slot: str, ws: Any) -> Made:
    return Made(folder / ("q.sql" if slot == "fetch.sql" else "nowhere.csv"))


def _unreadable(rel: str) -> Callable[[Path, str, Any], Made]:
    def make(folder: Path, slot: str, ws: Any) -> Made:
        dst = folder / Path(rel).name
        shutil.copyfile(HERE / rel, dst)
        dst.chmod(0)
        return Made(dst)

    return make


def _empty_parquet(folder: Path, slot: str, ws: Any) -> Made:

    p = folder / "header_only.parquet"
    ws.frame.iloc[:0].to_parquet(p, index=False)
    return Made(p)


def _gzip_of_nothing(folder: Path, slot: str, ws: Any) -> Made:
    import gzip

    p = folder / "nothing.csv.gz"
    p.write_bytes(gzip.compress(b"", mtime=0))
    return Made(p)


def _deep_json(folder: Path, slot: str, ws: Any) -> Made:
    "The good rows as JSON Lines; line 2 has an extra column of lists nested 5,000 deep (pyarrow's reader crashed on it)."
    lines = [json.dumps(r) for r in ws.frame.head(5).to_dict("records")]
    lines[1] = lines[1][:-1] + ', "extra": ' + "[" * 5000 + "]" * 5000 + "}"
    p = folder / "deep.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Made(p)


def _name_too_long(folder: Path, slot: str, ws: Any) -> Made:
    return Made(folder / ("n" * 296 + ".csv"))


def _huge_line_gzip(folder: Path, slot: str, ws: Any) -> Made:
    "A small gzip'd JSON Lines file whose line 2 expands to 80 MiB: refused while streaming, not read whole."
    import zlib

    z = zlib.compressobj(1, zlib.DEFLATED, 31)  # a gzip stream
    p = folder / "huge_line.jsonl.gz"
    with open(p, "wb") as f:
        f.write(z.compress(b'{"a": 1}\n{"a": "'))
        for _ in range(80):
            f.write(z.compress(b"x" * (1 << 20)))
        f.write(z.compress(b'"}\n') + z.flush())
    return Made(p)


# bundles: a private copy of the workspace's model root, then one change


def _copy_root(folder: Path, ws: Any) -> tuple[Path, Path]:
    root = folder / "model"
    shutil.copytree(ws.root, root)
    return root, root / ws.version.name


def _rewrite_manifest(version: Path) -> None:
    "What a careless copy (or an attacker) does: regenerate the manifest after changing files."
    from mlprod.layout import MANIFEST
    from mlprod.verify import _manifest

    (version / MANIFEST).write_text(json.dumps(_manifest(version), indent=2, sort_keys=True) + "\n")


def _version_case(change: Callable[[Path], Any], manifest: bool = True) -> Callable[[Path, str, Any], Made]:
    def make(folder: Path, slot: str, ws: Any) -> Made:
        root, version = _copy_root(folder, ws)
        change(version)
        if manifest:
            _rewrite_manifest(version)
        return Made(version, extra={"root": root, "version": version.name})

    return make


def _root_case(aliases: str | None) -> Callable[[Path, str, Any], Made]:
    def make(folder: Path, slot: str, ws: Any) -> Made:
        root, version = _copy_root(folder, ws)
        if aliases is not None:
            (root / "aliases.json").write_text(aliases)
        return Made(root, extra={"root": root, "version": version.name})

    return make


def _edit_json(name: str, **changes: Any) -> Callable[[Path], None]:
    def change(version: Path) -> None:
        d = json.loads((version / name).read_text())
        for k, v in changes.items():
            if isinstance(v, dict):
                d[k] = {**d.get(k, {}), **v}
            else:
                d[k] = v
        (version / name).write_text(json.dumps(d))

    return change


def _write(name: str, text: str) -> Callable[[Path], None]:
    return lambda version: (version / name).write_text(text)


def _write_bytes(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda version: (version / name).write_bytes(data)


def _remove(name: str) -> Callable[[Path], None]:
    return lambda version: (version / name).unlink()


def _flip_model_byte(version: Path) -> None:
    p = version / "model.joblib"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))


def _golden_changed(version: Path) -> None:
    lines = (version / "golden.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row["expected_prediction"] = 1 - int(row["expected_prediction"])
    lines[0] = json.dumps(row)
    (version / "golden.jsonl").write_text("\n".join(lines) + "\n")


def _manifest_escape(version: Path) -> None:
    m = json.loads((version / "manifest.json").read_text())
    m["files"]["../aliases.json"] = {"sha256": "0" * 64, "bytes": 1}
    (version / "manifest.json").write_text(json.dumps(m))


def _model_dir_is_file(folder: Path, slot: str, ws: Any) -> Made:
    p = folder / "model"
    p.write_text("not a folder\n")
    return Made(p, extra={"root": p, "version": ws.version.name})


def _model_dir_missing(folder: Path, slot: str, ws: Any) -> Made:
    p = folder / "model"
    return Made(p, extra={"root": p, "version": ws.version.name})


def _not_a_bundle(folder: Path, slot: str, ws: Any) -> Made:
    p = folder / "model"
    p.mkdir()
    (p / "notes.txt").write_text("no manifest, no aliases\n")
    return Made(p, extra={"root": p, "version": ws.version.name})


def _unreadable_model(folder: Path, slot: str, ws: Any) -> Made:
    root, version = _copy_root(folder, ws)
    (version / "model.joblib").chmod(0)
    return Made(version, extra={"root": root, "version": version.name})


# outputs: each slot writes a file of its own kind (or a folder: train, report)

SUFFIX = {
    "predict.out": ".jsonl",
    "evaluate.out": ".json",
    "split.out": ".csv",
    "fetch.out": ".csv",
}
FOLDER_OUTPUTS = ("train.out", "report.out")


def _output_wrong_kind(folder: Path, slot: str, ws: Any) -> Made:
    "A folder where a file goes; a file where a folder goes."
    if slot in FOLDER_OUTPUTS:
        p = folder / "out"
        p.write_text("a file, not a folder\n")
    else:
        p = folder / f"out{SUFFIX[slot]}"
        p.mkdir()
        (p / "keep.txt").write_text("an earlier file inside\n")
    return Made(p)


def _output_parent_is_file(folder: Path, slot: str, ws: Any) -> Made:
    parent = folder / "afile"
    parent.write_text("a file, not a folder\n")
    return Made(parent / f"out{SUFFIX.get(slot, '')}", named=parent)


def _output_unwritable(folder: Path, slot: str, ws: Any) -> Made:
    "An existing output in a folder this user may not write (the folder is root's, mode 755)."
    locked = folder / "locked"
    if slot == "train.out":
        shutil.copytree(ws.root, locked / "churn")
        return Made(locked / "churn")
    locked.mkdir()
    if slot == "report.out":
        out = locked / "report"
        shutil.copytree(ws.path("old/old_report"), out)
        return Made(out)
    out = locked / f"old{SUFFIX[slot]}"
    out.write_text("an earlier output\n")
    return Made(out, named=locked)


def _output_unknown_format(folder: Path, slot: str, ws: Any) -> Made:
    return Made(folder / "out.xlsx")


def _output_is_input(folder: Path, slot: str, ws: Any) -> Made:
    "The output path names the (good) input file: copied here, passed as both."
    src = {"predict.out": "data.csv", "evaluate.out": "truth.csv", "split.out": "data.csv"}[slot]
    p = folder / src
    shutil.copyfile(ws.path(src), p)
    return Made(p, extra={"same_as_input": True})


# --- the cases -----------------------------------------------------------------------------------------


def _table(id: str, source: Any, fragment: str, **over: Expect) -> Case:
    "A broken table: a DataError everywhere. data fetch reads tables with DuckDB, whose words differ (any DataError)."
    return Case(id, "table", source, {"*": (DataError, fragment), "fetch.table": (DataError, ""), **over})


CASES: list[Case] = [
    # table: the file itself is broken; every command that reads a table says so, naming the file
    _table("empty_csv", "data/empty.csv", "empty file"),
    _table("empty_jsonl", "data/empty.jsonl", "empty file"),
    _table("blank_lines_csv", "data/blank_lines.csv", "no header"),
    _table("blank_lines_jsonl", "data/blank_lines.jsonl", "no rows"),
    _table("header_only_csv", "data/header_only.csv", "no rows", **{"fetch.table": OK}),
    _table("header_only_parquet", _empty_parquet, "no rows", **{"fetch.table": OK}),
    _table("gzip_of_nothing", _gzip_of_nothing, "empty file"),
    _table("ragged_row", "data/ragged.csv", ":5: ragged row with 9 fields"),
    _table("unclosed_quote", "data/unclosed_quote.csv", "cannot parse CSV"),
    _table("jsonl_broken_line", "data/broken_line.jsonl", ":3: malformed JSON"),
    _table("jsonl_non_object", "data/non_object.jsonl", ":2: a JSON list is not a row"),
    _table("jsonl_scalar_line", "data/scalar_line.jsonl", ":5: a JSON int is not a row"),
    _table(
        "jsonl_type_change",
        "data/type_change.jsonl",
        ":7: column 'tenure_months': a string where line 1 has a number",
        **{"fetch.table": OK},  # DuckDB reads the column as text: every value is kept
    ),
    _table("latin1_csv", "data/latin1.csv", ":4: not valid UTF-8"),
    _table("utf16_jsonl", "data/utf16.jsonl", ":1: not valid UTF-8"),
    _table("not_gzip", "data/not_gzip.csv.gz", "not a valid gzip file"),
    _table("truncated_gzip", "data/truncated.csv.gz", "not a valid gzip file"),
    _table("corrupt_parquet", "data/corrupt.parquet", "not a readable Parquet file"),
    _table("unknown_format", "data/spreadsheet.xlsx", "unknown table format"),
    _table("truncated_last_line", "data/truncated_last_line.csv", ":11: ragged row with 3 fields"),
    _table("duplicate_columns", "data/duplicate_columns.csv", "column 'age' appears 2 times in the header"),
    _table("path_is_folder", _folder_named_like_a_table, "is a folder"),
    _table("missing_file", _missing_file, "file not found"),
    Case(
        "unreadable_file",
        "table",
        _unreadable("data/bom.csv"),
        {"*": (DataError, "permission denied")},
        nobody=True,
    ),
    Case("bom_csv", "table", "data/bom.csv", {s: OK for s in ("train.data", "predict.input", "split.input")}),
    Case(
        "bom_jsonl",
        "table",
        "data/bom.jsonl",
        {s: OK for s in ("train.data", "predict.input", "split.input")},
    ),
    _table("deep_json", _deep_json, ":2: arrays and objects nested 5,001 deep (expected at most 100 levels)"),
    _table("name_too_long", _name_too_long, "a name of 300 bytes is too long"),
    _table("huge_line_gzip", _huge_line_gzip, ":2: a line of more than"),
    # rows: parses, but is wrong for the churn model
    Case(
        "missing_id_column",
        "rows",
        "rows/missing_id.csv",
        {
            "*": (SchemaError, "customer_id"),
        },
    ),
    Case(
        "duplicated_ids",
        "rows",
        "rows/duplicated_ids.csv",
        {
            "train.data": (DataError, "'c0002'"),
            "evaluate.truth": (DataError, "'c0002'"),
            "report.data": (DataError, "'c0002'"),
            "predict.input": OK,  # predict is row by row: ids are carried through, evaluate refuses them
        },
    ),
    Case(
        "missing_id_value",
        "rows",
        "rows/missing_id_value.csv",
        {"train.data": (DataError, "customer_id"), "evaluate.truth": (DataError, "customer_id")},
    ),
    Case(
        "wrong_type",
        "rows",
        "rows/wrong_type.csv",
        {
            "train.data": (SchemaError, "column 'score': row 5: cannot convert 'abc' to a number"),
            "predict.input": (SchemaError, "column 'score': row 5: cannot convert 'abc' to a number"),
            "report.data": (SchemaError, "column 'score': row 5: cannot convert 'abc' to a number"),
        },
    ),
    Case(
        "inf_feature",
        "rows",
        "rows/inf.csv",
        {
            "train.data": (SchemaError, "column 'income': row 8: infinite value"),
            "predict.input": (SchemaError, "column 'income': row 8: infinite value"),
            "report.data": (SchemaError, "column 'income': row 8: infinite value"),
        },
    ),
    Case(
        "nan_features",
        "rows",
        "rows/nan.csv",
        {"train.data": OK, "predict.input": OK},
        note="missing values are imputed inside the model",
    ),
    Case(
        "one_class",
        "rows",
        "rows/one_class.csv",
        {"train.data": (SchemaError, "column 'churned': only one class")},
    ),
    Case(
        "missing_label",
        "rows",
        "rows/missing_label.csv",
        {"train.data": (SchemaError, "column 'churned': 1 rows have no label")},
    ),
    Case(
        "beyond_float32",
        "rows",
        "rows/beyond_float32.csv",
        {"train.data": OK, "predict.input": OK},
        note="1e39 is a float64: the churn model (a logistic regression) takes it; a forest refuses it, naming the "
        "row (tests/test_hostile_values.py)",
    ),
    Case(
        "unseen_category",
        "rows",
        "rows/unseen_category.csv",
        {"predict.input": OK},
        note="the encoder ignores a category never seen in training",
    ),
    Case(
        "missing_feature_column",
        "rows",
        "rows/missing_feature.csv",
        {
            "train.data": (SchemaError, "plan"),
            "predict.input": (SchemaError, "missing column: plan"),
            "report.data": (SchemaError, "missing column: plan"),
        },
    ),
    Case(
        "missing_target_column",
        "rows",
        "rows/missing_target.csv",
        {
            "train.data": (SchemaError, "churned"),
            "evaluate.truth": (SchemaError, "churned"),
            "report.data": (SchemaError, "churned"),
            "predict.input": OK,
        },
    ),
    # predictions
    Case(
        "predictions_without_prediction",
        "predictions",
        "rows/predictions_no_prediction.csv",
        {"evaluate.predictions": (SchemaError, "prediction")},
    ),
    Case(
        "predictions_bad_proba",
        "predictions",
        "rows/predictions_bad_proba.csv",
        {"evaluate.predictions": (DataError, "'high' is not a number")},
    ),
    Case(
        "predictions_duplicated_ids",
        "predictions",
        "rows/predictions_duplicated_ids.csv",
        {"evaluate.predictions": (DataError, "'c0004'")},
    ),
    Case(
        "predictions_proba_above_one",
        "predictions",
        "rows/predictions_proba_above_one.csv",
        {
            "evaluate.predictions": (
                DataError,
                "column 'proba_1': row 4 (id 'c0003'): 1.5 is not a probability",
            )
        },
    ),
    Case(
        "predictions_proba_negative",
        "predictions",
        "rows/predictions_proba_negative.csv",
        {
            "evaluate.predictions": (
                DataError,
                "column 'proba_1': row 4 (id 'c0003'): -0.2 is not a probability",
            )
        },
    ),
    Case(
        "predictions_proba_infinite",
        "predictions",
        "rows/predictions_proba_infinite.csv",
        {
            "evaluate.predictions": (
                DataError,
                "column 'proba_1': row 4 (id 'c0003'): inf is not a probability",
            )
        },
    ),
    # configs
    Case(
        "config_unknown_key",
        "config",
        "configs/unknown_key.yaml",
        {"*": (ConfigError, ":8: column 'learning_rate': unknown key")},
    ),
    Case(
        "config_wrong_type",
        "config",
        "configs/wrong_type.yaml",
        {"*": (ConfigError, ":8: column 'seed': 'zero' is a str")},
    ),
    Case(
        "config_wrong_param_type",
        "config",
        "configs/wrong_param_type.yaml",
        {"*": (ConfigError, "column 'estimator.params'")},
    ),
    Case(
        "config_no_such_estimator",
        "config",
        "configs/no_such_estimator.yaml",
        {
            "*": (
                ConfigError,
                ":7: column 'estimator.class': module 'sklearn.linear_model' has no 'LogisticRegresion'",
            )
        },
    ),
    Case(
        "config_no_such_module",
        "config",
        "configs/no_such_module.yaml",
        {"*": (ConfigError, "column 'estimator.class': cannot import module")},
    ),
    Case(
        "config_not_an_estimator",
        "config",
        "configs/not_an_estimator.yaml",
        {"*": (ConfigError, "is not an estimator class")},
    ),
    Case(
        "config_no_such_param", "config", "configs/no_such_param.yaml", {"*": (ConfigError, "max_iterations")}
    ),
    Case(
        "config_regressor_for_classification",
        "config",
        "configs/regressor_for_classification.yaml",
        {"*": (ConfigError, "Ridge is a regressor")},
    ),
    Case(
        "config_bad_preprocessing",
        "config",
        "configs/bad_preprocessing.yaml",
        {"*": (ConfigError, "column 'preprocessing.scale': invalid value 1")},
    ),
    Case(
        "config_bad_test_size",
        "config",
        "configs/bad_test_size.yaml",
        {"*": (ConfigError, "column 'validation.test_size': 1.5 is out of range")},
    ),
    Case(
        "config_missing_target",
        "config",
        "configs/missing_target.yaml",
        {"*": (ConfigError, "column 'target': missing key")},
    ),
    Case(
        "config_unknown_feature",
        "config",
        lambda f, s, w: Made(_copy("configs/unknown_feature.yaml", f), named=w.path("data.csv")),
        {"*": (SchemaError, "feature columns not in the data: loyalty")},
        note="the config is valid alone; the data it meets has no such column, so the data file is named",
    ),
    Case("config_not_yaml", "config", "configs/not_yaml.yaml", {"*": (ConfigError, "not valid YAML")}),
    Case("config_empty", "config", "configs/empty.yaml", {"*": (ConfigError, "empty config")}),
    Case(
        "config_a_list",
        "config",
        "configs/list.yaml",
        {"*": (ConfigError, "a config is a mapping of keys, not a list")},
    ),
    Case("config_latin1", "config", "configs/latin1.yaml", {"*": (ConfigError, "not valid UTF-8")}),
    Case(
        "config_is_folder",
        "config",
        lambda f, s, w: _mkdir(f / "churn.yaml"),
        {"*": (ConfigError, "not a file")},
    ),
    Case(
        "config_missing",
        "config",
        lambda f, s, w: Made(f / "churn.yaml"),
        {"*": (ConfigError, "config file not found")},
    ),
    Case(
        "config_unreadable",
        "config",
        _unreadable("configs/unknown_key.yaml"),
        {"*": (ConfigError, "permission denied")},
        nobody=True,
    ),
    # settings (--settings FILE): every command reads them
    Case(
        "settings_unknown_key",
        "settings",
        "settings/unknown_key.ini",
        {"*": (ConfigError, "column 'model_root': unknown setting")},
    ),
    Case(
        "settings_bad_int",
        "settings",
        "settings/bad_int.ini",
        {"*": (ConfigError, "column 'seed': invalid value 'zero'")},
    ),
    Case(
        "settings_bad_choice",
        "settings",
        "settings/bad_choice.ini",
        {"*": (ConfigError, "column 'version_skew': invalid value 'sometimes'")},
    ),
    Case(
        "settings_no_section",
        "settings",
        "settings/no_section.ini",
        {"*": (ConfigError, "cannot parse settings")},
    ),
    Case("settings_latin1", "settings", "settings/latin1.ini", {"*": (ConfigError, "cannot parse settings")}),
    Case(
        "settings_missing",
        "settings",
        lambda f, s, w: Made(f / "settings.ini"),
        {"*": (ConfigError, "settings file not found")},
    ),
    Case(
        "settings_unreadable",
        "settings",
        _unreadable("settings/bad_int.ini"),
        {"*": (ConfigError, "permission denied")},
        nobody=True,
    ),
    # SQL (data fetch)
    Case("sql_empty", "sql", "sql/empty.sql", {"*": (QueryError, "SQL file is empty")}),
    Case("sql_comment_only", "sql", "sql/comment_only.sql", {"*": (QueryError, "holds no query")}),
    Case("sql_syntax_error", "sql", "sql/syntax_error.sql", {"*": (QueryError, ":2: ")}),
    Case("sql_missing_table", "sql", "sql/missing_table.sql", {"*": (QueryError, "no_such_table")}),
    Case("sql_missing_param", "sql", "sql/missing_param.sql", {"*": (QueryError, "min_age")}),
    Case("sql_type_error", "sql", "sql/type_error.sql", {"*": (QueryError, "Could not convert")}),
    Case("sql_latin1", "sql", "sql/latin1.sql", {"*": (QueryError, "not UTF-8")}),
    Case("sql_is_folder", "sql", _folder_named_like_a_table, {"*": (QueryError, "")}),
    Case("sql_missing", "sql", _missing_file, {"*": (QueryError, "SQL file not found")}),
]


def _copy(rel: str, folder: Path) -> Path:
    dst = folder / Path(rel).name
    shutil.copyfile(HERE / rel, dst)
    return dst


def _mkdir(p: Path) -> Made:
    p.mkdir()
    return Made(p)


_LOADS = ("predict.model", "evaluate.model", "report.model", "models.verify")


def _bundle(
    id: str,
    make: Any,
    load: Expect,
    show: Expect = OK,
    promote: Expect = OK,
    nobody: bool = False,
    **over: Expect,
) -> Case:
    """Loading refuses it (predict, evaluate, report, models verify); `show` and `promote` as given. The command
    `models promote` loads the version first (its verify gate): where `promote` succeeds, it fails as loading."""
    gated = {"models.promote@cli": load} if promote == OK else {}
    expect = dict.fromkeys(_LOADS, load) | {"models.show": show, "models.promote": promote} | gated | over
    return Case(id, "bundle", make, expect, nobody=nobody)


CASES += [
    _bundle(
        "bundle_newer_mlprod",
        _version_case(_edit_json("metadata.json", mlprod_version="99.0.0")),
        (BundleError, "saved by mlprod 99.0.0, newer than this mlprod"),
    ),
    _bundle(
        "bundle_version_skew",
        _version_case(_edit_json("metadata.json", versions={"scikit-learn": "0.24.2"})),
        (VersionSkewError, "saved with scikit-learn 0.24.2"),
    ),
    _bundle(
        "bundle_tampered_model",
        _version_case(_flip_model_byte, manifest=False),
        (IntegrityError, "model.joblib: sha256 does not match"),
        show=(IntegrityError, "model.joblib: sha256 does not match"),
        promote=(IntegrityError, "model.joblib: sha256 does not match"),
    ),
    _bundle(
        "bundle_extra_file",
        _version_case(_write("run.py", "print('hello')\n"), manifest=False),
        (IntegrityError, "run.py: file not in the manifest"),
        show=(IntegrityError, "run.py: file not in the manifest"),
        promote=(IntegrityError, "run.py: file not in the manifest"),
    ),
    _bundle(
        "bundle_no_manifest",
        _version_case(lambda v: (v / "manifest.json").unlink(), manifest=False),
        (IntegrityError, "manifest.json is missing"),
        show=(IntegrityError, "manifest.json is missing"),
        promote=(BundleError, "no version"),
    ),
    _bundle(
        "bundle_malformed_manifest",
        _version_case(_write("manifest.json", '{"files": []}\n'), manifest=False),
        (IntegrityError, "manifest.json is malformed"),
        show=(IntegrityError, "manifest.json is malformed"),
        promote=(IntegrityError, "manifest.json is malformed"),
    ),
    _bundle(
        "bundle_manifest_escapes",
        _version_case(_manifest_escape, manifest=False),
        (IntegrityError, "outside the bundle: '../aliases.json'"),
        show=(IntegrityError, "outside the bundle"),
        promote=(IntegrityError, "outside the bundle"),
    ),
    _bundle(
        "bundle_golden_changed",
        _version_case(_golden_changed),
        (IntegrityError, "golden row 1"),
    ),
    _bundle(
        "bundle_broken_metadata",
        _version_case(_write("metadata.json", "{not json\n")),
        (BundleError, "does not parse"),
        show=(BundleError, "metadata.json does not parse"),
    ),
    _bundle(
        "bundle_broken_schema",
        _version_case(_write("schema.json", '{"format": 1, "task": "classification"}\n')),
        (SchemaError, "malformed schema"),
    ),
    _bundle(
        "aliases_do_not_parse",
        _root_case("{not json\n"),
        (BundleError, "aliases.json: aliases file does not parse"),
        show=(BundleError, "aliases.json: aliases file does not parse"),
        promote=(BundleError, "aliases.json: aliases file does not parse"),
    ),
    _bundle(
        "aliases_not_an_object",
        _root_case('["latest"]\n'),
        (BundleError, "aliases.json: aliases file is not an object"),
        show=(BundleError, "aliases.json: aliases file is not an object"),
        promote=(BundleError, "aliases.json: aliases file is not an object"),
    ),
    _bundle(
        "alias_to_missing_version",
        _root_case('{"latest": "20990101T000000.000000Z-0123456789"}\n'),
        (BundleError, "points to a missing version"),
        show=(BundleError, "points to a missing version"),
        **{"models.promote@cli": OK},  # the version promoted loads: the alias it replaces is not read
    ),
    _bundle(
        "alias_escapes_root",
        _root_case('{"champion": "../../somewhere"}\n'),
        (BundleError, "not a version"),
        show=(BundleError, "not a version"),
        **{"models.promote@cli": OK},  # the version promoted loads: the alias it replaces is not read
    ),
    _bundle(
        "model_dir_missing",
        _model_dir_missing,
        (BundleError, "no such model folder"),
        show=(BundleError, "no such model folder"),
        promote=(BundleError, ""),
    ),
    _bundle(
        "model_dir_is_file",
        _model_dir_is_file,
        (BundleError, "not a folder"),
        show=(BundleError, "not a folder"),
        promote=(BundleError, ""),
    ),
    _bundle(
        "not_a_bundle",
        _not_a_bundle,
        (BundleError, "not a bundle"),
        show=(BundleError, "not a bundle"),
        promote=(BundleError, "no version"),
    ),
    _bundle(
        "bundle_unreadable_model",
        _unreadable_model,
        (BundleError, "permission denied"),
        show=(BundleError, "permission denied"),
        promote=(BundleError, "permission denied"),
        nobody=True,
    ),
    # valid JSON (or YAML) of the wrong shape, bytes that are not UTF-8, files that are not there: every reader
    # (loading, models show, models list) says which file, which key and what it must be
    _bundle(
        "bundle_metadata_a_list",
        _version_case(_write("metadata.json", "[1, 2]\n")),
        (BundleError, "metadata.json: the file must hold an object, got a list"),
        show=(BundleError, "metadata.json: the file must hold an object, got a list"),
        **{"models.list": (BundleError, "metadata.json: the file must hold an object, got a list")},
    ),
    _bundle(
        "bundle_metadata_null",
        _version_case(_write("metadata.json", "null\n")),
        (BundleError, "metadata.json: the file must hold an object, got null"),
        show=(BundleError, "metadata.json: the file must hold an object, got null"),
        **{"models.list": (BundleError, "metadata.json: the file must hold an object, got null")},
    ),
    _bundle(
        "bundle_versions_a_string",
        _version_case(_edit_json("metadata.json", versions="scikit-learn 1.5")),
        (BundleError, "metadata.json: key 'versions' must be an object of library -> version, got a string"),
        show=(BundleError, "key 'versions' must be an object of library -> version, got a string"),
        **{"models.list": (BundleError, "key 'versions' must be an object of library -> version")},
    ),
    _bundle(
        "bundle_golden_rows_a_string",
        _version_case(_edit_json("metadata.json", golden_rows="8")),
        (BundleError, "metadata.json: key 'golden_rows' must be a count (a whole number >= 0) or null"),
        show=(BundleError, "key 'golden_rows' must be a count"),
        **{"models.list": (BundleError, "key 'golden_rows' must be a count")},
    ),
    _bundle(
        "bundle_golden_rows_negative",
        _version_case(_edit_json("metadata.json", golden_rows=-3)),
        (BundleError, "key 'golden_rows' must be a count (a whole number >= 0) or null, got a number (-3)"),
        show=(BundleError, "key 'golden_rows' must be a count"),
        **{"models.list": (BundleError, "key 'golden_rows' must be a count")},
    ),
    _bundle(
        "bundle_training_data_not_objects",
        _version_case(_edit_json("metadata.json", training_data=["data.csv"])),
        (BundleError, "key 'training_data[0]' must be an object of the file's path, rows and sha256"),
        show=(BundleError, "key 'training_data[0]' must be an object"),
        **{"models.list": (BundleError, "key 'training_data[0]' must be an object")},
    ),
    _bundle(
        "bundle_model_format_a_list",
        _version_case(_edit_json("metadata.json", model_format=["joblib"])),
        (IntegrityError, "metadata.json: unknown model_format ['joblib']"),
        show=(IntegrityError, "metadata.json: unknown model_format ['joblib']"),
        promote=(IntegrityError, "metadata.json: unknown model_format ['joblib']"),
        **{"models.list": (BundleError, "key 'model_format' must be a string or null, got a list")},
    ),
    _bundle(
        "bundle_metadata_not_utf8",
        _version_case(_write_bytes("metadata.json", b'{"name": "caf\xe9"}\n')),
        (BundleError, "metadata.json: not UTF-8 text"),
        show=(BundleError, "metadata.json: not UTF-8 text"),
        **{"models.list": (BundleError, "metadata.json: not UTF-8 text")},
    ),
    _bundle(
        "bundle_metadata_nested_deep",
        _version_case(_write("metadata.json", "[" * 100_000)),
        (BundleError, "metadata.json: metadata.json is nested too deeply to read"),
        show=(BundleError, "metadata.json is nested too deeply to read"),
        **{"models.list": (BundleError, "metadata.json is nested too deeply to read")},
    ),
    _bundle(
        "bundle_metrics_a_list",
        _version_case(_write("metrics.json", "[0.9]\n")),
        (BundleError, "metrics.json: the file must hold an object, got a list"),
        show=(BundleError, "metrics.json: the file must hold an object, got a list"),
        **{"models.list": (BundleError, "metrics.json: the file must hold an object, got a list")},
    ),
    _bundle(
        "bundle_selection_a_string",
        _version_case(_edit_json("metrics.json", selection="accuracy")),
        (BundleError, "metrics.json: key 'selection' must be an object, got a string"),
        show=(BundleError, "metrics.json: key 'selection' must be an object, got a string"),
        **{"models.list": (BundleError, "metrics.json: key 'selection' must be an object, got a string")},
    ),
    _bundle(
        "bundle_schema_a_list",
        _version_case(_write("schema.json", "[1]\n")),
        (BundleError, "schema.json: the file must hold an object, got a list"),
        **{"models.list": OK},  # listing reads no schema
    ),
    _bundle(
        "bundle_schema_features_a_string",
        _version_case(_edit_json("schema.json", features="age, income")),
        (BundleError, "schema.json: key 'features' must be a list of objects (name, kind), got a string"),
    ),
    _bundle(
        "bundle_no_schema",
        _version_case(_remove("schema.json")),
        (BundleError, "schema.json: schema.json is missing from this bundle"),
    ),
    _bundle(
        "bundle_config_not_utf8",
        _version_case(_write_bytes("config.yaml", b"name: caf\xe9\n")),
        (BundleError, "config.yaml: not UTF-8 text"),
        show=(BundleError, "config.yaml: not UTF-8 text"),
        **{"models.list": OK},  # listing reads no config
    ),
    _bundle(
        "bundle_config_not_yaml",
        _version_case(_write("config.yaml", "name: [churn\n")),
        (BundleError, "config.yaml does not parse as YAML"),
        show=(BundleError, "config.yaml does not parse as YAML"),
    ),
    _bundle(
        "bundle_config_a_list",
        _version_case(_write("config.yaml", "- name\n- churn\n")),
        (BundleError, "config.yaml: the file must hold a mapping (the model config), got a list"),
        show=(BundleError, "config.yaml: the file must hold a mapping (the model config), got a list"),
    ),
    _bundle(
        "bundle_config_nested_deep",
        _version_case(_write("config.yaml", "- " * 100_000 + "1\n")),
        (BundleError, "config.yaml nests deeper than 100 levels"),
        show=(BundleError, "config.yaml nests deeper than 100 levels"),
    ),
    Case(  # optional files: a version without them loads, shows and lists
        "bundle_no_config_no_metrics",
        "bundle",
        _version_case(lambda v: (_remove("config.yaml")(v), _remove("metrics.json")(v))),
        dict.fromkeys(("predict.model", "models.verify", "models.show", "models.list", "models.promote"), OK),
    ),
    _bundle(
        "bundle_golden_lines_not_objects",
        _version_case(_write("golden.jsonl", "[1, 2]\n[3, 4]\n")),
        (IntegrityError, "golden.jsonl"),
    ),
    _bundle(
        "aliases_value_a_number",
        _root_case('{"latest": 20260101}\n'),
        (BundleError, "aliases.json: aliases file is not an object of alias -> version"),
        show=(BundleError, "aliases.json: aliases file is not an object of alias -> version"),
        promote=(BundleError, "aliases.json: aliases file is not an object of alias -> version"),
        **{"models.list": (BundleError, "aliases.json: aliases file is not an object of alias -> version")},
    ),
    _bundle(
        "bundle_manifest_nested_deep",
        _version_case(_write("manifest.json", "[" * 100_000), manifest=False),
        (IntegrityError, "manifest.json is malformed"),
        show=(IntegrityError, "manifest.json is malformed"),
        promote=(IntegrityError, "manifest.json is malformed"),
    ),
    # outputs
    Case(
        "output_wrong_kind",
        "output",
        _output_wrong_kind,
        {
            "*": (DataError, "output is a folder"),
            "train.out": (BundleError, "model root is a file"),
            "report.out": (ReportError, "the output folder is a file"),
        },
    ),
    Case(
        "output_parent_is_file",
        "output",
        _output_parent_is_file,
        {
            "*": (DataError, "output folder is a file"),
            "train.out": (BundleError, "cannot create the model root"),
            "report.out": (ReportError, "cannot create the output folder"),
        },
    ),
    Case(
        "output_unwritable",
        "output",
        _output_unwritable,
        {
            "*": (DataError, "not writable"),
            "train.out": (BundleError, "not writable"),
            "report.out": (ReportError, "not writable"),
        },
        nobody=True,
    ),
    Case(
        "output_unknown_format",
        "output",
        _output_unknown_format,
        {s: (DataError, "unknown table format") for s in ("predict.out", "split.out", "fetch.out")},
    ),
    Case(
        "output_is_input",
        "output",
        _output_is_input,
        {
            "predict.out": (DataError, "the output would overwrite the input"),
            "evaluate.out": (DataError, "the output would overwrite an input"),
            "split.out": (DataError, "three different files"),
        },
    ),
]

assert len({c.id for c in CASES}) == len(CASES), "case ids are unique"
