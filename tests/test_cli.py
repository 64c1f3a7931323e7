"""The mlprod command as a user runs it: version, help, settings, fixtures, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from mlprod import __version__
from mlprod.data import FIXTURES


def test_version_and_help(cli) -> None:
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"mlprod {__version__}"
    r = cli("--help")
    assert r.returncode == 0
    for word in ("settings", "data"):
        assert word in r.stdout


def test_help_imports_no_heavy_library(cli) -> None:
    import subprocess
    import sys

    code = "import sys; sys.argv=['mlprod','--help']\nimport mlprod.cli as c\ntry: c.main()\nexcept SystemExit: pass\n"
    code += "heavy = [m for m in ('pandas','numpy','sklearn','pyarrow','duckdb') if m in sys.modules]\nprint(heavy)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip().endswith("[]"), r.stdout


def test_data_fixtures(cli, tmp_path: Path, fixtures: Path) -> None:
    r = cli("data", "fixtures", "--out-dir", str(tmp_path / "fx"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for name in FIXTURES:
        assert (tmp_path / "fx" / name).read_bytes() == (fixtures / name).read_bytes()


def test_settings_shows_values_and_sources(cli, tmp_path: Path) -> None:
    (tmp_path / "settings.ini").write_text("[mlprod]\nseed = 11\nversion_skew = warn\n")
    sub = tmp_path / "deeper"
    sub.mkdir()
    r = cli("settings", "--json", cwd=sub)  # found by searching upwards
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["seed"] == {"value": "11", "source": "../settings.ini [mlprod]"}
    assert got["version_skew"]["value"] == "warn"
    assert got["compression"]["source"] == "built-in default"
    r = cli("settings", cwd=sub)
    assert r.returncode == 0 and "seed" in r.stdout and "../settings.ini" in r.stdout


def test_settings_seed_is_the_default_seed(cli, tmp_path: Path) -> None:
    (tmp_path / "settings.ini").write_text("[mlprod]\nseed = 1\n")
    assert cli("data", "fixtures", "--out-dir", "a", cwd=tmp_path).returncode == 0
    assert cli("data", "fixtures", "--out-dir", "b", "--seed", "1", cwd=tmp_path).returncode == 0
    assert (tmp_path / "a" / "binary.csv").read_bytes() == (tmp_path / "b" / "binary.csv").read_bytes()


def test_bad_settings_is_one_line_exit_2(cli, tmp_path: Path) -> None:
    (tmp_path / "settings.ini").write_text("[mlprod]\ncompresion = 3\n")
    r = cli("data", "fixtures", "--out-dir", "x", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "settings.ini" in r.stderr and "compresion" in r.stderr and "unknown setting" in r.stderr


def test_unwritable_output_is_one_line_exit_2(cli, tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")
    r = cli("data", "fixtures", "--out-dir", str(tmp_path / "blocker" / "fx"), cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("mlprod: data error: ") and r.stderr.count("\n") == 1
    assert "blocker" in r.stderr
