"""A write the machine refuses (a full disk, a file size limit) while a command commits a table or metrics:
one `output error` line naming the output, exit 2, no hidden temporary left, an earlier output byte-identical.

The guard is one place, `mlprod.lineage.staged_output` (every table and metrics output is written through it;
it stages with `mlprod.commit.staging`);
these tests drive it with a real full file system (a tmpfs, where this machine lets root mount one) and with an
ENOSPC injected into the writer in-process."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bad_inputs import figures
from typer.testing import CliRunner

import mlprod.io
import mlprod.tables
from mlprod.cli import app
from mlprod.data import write_iris
from mlprod.errors import OutputError

from conftest import fill_up, small_tmpfs

MLPROD = str(Path(sys.executable).parent / "mlprod")
OLD = b"an earlier output: no failure may touch it\n"


def _entries(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def full(tmp_path: Path) -> Iterator[Path]:
    "A 64 KiB tmpfs, filled up but for an earlier output; skipped where this machine does not let us mount one."
    with small_tmpfs(tmp_path / "full", "64k") as mnt:
        (mnt / "old.csv").write_bytes(OLD)
        fill_up(mnt)
        yield mnt


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_iris(tmp_path_factory.mktemp("iris") / "iris.csv")


def _one_line(stderr: str, output: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("mlprod: output error: ") and output in lines[0], stderr
    assert os.strerror(errno.ENOSPC) in lines[0], stderr


@figures.passed_only
@pytest.mark.parametrize("name", ["old.csv", "new.csv", "new.jsonl"])
def test_data_iris_on_a_full_disk(full: Path, name: str) -> None:
    before = _entries(full)
    r = subprocess.run(
        [MLPROD, "data", "iris", "--output", str(full / name)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2, r.stderr
    _one_line(r.stderr, name)
    assert _entries(full) == before  # the earlier output intact, nothing new, no temporary
    assert sorted(p.name for p in full.iterdir()) == ["filler", "old.csv"]
    figures.hostile("hangs", f"a full disk: data iris to {name}")


@figures.passed_only
def test_evaluate_on_a_full_disk(full: Path, iris: Path) -> None:
    preds = iris.parent / "preds.csv"
    preds.write_text("flower_id,prediction\n" + "".join(f"{i},setosa\n" for i in range(1, 151)))
    before = _entries(full)
    args = ["evaluate", "--predictions", str(preds), "--truth", str(iris), "--task", "classification"]
    args += ["--id-col", "flower_id", "--target-col", "species", "--output", str(full / "metrics.json")]
    r = subprocess.run([MLPROD, *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    _one_line(r.stderr, "metrics.json")
    assert _entries(full) == before
    assert sorted(p.name for p in full.iterdir()) == ["filler", "old.csv"]
    figures.hostile("hangs", "a full disk: evaluate's metrics")


@figures.passed_only
def test_an_injected_enospc_is_one_output_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    "Any OS, any file system: the writer's ENOSPC becomes an OutputError from the function, one line from the command."
    out = tmp_path / "iris.csv"
    out.write_bytes(OLD)

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(mlprod.tables.TableWriter, "write", refuse)
    with pytest.raises(OutputError) as e:
        write_iris(out)
    assert str(out) in str(e.value) and "\n" not in str(e.value)
    r = CliRunner().invoke(app, ["data", "iris", "--output", str(out)])
    assert r.exit_code == 2, r.output
    _one_line(r.stderr, "iris.csv")
    assert "Traceback" not in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iris.csv"] and out.read_bytes() == OLD
    figures.hostile("hangs", "an injected ENOSPC: data iris", runs=2)


@figures.passed_only
def test_an_os_error_no_guard_named_is_still_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    "The command's last net: an OSError that no writer turned into an MlprodError is one line, exit 2."

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN), "somewhere")

    monkeypatch.setattr("mlprod.data.write_iris", broken)
    r = CliRunner().invoke(app, ["data", "iris", "--output", str(tmp_path / "iris.csv")])
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().splitlines() == [
        f"mlprod: system error: [Errno {errno.ENOTCONN}] {os.strerror(errno.ENOTCONN)}: 'somewhere'"
    ]
    assert "Traceback" not in r.output
    figures.hostile("tracebacks", "an OSError no guard named")
