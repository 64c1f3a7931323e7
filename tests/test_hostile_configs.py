"""A model config nested far too deep (`- - - ...` 100,000 levels) is one config error line naming the file and the
line: libyaml composes nested nodes by recursion in C, and such a file would end the process (or raise a
RecursionError) before mlprod saw it. Run in a child process: a crash fails the test instead of ending pytest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bad_inputs import figures

MLPROD = str(Path(sys.executable).parent / "mlprod")
FIXTURES = Path(__file__).parent / "fixtures"
HEAD = (
    "name: churn\ntask: classification\ntarget: churned\nid_col: customer_id\nestimator:\n  params:\n    C: "
)


def _deep(path: Path, depth: int, style: str) -> Path:
    value = "- " * depth + "1" if style == "block" else "[" * depth + "]" * depth
    nested = f"      {value}\n"  # line 8 of the file
    path.write_text(HEAD + nested)
    return path


@figures.passed_only
@pytest.mark.parametrize("style", ["block", "flow"])
@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_a_config_nested_too_deep_is_one_line(tmp_path: Path, depth: int, style: str) -> None:
    cfg = _deep(tmp_path / "deep.yaml", depth, style)
    child = "from mlprod.train import load_config\nimport sys\n"
    child += "try:\n    load_config(sys.argv[1])\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    r = subprocess.run([sys.executable, "-c", child, str(cfg)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr[-500:])
    assert r.stdout.startswith(f"ConfigError {cfg}:") and r.stdout.count("\n") == 1, r.stdout
    out = tmp_path / "models"
    args = [
        "train",
        "--config",
        str(cfg),
        "--train-data",
        str(FIXTURES / "binary.csv"),
        "--out-dir",
        str(out),
    ]
    r = subprocess.run([MLPROD, *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlprod: config error: ") and str(cfg) in lines[0], lines
    assert not out.exists()
    figures.hostile("crash", f"a config nested {depth} levels ({style})", runs=2)


def test_a_config_nested_within_the_limit_still_reads(tmp_path: Path) -> None:
    from mlprod.errors import ConfigError
    from mlprod.train import load_config

    cfg = _deep(tmp_path / "ok.yaml", 50, "flow")
    with pytest.raises(
        ConfigError
    ) as e:  # read, then refused for what it says (C is not a number), not its depth
        load_config(cfg)
    assert "levels" not in str(e.value)


def _alias_bomb(levels: int = 9) -> str:
    "YAML anchors that each repeat the one before ten times: a few hundred bytes that expand to 10**levels nodes."
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


@figures.passed_only
def test_a_config_of_aliases_that_expand_without_end_is_one_line(tmp_path: Path) -> None:
    "A YAML alias bomb: refused before it is expanded (it grew past 3 GB within 26 s), in a child with a timeout."
    cfg = tmp_path / "bomb.yaml"
    config = "name: churn\ntask: classification\ntarget: churned\nid_col: customer_id\nestimator:\n"
    config += "  class: sklearn.linear_model.LogisticRegression\n"
    cfg.write_text(config + _alias_bomb())
    out = tmp_path / "models"
    args = [
        "train",
        "--config",
        str(cfg),
        "--train-data",
        str(FIXTURES / "binary.csv"),
        "--out-dir",
        str(out),
    ]
    r = subprocess.run([MLPROD, *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlprod: config error: ") and str(cfg) in lines[0], lines
    assert "aliases" in lines[0].split(str(cfg), 1)[1], lines
    assert not out.exists()
    figures.hostile("memory", "a YAML alias bomb as a config")


def test_a_few_aliases_still_read(tmp_path: Path) -> None:
    from mlprod.io import check_yaml

    check_yaml("base: &b {C: 1.0}\none: *b\ntwo: *b\n", tmp_path / "ok.yaml")  # anchors a config may use
