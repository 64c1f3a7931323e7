"""Hostile inputs at the table readers and the output paths: deep JSON nesting (a native reader that recursed and
crashed the process), FIFOs and devices (blocked forever, or read without end), a huge single line or field (memory
without bound), symbolic link loops and names or paths too long. Each must be one line on stderr and exit 2, with
nothing written. Every run that could crash runs in a child process: a segmentation fault fails the test, it does
not kill pytest.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from bad_inputs import figures

from mlprod.commit import temp_sibling
from mlprod.io import MAX_JSON_DEPTH, MAX_LINE_BYTES
from mlprod.lineage import sweep_temporaries

from conftest import CHURN_CONFIG, FIXTURES, run_cli

BINARY = FIXTURES / "binary.csv"


# ---------------------------------------------------------------- helpers


def _visible(folder: Path) -> set[str]:
    "Every visible name under `folder` (relative)."
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.name.startswith(".")}


def _one_line_exit_2(r: subprocess.CompletedProcess[str], *fragments: str) -> None:
    "The command refused: exit 2 (not a signal: a crash is a negative code), one line on stderr naming `fragments`."
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0][:500])


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    "A workspace with a trained churn model (models/churn) and its predictions of the fixture (pred.jsonl)."
    d = tmp_path_factory.mktemp("hostile_ws")
    (d / "churn.yaml").write_text(yaml.safe_dump(CHURN_CONFIG), encoding="utf-8")
    r = run_cli(
        "train", "--config", "churn.yaml", "--train-data", str(BINARY), "--out-dir", "models/churn", cwd=d
    )
    assert r.returncode == 0, r.stderr
    r = run_cli(
        "predict",
        "--model-dir",
        "models/churn",
        "--input",
        str(BINARY),
        "--output",
        "pred.jsonl",
        "--quiet",
        cwd=d,
    )
    assert r.returncode == 0, r.stderr
    return d


def _commands(input_name: str) -> dict[str, list[str]]:
    "Each command that reads `input_name` (a table in the workspace) as its input, writing into out/."
    return {
        "train": ["train", "--config", "churn.yaml", "--train-data", input_name, "--out-dir", "out/model"],
        "predict1": ["predict", "--model-dir", "models/churn", "--input", input_name, "--output", "out/p.jsonl",
                     "--workers", "1", "--quiet"],
        "predict2": ["predict", "--model-dir", "models/churn", "--input", input_name, "--output", "out/p.jsonl",
                     "--workers", "2", "--quiet"],
        "evaluate": ["evaluate", "--predictions", "pred.jsonl", "--truth", input_name, "--model-dir", "models/churn",
                     "--output", "out/m.json"],
        "evaluate_sql": ["evaluate", "--predictions", "pred.jsonl", "--truth", input_name, "--model-dir",
                         "models/churn", "--output", "out/m.json", "--engine", "sql"],
        "split": ["data", "split", input_name, "--train-out", "out/a.csv", "--test-out", "out/b.csv"],
        "report": ["report", "evaluate", "--model-dir", "models/churn", "--data", input_name, "--out-dir", "out/r"],
    }  # fmt: skip


# ---------------------------------------------------------------- deep nesting


def _deep_rows(depth: int, column: str) -> bytes:
    "The fixture's first rows as JSON Lines; on the second row `column` (a feature, or an extra one) nests `depth` lists."
    import pandas as pd

    df = pd.read_csv(BINARY).head(3)
    lines = []
    for i, row in enumerate(df.to_dict("records")):
        text = json.dumps(row)
        if i == 1:
            deep = "[" * depth + "]" * depth
            row.pop(column, None)
            text = json.dumps(row)[:-1] + f', "{column}": {deep}}}'
        lines.append(text)
    return ("\n".join(lines) + "\n").encode()


def _deep_file(folder: Path, depth: int, column: str, gz: bool) -> Path:
    path = folder / f"deep_{depth}_{column}.jsonl{'.gz' if gz else ''}"
    data = _deep_rows(depth, column)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


_CHILD_READ = textwrap.dedent(
    """
    import sys
    from mlprod.errors import MlprodError
    from mlprod.tables import iter_chunks, parse_chunk, read_table
    try:
        if sys.argv[2] == "read_table":
            read_table(sys.argv[1])
        else:
            for chunk in iter_chunks(sys.argv[1], 2):
                parse_chunk(chunk)
    except MlprodError as e:
        print(e)
        sys.exit(2)
    """
)


@figures.passed_only
@pytest.mark.parametrize("depth", [5_000, 100_000])
@pytest.mark.parametrize("column", ["extra", "age"])
@pytest.mark.parametrize("gz", [False, True])
def test_deep_nesting_is_refused_by_the_readers(tmp_path: Path, depth: int, column: str, gz: bool) -> None:
    path = _deep_file(tmp_path, depth, column, gz)
    runs = 0
    for how in ("read_table", "iter_chunks"):
        r = subprocess.run(
            [sys.executable, "-c", _CHILD_READ, str(path), how], capture_output=True, text=True, timeout=120
        )
        runs += 1
        assert r.returncode == 2, (how, r.returncode, r.stderr[-1000:])  # -11: the reader crashed the process
        out = r.stdout.strip()
        assert f"{path}:2:" in out and f"at most {MAX_JSON_DEPTH}" in out, out[:500]
    figures.hostile("crash", f"deep-json-{depth}-{column}{'-gz' if gz else ''}-readers", runs=runs)


def test_nesting_within_the_limit_still_reads(tmp_path: Path) -> None:
    from mlprod.tables import read_table

    path = _deep_file(tmp_path, MAX_JSON_DEPTH - 1, "extra", False)  # the row's own object is one more level
    df = read_table(path)  # (3, n_columns + 1)
    assert len(df) == 3 and "extra" in df.columns


def test_brackets_inside_strings_are_no_nesting(tmp_path: Path) -> None:
    from mlprod.tables import read_table

    path = tmp_path / "strings.jsonl"
    rows = [{"id": i, "text": "[" * 10_000 + '"{' * 500, "tags": ["a]", "[b"]} for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    df = read_table(path)
    assert df["text"].tolist() == [r["text"] for r in rows]


@figures.passed_only
@pytest.mark.parametrize(
    "depth,column,gz",
    [
        pytest.param(100_000, "extra", True, id="100k-extra-gz", marks=pytest.mark.slow),  # make test-slow
        pytest.param(5_000, "age", False, id="5k-feature"),
    ],
)
def test_deep_nesting_is_refused_by_every_command(
    ws: Path, tmp_path: Path, depth: int, column: str, gz: bool
) -> None:
    path = _deep_file(ws, depth, column, gz)
    runs = 0
    for name, args in _commands(path.name).items():
        out = ws / "out"
        out.mkdir(exist_ok=True)
        r = run_cli(*args, cwd=ws)
        runs += 1
        _one_line_exit_2(r, path.name, f"{path.name}:2:", f"at most {MAX_JSON_DEPTH}")
        assert not _visible(out), (name, _visible(out))
        assert not any(out.rglob(".*")), (name, list(out.rglob(".*")))
    figures.hostile("crash", f"deep-json-{depth}-{column}{'-gz' if gz else ''}-commands", runs=runs)


def test_a_deep_lineage_record_is_a_data_error(tmp_path: Path) -> None:
    from mlprod.errors import DataError
    from mlprod.lineage import lineage_file, read_lineage

    table = tmp_path / "t.csv"
    table.write_text("a\n1\n")
    lineage_file(table).write_text('{"inputs": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(DataError, match="lineage record"):
        read_lineage(table)


# ---------------------------------------------------------------- FIFOs, devices, sockets, folders


@pytest.fixture
def special_inputs(ws: Path) -> Iterator[dict[str, str]]:
    "Inputs that are no regular file, each named like a table: name -> what the error must call it."
    made = {}
    fifo = ws / "fifo.csv"
    os.mkfifo(fifo)
    made["fifo.csv"] = "named pipe"
    (ws / "zero.csv").symlink_to("/dev/zero")
    made["zero.csv"] = "character device"
    (ws / "folder.jsonl").mkdir()
    made["folder.jsonl"] = "folder"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(ws / "sock.csv"))
    made["sock.csv"] = "socket"
    try:
        yield made
    finally:
        sock.close()
        for name in made:
            p = ws / name
            p.rmdir() if p.is_dir() and not p.is_symlink() else p.unlink()


@pytest.mark.slow  # 28 runs of the installed command (make test-slow); 01_io's notebook tests the readers in make test
@figures.passed_only
def test_special_files_as_input_are_refused_at_once(ws: Path, special_inputs: dict[str, str]) -> None:
    runs = 0
    for name, kind in special_inputs.items():
        for command, args in _commands(name).items():
            out = ws / "out"
            out.mkdir(exist_ok=True)
            try:
                r = run_cli(*args, cwd=ws, timeout=60)  # a blocked reader: TimeoutExpired fails the test
            except subprocess.TimeoutExpired:
                pytest.fail(f"{command} with {name} as input blocked for a minute")
            runs += 1
            _one_line_exit_2(r, name, kind)
            assert not _visible(out), (command, name, _visible(out))
    figures.hostile("hangs", "special-file-inputs", runs=runs)


# ---------------------------------------------------------------- huge lines and fields, in little gzip


def _gzip_stream(path: Path, head: bytes, filler: bytes, size: int, tail: bytes) -> None:
    "Write head + filler repeated to `size` bytes + tail, gzip'd, a MiB at a time (the file stays small)."
    block = filler * ((1 << 20) // len(filler))
    z = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip container
    with open(path, "wb") as f:
        f.write(z.compress(head))
        for _ in range(size // len(block)):
            f.write(z.compress(block))
        f.write(z.compress(tail))
        f.write(z.flush())


_CHILD_PEAK = textwrap.dedent(
    """
    import resource, sys
    from mlprod.errors import MlprodError
    from mlprod.tables import read_table
    try:
        read_table(sys.argv[1])
        print("read")
    except MlprodError as e:
        print(e)
    try:  # this process's own peak (VmHWM: its memory since exec); ru_maxrss would keep the forking parent's
        hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
        print(int(hwm.split()[1]) // 1024)  # peak MiB
    except (OSError, StopIteration):
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    """
)
PEAK_BOUND_MIB = 512  # the child's peak resident memory while it refuses a 1 GiB line


@figures.passed_only
@pytest.mark.parametrize(
    "name,head,filler,tail",
    [
        ("line.jsonl.gz", b'{"a": 1}\n{"a": "', b"x", b'"}\n'),  # a huge JSON line (one string value)
        ("field.csv.gz", b'a,b\n1,2\n3,"', b"y", b'"\n'),  # a huge quoted CSV field
        ("header.csv.gz", b"", b"h,", b"h\n1\n"),  # a huge CSV header
        ("row.csv.gz", b"a\n1\n", b"1", b"\n2\n"),  # a huge CSV row without quotes
    ],
    ids=["jsonl-line", "csv-field", "csv-header", "csv-row"],
)
def test_a_huge_line_is_refused_in_bounded_memory(tmp_path: Path, name: str, head: bytes, filler: bytes,
                                                   tail: bytes) -> None:  # fmt: skip
    path = tmp_path / name
    _gzip_stream(path, head, filler, 1 << 30, tail)  # 1 GiB uncompressed in a file of about 1 MiB
    assert path.stat().st_size < 8 << 20
    r = subprocess.run(
        [sys.executable, "-c", _CHILD_PEAK, str(path)], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-2000:]
    message, peak = r.stdout.strip().splitlines()
    assert str(path) in message and f"{MAX_LINE_BYTES >> 20} MiB" in message, message[:500]
    line = {"line": 2, "field": 3, "header": 1, "row": 3}[name.split(".")[0]]
    assert f"{path}:{line}:" in message, message[:500]
    assert int(peak) < PEAK_BOUND_MIB, f"peak {peak} MiB"
    figures.hostile("memory", f"huge-line-{name}", runs=1)


# ---------------------------------------------------------------- symbolic link loops, long names and paths


def _loop(folder: Path, name: str) -> str:
    "Two links in `folder` that point at each other; returns the first one's name (a fresh one each call)."
    name = f"{len(list(folder.glob('*')))}-{name}"
    a, b = folder / name, folder / f"other-{name}"
    a.symlink_to(b.name)
    b.symlink_to(a.name)
    return name


LONG_NAME = "n" * 300  # over NAME_MAX (255 bytes)
LONG_PATH = "/".join(["d" * 200] * 22)  # over PATH_MAX (4096 bytes)


@figures.passed_only
@pytest.mark.parametrize("kind", ["loop", "long-name", "long-path"])
def test_bad_paths_as_input_or_output_are_one_line(ws: Path, tmp_path: Path, kind: str) -> None:
    out = ws / "out"
    out.mkdir(exist_ok=True)

    def bad(suffix: str) -> str:
        if kind == "loop":
            return "out/" + _loop(out, f"loop{suffix}")
        if kind == "long-name":
            return f"out/{LONG_NAME}{suffix}"
        return f"out/{LONG_PATH}/x{suffix}"

    runs_list = [
        ["predict", "--model-dir", "models/churn", "--input", str(BINARY), "--output", bad(".jsonl"), "--quiet"],
        ["predict", "--model-dir", "models/churn", "--input", bad(".csv"), "--output", "out/p.jsonl", "--quiet"],
        ["evaluate", "--predictions", "pred.jsonl", "--truth", str(BINARY), "--model-dir", "models/churn",
         "--output", bad(".json")],
        ["evaluate", "--predictions", "pred.jsonl", "--truth", bad(".csv"), "--model-dir", "models/churn",
         "--output", "out/m.json"],
        ["data", "split", str(BINARY), "--train-out", bad(".csv"), "--test-out", "out/b.csv"],
        ["data", "split", bad(".csv"), "--train-out", "out/a.csv", "--test-out", "out/b.csv"],
        ["train", "--config", "churn.yaml", "--train-data", str(BINARY), "--out-dir", bad("")],
        ["train", "--config", "churn.yaml", "--train-data", bad(".csv"), "--out-dir", "out/model"],
        ["report", "evaluate", "--model-dir", "models/churn", "--data", str(BINARY), "--out-dir", bad("")],
    ]  # fmt: skip
    before = _visible(out)  # the links made above included
    for args in runs_list:
        r = run_cli(*args, cwd=ws)
        _one_line_exit_2(r)
        assert _visible(out) == before, (args, _visible(out) - before)
        assert not [p for p in out.rglob(".*") if p.is_file() or p.is_dir()], args
        if kind == "long-name":
            assert "too long" in r.stderr
        elif kind == "long-path":
            assert "too long" in r.stderr
        else:
            assert "symbolic link" in r.stderr
    figures.hostile("tracebacks", f"path-{kind}", runs=len(runs_list))


@figures.passed_only
def test_a_long_output_name_within_name_max_is_written(ws: Path, tmp_path: Path) -> None:
    "A name of 240 bytes fits (its temporary's hidden name is shortened); the output and its record are written."
    name = "p" * (240 - len(".jsonl")) + ".jsonl"
    out = tmp_path / name
    r = run_cli("predict", "--model-dir", "models/churn", "--input", str(BINARY), "--output", str(out), "--quiet",
                cwd=ws)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert out.is_file() and (tmp_path / (name + ".lineage.json")).is_file()
    assert not list(tmp_path.glob(".*"))
    name = "p" * (250 - len(".jsonl")) + ".jsonl"  # fits, but its record's name (+ .lineage.json) would not
    r = run_cli("predict", "--model-dir", "models/churn", "--input", str(BINARY), "--output", str(tmp_path / name),
                "--quiet", cwd=ws)  # fmt: skip
    _one_line_exit_2(r, "too long for its lineage record")
    assert not (tmp_path / name).exists() and not list(tmp_path.glob(".*"))
    figures.hostile("tracebacks", "output-name-240-250", runs=2)


def test_a_shortened_temporary_name_is_swept_once_its_process_is_gone(tmp_path: Path) -> None:
    out = tmp_path / ("q" * 250 + ".csv")
    tmp = temp_sibling(out)
    assert len(os.fsencode(tmp.name)) <= 255
    child = subprocess.Popen(["true"])
    child.wait()  # its PID now names no process
    dead = tmp.with_name(tmp.name.replace(f".{os.getpid()}-", f".{child.pid}-"))
    dead.mkdir()
    mine = temp_sibling(out)
    mine.write_text("")  # this process's: left alone
    assert sweep_temporaries(out) == [dead]
    assert mine.exists() and not dead.exists()
