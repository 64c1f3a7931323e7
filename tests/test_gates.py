"""Gated promotion (issue 22): `promote` checks that the version verifies (signature policy included), meets its
metric floors and changes few predictions from the champion's; a refusal is one line naming the gate, and
`--force` promotes with the failed gates in the journal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from mlprod.bundle import Bundle, save_bundle
from mlprod.errors import BundleError
from mlprod.features import build_pipeline
from mlprod.gates import promote_checked
from mlprod.journal import applied, journal_problems, read_journal
from mlprod.registry import promote, read_aliases
from mlprod.schema import capture_schema, validate
from mlprod.settings import MlprodSettings
from mlprod.signing import new_key
from mlprod.tables import read_table

FIXTURES = Path(__file__).parent / "fixtures"
DATA = FIXTURES / "binary.csv"


def _bundle(C: float = 1.0, accuracy: float = 0.8, config: dict | None = None) -> Bundle:
    df = read_table(DATA)  # (300, 8)
    schema = capture_schema(df, "classification", "churned", "customer_id")
    pipe = build_pipeline(schema, LogisticRegression(C=C, max_iter=1000), {"scale": True, "transformers": []})
    pipe.fit(validate(schema, df), df["churned"])
    config = {"name": "churn", "task": "classification", **(config or {})}
    return Bundle(pipe, config, schema, {"accuracy": accuracy}, df.head(8))


@pytest.fixture
def root(tmp_path: Path) -> tuple[Path, str, str]:
    "A model root whose champion is `good`; `other` predicts differently on 29% of the rows, accuracy 0.7."
    root = tmp_path / "churn"
    good = save_bundle(_bundle(), root).name
    other = save_bundle(_bundle(C=0.001, accuracy=0.7), root).name
    promote(root, good)
    return root, good, other


def _last(root: Path) -> dict:
    lines = applied(read_journal(root), read_aliases(root))
    assert journal_problems(root, read_aliases(root)) == []
    return lines[-1]


def _refused_then_forced(root: Path, version: str, gate: str, **gates) -> None:
    before = ((root / "aliases.json").read_bytes(), (root / "history.jsonl").read_bytes())
    with pytest.raises(BundleError, match=f"refused by the {gate} gate"):
        promote_checked(root, version, **gates)
    assert ((root / "aliases.json").read_bytes(), (root / "history.jsonl").read_bytes()) == before
    aliases, _, failed = promote_checked(root, version, force=True, reason="on call", **gates)
    assert aliases["champion"] == version and [g for g, _ in failed] == [gate]
    last = _last(root)
    assert (last["to"], last["forced"], last["failed_gates"], last["reason"]) == (
        version,
        True,
        [gate],
        "on call",
    )


def test_the_floors_gate_given_on_the_command(root) -> None:
    root, _, other = root
    _refused_then_forced(root, other, "floors", floors={"accuracy": 0.75})


def test_the_floors_gate_from_the_config(tmp_path: Path) -> None:
    root = tmp_path / "churn"
    v = save_bundle(_bundle(accuracy=0.6, config={"promote": {"floors": {"accuracy": 0.7}}}), root).name
    _refused_then_forced(root, v, "floors")


def test_the_changed_gate(root) -> None:
    root, good, other = root
    with pytest.raises(BundleError, match=r"changed gate: \d+ of 300 rows change their prediction"):
        promote_checked(root, other, against=DATA, max_changed=0.01)
    _refused_then_forced(root, other, "changed", against=DATA, max_changed=0.01)
    _, summary, failed = promote_checked(root, good, against=DATA, max_changed=1.0)
    assert not failed and any("rows change their prediction" in line for line in summary)


def test_the_verify_gate_under_a_signature_policy(root, tmp_path: Path) -> None:
    root, _, other = root
    _, public, _ = new_key("release", tmp_path / "keys")
    always = MlprodSettings(require_signature="always", trusted_keys=[str(public)])
    _refused_then_forced(root, other, "verify", settings=always)


def test_a_changed_file_is_never_promoted_even_forced(root) -> None:
    root, _, other = root
    (root / other / "metrics.json").write_text('{"accuracy": 0.99}\n')
    with pytest.raises(BundleError, match="refused by the verify gate"):
        promote_checked(root, other)
    with pytest.raises(BundleError, match="metrics.json"):
        promote_checked(root, other, force=True)
    assert read_aliases(root)["champion"] != other


def test_the_command_refuses_in_one_line_and_forces(root, cli) -> None:
    root, _, other = root
    r = cli("models", "promote", str(root), other, "--floor", "accuracy=0.75", cwd=root.parent)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "refused by the floors gate" in r.stderr, (
        r.stderr
    )
    r = cli(
        "models", "promote", str(root), other, "--against", str(DATA), "--max-changed", "0.5", cwd=root.parent
    )
    assert r.returncode == 0 and "rows change their prediction" in r.stdout, r.stderr
    r = cli("models", "promote", str(root), other, "--floor", "accuracy=oops", cwd=root.parent)
    assert r.returncode == 2 and "bad floor" in r.stderr, r.stderr
    assert json.loads((root / "aliases.json").read_text())["champion"] == other
