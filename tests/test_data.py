"""data: the committed fixtures are exactly what make_fixtures writes, byte for byte."""

from __future__ import annotations

from pathlib import Path

from mlprod.data import FIXTURES, make_fixtures
from mlprod.tables import read_table


def test_make_fixtures_twice_is_byte_identical(tmp_path: Path) -> None:
    a = make_fixtures(tmp_path / "a", seed=0)
    b = make_fixtures(tmp_path / "b", seed=0)
    assert [p.name for p in a] == list(FIXTURES)
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes(), pa.name


def test_committed_fixtures_match_the_script(tmp_path: Path, fixtures: Path) -> None:
    for p in make_fixtures(tmp_path, seed=0):
        assert p.read_bytes() == (fixtures / p.name).read_bytes(), (
            f"tests/fixtures/{p.name} is not what make_fixtures(seed=0) writes: "
            "regenerate with `mlprod data fixtures --out-dir tests/fixtures`"
        )


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    a = make_fixtures(tmp_path / "a", seed=0)[0].read_bytes()
    b = make_fixtures(tmp_path / "b", seed=1)[0].read_bytes()
    assert a != b


def test_fixture_contents(fixtures: Path) -> None:
    binary = read_table(fixtures / "binary.csv")  # (300, 8)
    assert binary.shape == (300, 8) and binary["customer_id"].is_unique
    assert binary[["age", "income"]].isna().any().all() and binary[["city", "plan"]].isna().any().all()
    assert set(binary["churned"]) == {0, 1} and 0.2 < binary["churned"].mean() < 0.8
    multi = read_table(fixtures / "multiclass.csv")
    assert multi.shape == (240, 6) and multi["label"].value_counts().tolist() == [80, 80, 80]
    reg = read_table(fixtures / "regression.csv")
    assert reg.shape == (300, 6) and reg["price"].std() > 20
    inter = read_table(fixtures / "interactions.csv")
    assert list(inter.columns) == ["interaction_id", "user_id", "item_id", "timestamp", "weight"]
    assert len(inter) <= 400 and not inter.duplicated(["user_id", "item_id"]).any()
    for df in (binary, multi, reg, inter):
        assert len(df) <= 400
