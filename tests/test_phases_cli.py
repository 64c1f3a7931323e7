"""Every bad input to train, predict, evaluate and split: one line on stderr, exit 2, no output left behind,
an existing output untouched. Through typer's runner (fast), and once through the installed command."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlprod.bundle import save_bundle
from mlprod.cli import app
from mlprod.tables import read_table, write_table
from mlprod.train import train_from_data

CHURN = {
    "name": "churn",
    "task": "classification",
    "target": "churned",
    "id_col": "customer_id",
    "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500}},
    "preprocessing": {"scale": True},
}
OLD = "an earlier output\n"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    "A folder with a saved model, good and bad inputs, and an earlier output that no failure may touch."
    d = tmp_path_factory.mktemp("phases")
    df = read_table(Path(__file__).parent / "fixtures" / "binary.csv")  # (300, 8)
    save_bundle(train_from_data(CHURN, df), d / "models" / "churn")
    write_table(df, d / "data.csv")
    write_table(
        df.assign(score=df["score"].astype(object).where(df.index != 200, "lots")), d / "bad_value.csv"
    )
    write_table(df.drop(columns=["plan"]), d / "no_plan.csv")
    write_table(df.iloc[:10], d / "truth10.csv")
    write_table(df[["customer_id", "churned"]].rename(columns={"churned": "prediction"}), d / "preds.jsonl")
    (d / "churn.yaml").write_text(yaml.safe_dump(CHURN, sort_keys=False))
    (d / "numeric.yaml").write_text(yaml.safe_dump(CHURN | {"numeric": ["score"]}, sort_keys=False))
    bad = CHURN | {"estimator": {"class": "sklearn.linear_model.Logistic"}}  # line 6: its class
    (d / "bad.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
    return d


def _files(d: Path) -> dict[str, str]:
    "Every path under `d` (new versions included), with the content of every file but the models'."
    return {
        str(p.relative_to(d)): p.read_text(errors="replace")
        if p.is_file() and "models" not in p.parts
        else ""
        for p in sorted(d.rglob("*"))
    }


CASES = [
    (
        "train bad config",
        ["train", "--config", "bad.yaml", "--train-data", "data.csv", "--out-dir", "models/x"],
        "config error: bad.yaml:6: column 'estimator.class': module 'sklearn.linear_model' has no 'Logistic'",
    ),
    (
        "train missing data",
        ["train", "--config", "churn.yaml", "--train-data", "nope.csv", "--out-dir", "models/x"],
        "data error: nope.csv: file not found",
    ),
    (
        "train bad value",
        ["train", "--config", "numeric.yaml", "--train-data", "bad_value.csv", "--out-dir", "models/churn"],
        "schema error: bad_value.csv: column 'score': row 201: cannot convert 'lots'",
    ),
    (
        "predict bad value",
        ["predict", "--model-dir", "models/churn", "--input", "bad_value.csv", "--output", "old.jsonl"],
        "schema error: bad_value.csv: column 'score': row 201: cannot convert 'lots'",
    ),
    (
        "predict missing column",
        ["predict", "--model-dir", "models/churn", "--input", "no_plan.csv", "--output", "old.jsonl"],
        "schema error: no_plan.csv: missing column: plan",
    ),
    (
        "predict bad output",
        ["predict", "--model-dir", "models/churn", "--input", "data.csv", "--output", "p.xlsx"],
        "data error: p.xlsx: unknown table format",
    ),
    (
        "predict no model",
        ["predict", "--model-dir", "models/none", "--input", "data.csv", "--output", "old.jsonl"],
        "bundle error: models/none: no such model folder",
    ),
    (
        "evaluate missing ids",
        [
            "evaluate",
            "--predictions",
            "preds.jsonl",
            "--truth",
            "truth10.csv",
            "--output",
            "old.json",
            "--model-dir",
            "models/churn",
        ],
        "data error: truth10.csv: column 'customer_id': 290 predicted ids are not in the truth: 'c0010'",
    ),
    (
        "evaluate no task",
        ["evaluate", "--predictions", "preds.jsonl", "--truth", "data.csv", "--output", "old.json"],
        "config error: column 'task': evaluate needs task, id_col, target_col",
    ),
    (
        "split bad size",
        ["data", "split", "data.csv", "--train-out", "a.csv", "--test-out", "old.csv", "--test-size", "0"],
        "config error: column 'test_size'",
    ),
]


@pytest.mark.parametrize(("args", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_no_output(
    work: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], fragment: str
) -> None:
    monkeypatch.chdir(work)
    for name in ("old.jsonl", "old.json", "old.csv"):
        (work / name).write_text(OLD)
    before = _files(work)
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith(f"mlprod: {fragment}") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.output
    assert _files(work) == before  # nothing written, nothing clobbered, no temporary left, no new version


def test_installed_command_prints_one_line_and_exits_2(work: Path, cli) -> None:
    (work / "old.jsonl").write_text(OLD)
    r = cli(
        "predict",
        "--model-dir",
        "models/churn",
        "--input",
        "bad_value.csv",
        "--output",
        "old.jsonl",
        cwd=work,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert (
        r.stderr
        == "mlprod: schema error: bad_value.csv: column 'score': row 201: cannot convert 'lots' to a number\n"
    )
    assert (work / "old.jsonl").read_text() == OLD
