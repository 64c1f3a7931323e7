"""data split: seeded, stratified, byte-for-byte reproducible, exactly scikit-learn's train_test_split."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.model_selection import train_test_split
from typer.testing import CliRunner

from mlprod.cli import app
from mlprod.data import iris_frame, split_file, split_frame
from mlprod.errors import ConfigError, DataError, SchemaError
from mlprod.tables import read_table, write_table


def test_split_is_sklearns_train_test_split(fixtures: Path) -> None:
    df = read_table(fixtures / "binary.csv")  # (300, 8)
    train, test = split_frame(df, test_size=0.3, seed=5, stratify="churned")
    want_train, want_test = train_test_split(df, test_size=0.3, random_state=5, stratify=df["churned"])
    pd.testing.assert_frame_equal(train, want_train)
    pd.testing.assert_frame_equal(test, want_test)
    assert abs(test["churned"].mean() - df["churned"].mean()) < 0.01  # stratified
    train, test = split_frame(df, test_size=30, seed=5)  # a number of rows
    assert len(test) == 30 and len(train) == 270


def test_split_file_is_byte_for_byte_reproducible(tmp_path: Path, fixtures: Path) -> None:
    src = fixtures / "binary.csv"
    a = split_file(
        src, tmp_path / "a_tr.csv", tmp_path / "a_te.csv", test_size=0.25, seed=1, stratify="churned"
    )
    b = split_file(
        src, tmp_path / "b_tr.csv", tmp_path / "b_te.csv", test_size=0.25, seed=1, stratify="churned"
    )
    c = split_file(src, tmp_path / "c_tr.csv", tmp_path / "c_te.csv", test_size=0.25, seed=2)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert a[1].read_bytes() != c[1].read_bytes()  # another seed, another split
    train, test = read_table(a[0]), read_table(a[1])
    assert len(train) + len(test) == 300 and set(train["customer_id"]).isdisjoint(test["customer_id"])


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"stratify": "colour"}, SchemaError, "column 'colour': the stratify column is not in the data"),
        ({"stratify": "age"}, DataError, "column 'age': 19 rows have no value to stratify on"),
        ({"test_size": 1.5}, ConfigError, "column 'test_size': 1.5 is out of range"),
        ({"test_size": 300}, ConfigError, "300 rows is out of range for 300 rows"),
        ({"test_size": 0}, ConfigError, "0 rows is out of range"),
    ],
)
def test_bad_split_requests(tmp_path: Path, fixtures: Path, kwargs: dict, error: type, fragment: str) -> None:
    with pytest.raises(error) as e:
        split_file(fixtures / "binary.csv", tmp_path / "tr.csv", tmp_path / "te.csv", **kwargs)
    assert fragment in str(e.value), str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_a_class_of_one_row_cannot_be_stratified(tmp_path: Path) -> None:
    df = iris_frame()
    df.loc[0, "species"] = "unique"
    write_table(df, tmp_path / "iris.csv")
    with pytest.raises(DataError, match="column 'species': class 'unique' has only 1 row"):
        split_file(tmp_path / "iris.csv", tmp_path / "tr.csv", tmp_path / "te.csv", stratify="species")


def test_outputs_are_checked_before_writing(tmp_path: Path, fixtures: Path) -> None:
    keep = tmp_path / "tr.csv"
    keep.write_text("an earlier train part\n")
    with pytest.raises(DataError, match="unknown table format"):
        split_file(fixtures / "binary.csv", keep, tmp_path / "te.xlsx")
    with pytest.raises(DataError, match="three different files"):
        split_file(fixtures / "binary.csv", keep, keep)
    assert keep.read_text() == "an earlier train part\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "tr.csv"
    ]


def test_cli_split_is_the_python_split(tmp_path: Path, fixtures: Path) -> None:
    want = split_file(fixtures / "multiclass.csv", tmp_path / "a.csv", tmp_path / "b.csv", 0.2, 4, "label")
    r = CliRunner().invoke(
        app,
        ["data", "split", str(fixtures / "multiclass.csv"), "--train-out", str(tmp_path / "c.csv")]
        + [
            "--test-out",
            str(tmp_path / "d.jsonl"),
            "--test-size",
            "0.2",
            "--seed",
            "4",
            "--stratify",
            "label",
        ],
    )
    assert r.exit_code == 0 and "(48 rows, test)" in r.stdout, r.output
    assert (tmp_path / "c.csv").read_bytes() == want[0].read_bytes()
    pd.testing.assert_frame_equal(read_table(tmp_path / "d.jsonl"), read_table(want[1]))
    r = CliRunner().invoke(
        app,
        [
            "data",
            "split",
            str(fixtures / "multiclass.csv"),
            "--train-out",
            "x.csv",
            "--test-out",
            "y.csv",
            "--stratify",
            "nope",
        ],
    )
    assert r.exit_code == 2 and r.stderr.startswith("mlprod: schema error: ") and r.stderr.count("\n") == 1
