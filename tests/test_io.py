"""io: every format round-trips; every bad input is a DataError naming the file (and the line)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pandas as pd
import pytest

from mlprod.errors import DataError, MlprodError
from mlprod.io import TableWriter, iter_table, read_table, sha256_file, write_json, write_table

FORMATS = ["t.csv", "t.csv.gz", "t.jsonl", "t.json", "t.jsonl.gz", "t.parquet"]


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"id": [1, 2, 3, 4, 5], "x": [0.5, None, 2.0, -1.25, 3.0], "c": ["a", "b", None, "é", "a"]}
    )  # (5, 3)


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip_whole_and_chunked(tmp_path: Path, frame: pd.DataFrame, name: str) -> None:
    path = write_table(frame, tmp_path / name)
    back = read_table(path)
    pd.testing.assert_frame_equal(back[["id", "x"]], frame[["id", "x"]])
    assert back["c"].tolist()[:2] == ["a", "b"] and pd.isna(back["c"][2]) and back["c"][3] == "é"
    chunks = list(iter_table(path, chunk_rows=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert pd.concat(chunks, ignore_index=True)["id"].tolist() == [1, 2, 3, 4, 5]
    assert os.listdir(tmp_path) == [name]  # no temporary file left behind


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.jsonl.gz", "t.parquet"])
def test_writes_are_deterministic(tmp_path: Path, frame: pd.DataFrame, name: str) -> None:
    a = write_table(frame, tmp_path / "a" / name)
    b = write_table(frame, tmp_path / "b" / name)
    assert sha256_file(a) == sha256_file(b)


def test_table_writer_streams_chunks(tmp_path: Path, frame: pd.DataFrame) -> None:
    out = tmp_path / "out.csv"
    with TableWriter(out) as w:
        w.write(frame.iloc[:2])
        assert not out.exists()  # nothing visible until the file is complete
        w.write(frame.iloc[2:])
    assert w.rows == 5 and read_table(out)["id"].tolist() == [1, 2, 3, 4, 5]


def test_failed_write_keeps_the_existing_file(tmp_path: Path, frame: pd.DataFrame) -> None:
    out = write_table(frame, tmp_path / "out.jsonl")
    before = out.read_bytes()
    with pytest.raises(RuntimeError), TableWriter(out) as w:
        w.write(frame.iloc[:1])
        raise RuntimeError("crash halfway")
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl"]


def test_write_json_is_atomic_and_stable(tmp_path: Path) -> None:
    p = write_json(tmp_path / "m.json", {"b": 1, "a": [1.5, "x"]})
    assert p.read_text() == '{\n  "a": [\n    1.5,\n    "x"\n  ],\n  "b": 1\n}\n'
    with pytest.raises(ValueError):
        write_json(p, {"nan": float("nan")})  # NaN is not JSON: refused, and the old file stays
    assert p.read_text().startswith('{\n  "a"')


# --- bad input: kind, file name, line ----------------------------------------------------------


def _write(path: Path, data: bytes) -> Path:
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


BAD = [
    # (file name, bytes, words the message must contain, line it must name or None)
    ("empty.csv", b"", "empty file", None),
    ("empty.jsonl", b"", "empty file", None),
    ("empty.parquet", b"", "empty file", None),
    ("empty.csv.gz", b"", "empty file", None),
    ("header_only.csv", b"a,b\n", "no rows", None),
    ("ragged.csv", b"a,b\n1,2\n3,4,5\n", "ragged row with 3 fields", 3),
    ("latin1.csv", b"a,b\n1,ok\n2,caf\xe9\n", "not valid UTF-8", 3),
    ("broken.jsonl", b'{"a": 1}\n{"a": 2}\n{"a": \n', "malformed JSON", 3),
    ("broken.jsonl.gz", b'{"a": 1}\n{"a" 2}\n', "malformed JSON", 2),
    ("array_line.jsonl", b'{"a": 1}\n[1, 2]\n', "is not a row", 2),
    ("number_line.json", b'{"a": 1}\n{"a": 2}\n7\n', "is not a row", 3),
    ("latin1.jsonl", b'{"a": "x"}\n{"a": "caf\xe9"}\n', "not valid UTF-8", 2),
    ("mixed_types.jsonl", b'{"a": 1}\n{"a": "x"}\n', "column 'a': a string where line 1 has a number", 2),
    ("not_parquet.parquet", b"this is not parquet", "not a readable Parquet file", None),
    ("not_gzip.csv.gz", None, "not a valid gzip file", None),
]


@pytest.mark.parametrize(("name", "data", "words", "line"), BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("reader", ["read_table", "iter_table"])
def test_bad_input_is_a_data_error_naming_file_and_line(
    tmp_path: Path, name: str, data: bytes | None, words: str, line: int | None, reader: str
) -> None:
    path = tmp_path / name
    if data is None:
        path.write_bytes(b"a,b\n1,2\n")  # plain text behind a .gz name
    else:
        _write(path, data)
    with pytest.raises(DataError) as info:
        if reader == "read_table":
            read_table(path)
        else:
            list(iter_table(path, chunk_rows=2))
    msg = str(info.value)
    assert str(path) in msg, msg
    assert words in msg, msg
    if line is not None:
        assert f"{path}:{line}:" in msg, msg
    assert "\n" not in msg


def test_missing_file_folder_and_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match=r"dir\.csv: is a folder"):
        read_table(tmp_path / "dir.csv")
    (tmp_path / "t.xlsx").write_bytes(b"x")
    with pytest.raises(DataError, match=r"t\.xlsx: unknown table format \(expected a \.csv"):
        read_table(tmp_path / "t.xlsx")


def test_jsonl_with_bom_and_blank_lines_reads(tmp_path: Path) -> None:
    p = _write(tmp_path / "bom.jsonl", b'\xef\xbb\xbf{"a": 1}\n\n{"a": 2}\n')
    assert read_table(p)["a"].tolist() == [1, 2]


def test_line_numbers_count_across_chunks(tmp_path: Path) -> None:
    lines = [b'{"a": %d}' % i for i in range(10)]
    lines[7] = b'{"a": oops}'
    p = _write(tmp_path / "late.jsonl", b"\n".join(lines) + b"\n")
    with pytest.raises(DataError, match=r"late\.jsonl:8: malformed JSON"):
        list(iter_table(p, chunk_rows=3))


def test_output_folder_that_is_a_file(tmp_path: Path, frame: pd.DataFrame) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match="output folder is a file"):
        write_table(frame, tmp_path / "f" / "out.csv")


def test_every_error_is_an_mlprod_error() -> None:
    assert issubclass(DataError, MlprodError)
