"""mlprod.commit, the one way an output is put in place: a file and a folder commit, a killed writer's temporary
swept only once its owner is dead, two racing commits leaving one whole result, a full disk leaving the old file."""

from __future__ import annotations

import errno
import hashlib
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bad_inputs import figures

from mlprod.commit import (
    AtomicFile,
    AtomicFolder,
    atomic_folder,
    atomic_path,
    owner_alive,
    run_name,
    staging,
    sweep,
    temp_sibling,
    write_text,
)
from mlprod.errors import DataError, OutputError

from conftest import fill_up, small_tmpfs


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- a file ---------------------------------------------------------------------------------------------------


def test_a_file_is_replaced_whole_and_an_error_leaves_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "out" / "a.txt"
    write_text(target, "first\n")
    write_text(target, "second\n")
    assert target.read_text() == "second\n"
    with pytest.raises(ZeroDivisionError), atomic_path(target) as tmp:
        tmp.write_text("half of a third")
        assert tmp.parent == target.parent and tmp.name.startswith(".a.txt.") and tmp.name.endswith(".tmp")
        1 / 0  # noqa: B018
    assert target.read_text() == "second\n"
    assert _names(target.parent) == ["a.txt"]  # no temporary left
    with pytest.raises(DataError, match="output is a folder"):
        AtomicFile(tmp_path / "out")


# --- a folder -------------------------------------------------------------------------------------------------


def test_a_folder_is_put_in_place_new_or_replacing_the_old_one_whole(tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    with atomic_folder(parts) as tmp:
        (tmp / "part-0.csv").write_text("a\n0\n")
    assert _names(parts) == ["part-0.csv"]
    with atomic_folder(parts) as tmp:
        (tmp / "part-1.csv").write_text("a\n1\n")
        assert _names(parts) == ["part-0.csv"]  # the old folder stays whole until the commit
    assert _names(parts) == ["part-1.csv"]
    with pytest.raises(KeyError), atomic_folder(parts) as tmp:
        (tmp / "part-2.csv").write_text("a\n2\n")
        raise KeyError("a failed run")
    assert _names(parts) == ["part-1.csv"] and _names(tmp_path) == ["parts"]
    version = AtomicFolder.inside(tmp_path)  # a model version: named only at the commit
    assert version.tmp.name.startswith(".tmp-") and len(version.tmp.name) == len(run_name())
    (version.tmp / "manifest.json").write_text("{}")
    with pytest.raises(FileExistsError):
        version.commit(to=parts, replace=False)  # a version is never overwritten
    assert version.commit(to=tmp_path / "v1", replace=False) == tmp_path / "v1"
    assert _names(tmp_path) == ["parts", "v1"]


# --- what killed writers leave --------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from mlprod.commit import AtomicFile, AtomicFolder
    kind, target = sys.argv[1], sys.argv[2]
    if kind == "file":
        f = AtomicFile(target)
        f.tmp.write_text("half")
    else:
        f = AtomicFolder(target)
        (f.tmp / "part-0.csv").write_text("half")
    print(f.tmp, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("kind", ["file", "folder"])
@figures.passed_only
def test_a_killed_writers_temporary_is_swept_only_once_its_owner_is_dead(kind: str, tmp_path: Path) -> None:
    target = tmp_path / ("p.csv" if kind == "file" else "parts")
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, kind, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        tmp = Path(child.stdout.readline().strip())
        assert tmp.exists() and f".{child.pid}-" in tmp.name
        assert owner_alive(child.pid, tmp)
        # another writer of the same target, while the first still runs: its temporary is left alone
        mine = AtomicFile(target) if kind == "file" else AtomicFolder(target)
        mine.discard()
        assert tmp.exists()
        child.send_signal(signal.SIGKILL)  # killed mid-write: its temporary stays, the target never appeared
    finally:
        child.kill()
        child.wait()
    assert tmp.exists() and not target.exists()
    assert not owner_alive(child.pid, tmp)
    with atomic_path(target) if kind == "file" else atomic_folder(target) as new:  # the next writer sweeps it
        (new if kind == "file" else new / "part-0.csv").write_text("whole")
    assert not tmp.exists()
    assert _names(tmp_path) == [target.name]
    figures.hostile("crash", f"a writer killed mid-write ({kind}), swept by the next", runs=2)


def test_a_zombie_writer_is_dead(tmp_path: Path) -> None:
    "A writer that ended but was not waited for yet (a zombie) writes nothing more: its temporary is swept."
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while not Path(f"/proc/{child.pid}").exists() or "Z" not in _state(child.pid):
        assert time.monotonic() < deadline, "the child did not end"
        time.sleep(0.01)
    try:
        tmp = tmp_path / f".p.csv.{child.pid}-0a1b2c3d.tmp"
        tmp.write_text("half")
        assert not owner_alive(child.pid, tmp)
        assert sweep(tmp_path, ["p.csv"]) == [tmp]
    finally:
        child.wait()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return ""


def test_sweep_takes_only_the_named_targets_and_never_this_process(tmp_path: Path) -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    dead = tmp_path / f".p.csv.{child.pid}-0a1b2c3d.tmp"
    other = tmp_path / f".q.csv.{child.pid}-0a1b2c3d.tmp"
    run = tmp_path / f".tmp-{child.pid}-0a1b2c3d"
    mine = temp_sibling(tmp_path / "p.csv")
    for p in (dead, other, mine):
        p.write_text("")
    run.mkdir()
    assert sweep(tmp_path, ["p.csv"]) == [dead]
    assert sweep(tmp_path, runs=True) == [run]
    assert _names(tmp_path) == sorted([other.name, mine.name])


# --- two runs at once -----------------------------------------------------------------------------------------

RACER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mlprod.commit import AtomicFolder, put_in_place, staging, write_text
    kind, target, me, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    for i in range(n):
        body = f"{me} {i}\\n" * (1000 + i)  # each version of its own length and content
        if kind == "file":
            write_text(target, body)
        elif kind == "pair":
            with staging(target, [target.name + ".note"]) as stage:
                (stage / target.name).write_text(body)
                (stage / (target.name + ".note")).write_text(f"{me} {i}\\n")
                put_in_place([(stage / target.name, target), (stage / (target.name + ".note"), target.with_name(target.name + ".note"))])
        else:
            f = AtomicFolder(target)
            for name in ("a.txt", "b.txt"):
                (f.tmp / name).write_text(body)
            f.commit()
    """
)


def _whole(text: str) -> str:
    "The writer and run a whole text came from; an AssertionError for a mix or a cut."
    lines = text.splitlines()
    assert lines and len(set(lines)) == 1, "a mix of two runs"
    me, i = lines[0].split()
    assert len(lines) == 1000 + int(i), "a cut file"
    return lines[0]


@pytest.mark.parametrize("kind", ["file", "pair", "folder"])
@figures.passed_only
def test_two_racing_commits_leave_one_whole_result(kind: str, tmp_path: Path) -> None:
    target = tmp_path / ("out.csv" if kind != "folder" else "parts")
    n = 40
    racers = [
        subprocess.Popen([sys.executable, "-c", RACER, kind, str(target), me, str(n)]) for me in ("A", "B")
    ]
    seen = 0
    while any(r.poll() is None for r in racers):  # a reader meanwhile: only whole results, once one is there
        try:
            if kind == "folder":
                texts = [(target / name).read_text() for name in ("a.txt", "b.txt")]
            else:
                texts = [target.read_text()]
        except FileNotFoundError:  # only before the first commit: a folder too is exchanged in one step
            assert seen == 0, "the target went missing after it was there"
            continue
        for t in texts:
            _whole(t)
        seen += 1
    assert [r.wait() for r in racers] == [0, 0]
    if kind == "folder":
        a, b = (_whole((target / name).read_text()) for name in ("a.txt", "b.txt"))
        assert a == b, "the folder holds files of two runs"
        assert _names(target) == ["a.txt", "b.txt"]
    else:
        last = _whole(target.read_text())
        if kind == "pair":
            assert target.with_name("out.csv.note").read_text() == last + "\n", "the note of another run"
    assert _names(tmp_path) == sorted([target.name] + (["out.csv.note"] if kind == "pair" else []))
    figures.hostile("crash", f"two runs committing one {kind} at once", runs=2)


# --- a full disk ----------------------------------------------------------------------------------------------


@pytest.fixture
def full(tmp_path: Path) -> Iterator[Path]:
    "A 64 KiB tmpfs holding an earlier output, filled up; skipped where this machine does not let us mount one."
    with small_tmpfs(tmp_path / "full", "64k") as mnt:
        (mnt / "old.txt").write_text("the earlier output\n")
        fill_up(mnt)
        yield mnt


@figures.passed_only
def test_a_full_disk_leaves_the_old_file_intact_and_no_temporary(full: Path) -> None:
    old = full / "old.txt"
    before = hashlib.sha256(old.read_bytes()).hexdigest()
    with pytest.raises(OSError) as e:
        write_text(old, "a new output, larger than the disk\n" * 10_000)
    assert e.value.errno == errno.ENOSPC
    assert hashlib.sha256(old.read_bytes()).hexdigest() == before
    assert _names(full) == ["filler", "old.txt"]
    with pytest.raises(
        OutputError, match="old.txt: cannot write: No space left on device; nothing was written"
    ):
        with staging(old) as stage:
            (stage / "old.txt").write_text("a new output, larger than the disk\n" * 10_000)
    assert hashlib.sha256(old.read_bytes()).hexdigest() == before
    assert _names(full) == ["filler", "old.txt"]
    with pytest.raises(OSError), atomic_folder(full / "parts") as tmp:
        (tmp / "part-0.csv").write_text("x" * 1_000_000)
    assert _names(full) == ["filler", "old.txt"]
    figures.hostile("hangs", "a full disk under mlprod.commit (file, staging, folder)", runs=3)
