"""io: every format round-trips; every bad input is a DataError naming the file (and the line)."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlprod.errors import DataError, MlprodError
from mlprod.io import sha256_file, write_json
from mlprod.tables import TableWriter, encode_rows, iter_table, read_table, write_table

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
    with pytest.raises(DataError, match="column 'nan': nan cannot be written"):
        write_json(p, {"nan": float("nan")})  # NaN is not JSON: refused, and the old file stays
    assert p.read_text().startswith('{\n  "a"')


_ENCODE_COLUMNS = {  # every kind of column a prediction frame holds, and the texts JSON escapes
    "int": np.array([3, -1, 0, 2**62]),
    "uint8": np.array([0, 1, 2, 255], dtype=np.uint8),
    "bool": np.array([True, False, True, True]),
    "str": pd.array(["yes", "no", "é ü 😀", ""], dtype="str"),
    "str_in_chunks": pd.concat(  # an arrow-backed text column in two pieces, as a concat or a join leaves it
        [pd.Series(["p", "q"], dtype="str"), pd.Series(["r", "s"], dtype="str")], ignore_index=True
    ).array,
    "object_str": np.array(["a", "b\x7f", "\u2028", "x y"], dtype=object),
    "slash": np.array(["a/b", "c", "d", "e"], dtype=object),
    "quote_backslash": pd.array(['say "hi"', "back\\slash", "tab\t", "nul\x00"], dtype="str"),
    "missing_str": np.array(["a", None, "c", "d"], dtype=object),
    "float": np.array([0.1, 1 / 3, 1e-7, 12345.678901234]),
    "nullable_int": pd.array([1, None, 3, 4], dtype="Int64"),
    "mixed_object": np.array([1, "a", 2.5, True], dtype=object),
    "category": pd.Categorical(["x", "y", "x", "y"]),
    "date": pd.date_range("2024-01-01", periods=4),
}


@pytest.mark.parametrize("second", [None, *_ENCODE_COLUMNS])
@pytest.mark.parametrize("first", list(_ENCODE_COLUMNS))
def test_json_lines_encoding_is_pandas_text_whatever_the_columns(first: str, second: str | None) -> None:
    "encode_rows writes every column a column at a time: the same bytes as pandas' to_json, but a float exactly."
    names = [first] if second is None or second == first else [first, second]
    df = pd.DataFrame({n if n != "slash" else "a/b key": _ENCODE_COLUMNS[n] for n in names})  # (4, 1 or 2)
    want = df.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
    want = want if want.endswith("\n") else want + "\n"
    got = encode_rows(df, "jsonl", header=False)
    floats = [c for c in df.columns if df[c].dtype.kind == "f"]
    if not floats:
        assert got == want
    else:  # pandas writes ten digits after the point: floats exactly, every other column as pandas writes it
        rows = [json.loads(line) for line in got.split("\n")[:-1]]
        assert [list(r) for r in rows] == [[str(c) for c in df.columns]] * len(df)
        for c in floats:
            assert [r[c] for r in rows] == df[c].tolist()  # the very floats (== on these: the same bits)
        others = df.drop(columns=floats)
        if len(others.columns):
            text = others.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
            assert encode_rows(others, "jsonl", header=False) == (
                text if text.endswith("\n") else text + "\n"
            )
    lines = got.split("\n")  # not splitlines: a text may hold U+2028, a line separator to Python
    assert encode_rows(df.iloc[1:3], "jsonl", header=False) == "".join(f"{line}\n" for line in lines[1:3])


def test_json_lines_encoding_of_a_large_chunk_matches_pandas() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"id": np.arange(200_000) * 7 - 5, "prediction": rng.integers(0, 2, 200_000), "label": "churn"}
    )  # (200000, 3)
    assert encode_rows(df, "jsonl", header=False) == df.to_json(
        orient="records", lines=True, force_ascii=False
    )


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
    ("short.csv", b"a,b,c\n1,2,3\n4,5\n6,7,8\n", "ragged row with 2 fields (expected 3 fields", 3),
    ("short_last.csv", b"a,b,c\n1,2,3\n4,5,6\n7,8", "ragged row with 2 fields (expected 3 fields", 4),
    ("short_last.csv.gz", b"a,b,c\n1,2,3\n4,5,6\n7,", "ragged row with 2 fields (expected 3 fields", 4),
    ("short_quoted.csv", b'a,b,c\n1,"x,y",3\n"4,5,6",7\n', "ragged row with 2 fields (expected 3 fields", 3),
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


# --- a row with fewer fields than the header (issue 9): pandas would pad it with missing values ---------------


def _short_row_file(path: Path, rows: int, short_at: int, last_newline: bool = True) -> bytes:
    "A CSV of `rows` rows (quoted fields with commas in every third), the row on line `short_at` one field short."
    lines = [b"id,name,x"]
    for i in range(rows):
        name = b'"Doe, J."' if i % 3 == 0 else b"ann"
        lines.append(b"%d,%s,%d.5" % (i, name, i) if len(lines) + 1 != short_at else b"%d,%s" % (i, name))
    data = b"\n".join(lines) + (b"\n" if last_newline else b"")
    _write(path, data)
    return data


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz"])
@pytest.mark.parametrize(
    "short_at", [2, 6, 7, 11, 25, 31]
)  # the first row, mid-chunk, a chunk's first / last
@pytest.mark.parametrize("chunk_rows", [1, 5, 1_000])
def test_short_row_is_refused_in_every_chunk(
    tmp_path: Path, name: str, short_at: int, chunk_rows: int
) -> None:
    path = tmp_path / name
    _short_row_file(path, 30, short_at)
    with pytest.raises(DataError) as info:
        list(iter_table(path, chunk_rows=chunk_rows))
    msg = str(info.value)
    assert msg.endswith(
        f"{path}:{short_at}: ragged row with 2 fields (expected 3 fields, as in the header)"
    ), msg


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz"])
@pytest.mark.parametrize("chunk_rows", [1, 4, 1_000])
def test_file_cut_off_in_its_last_line_is_refused(tmp_path: Path, name: str, chunk_rows: int) -> None:
    path = tmp_path / name
    _short_row_file(path, 12, 13, last_newline=False)  # a writer killed halfway through its last line
    with pytest.raises(
        DataError, match=r":13: ragged row with 2 fields \(expected 3 fields, as in the header\)"
    ):
        list(iter_table(path, chunk_rows=chunk_rows))
    with pytest.raises(DataError, match=r":13: ragged row with 2 fields"):
        read_table(path)


def test_commas_inside_quotes_do_not_count_as_fields(tmp_path: Path) -> None:
    path = _write(tmp_path / "q.csv", b'a,b,c\n1,"x,y",\n"2,3,4",,\n')  # 3 fields each, the last one empty
    assert read_table(path)["a"].astype(str).tolist() == ["1", "2,3,4"]
    short = _write(tmp_path / "short.csv", b'a,b,c\n1,"x,y",\n"2,3,4,"\n')  # 1 field: commas all quoted
    with pytest.raises(DataError, match=r"short\.csv:3: ragged row with 1 field \(expected 3 fields"):
        read_table(short)
    multi = _write(tmp_path / "multi.csv", b'a,b,c\n1,"x,\ny",3\n2,"u\nv,w"\n')  # a quoted newline
    with pytest.raises(DataError, match=r"ragged row with 2 fields \(expected 3 fields"):
        list(iter_table(multi, chunk_rows=1))


def test_rows_with_all_fields_still_read(tmp_path: Path) -> None:
    "Empty values, blank and whitespace lines (pandas skips them), CRLF, no last newline: no row is short."
    data = b'a,b,c\r\n1,,\r\n\r\n  \r\n,,\r\n"",x,"3,4"\r\n5,6,7'
    path = _write(tmp_path / "ok.csv", data)
    whole = read_table(path)
    assert len(whole) == 4 and whole["c"].isna().tolist() == [True, True, False, False]
    assert sum(len(c) for c in iter_table(path, chunk_rows=1)) == 4


def test_output_folder_that_is_a_file(tmp_path: Path, frame: pd.DataFrame) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match="output folder is a file"):
        write_table(frame, tmp_path / "f" / "out.csv")


def test_every_error_is_an_mlprod_error() -> None:
    assert issubclass(DataError, MlprodError)


@pytest.mark.parametrize("name", ["t.csv", "t.jsonl", "t.csv.gz"])
def test_tapered_chunks_end_ever_smaller_and_hold_every_row(tmp_path: Path, name: str) -> None:
    "taper=True (the batch engine): a plain file's last two chunks' worth of rows in ever smaller chunks; gzip: as is."
    from mlprod.tables import iter_chunks, parse_chunk

    df = pd.DataFrame({"id": range(1000), "x": [i / 7 for i in range(1000)]})  # (1000, 2)
    path = write_table(df, tmp_path / name)
    rows = [c.rows for c in iter_chunks(path, chunk_rows=100, taper=True)]
    assert sum(rows) == 1000 and max(rows) == 100
    if name.endswith(".gz"):
        assert rows == [100] * 10
    else:
        full = rows.count(100)  # then a quarter of the rows left each time, down to a sixteenth of a chunk
        tail = rows[full:]
        assert rows[:full] == [100] * full and 7 <= full <= 9, rows  # the tail starts by bytes left
        assert tail == sorted(tail, reverse=True) and tail[0] <= 50 and len(tail) >= 6, rows
        assert all(r >= 7 for r in tail[:-1]) and tail[-2] <= 10, rows  # the last ones: ~1/16 of a chunk
    got = pd.concat(
        [parse_chunk(c) for c in iter_chunks(path, chunk_rows=100, taper=True)], ignore_index=True
    )
    pd.testing.assert_frame_equal(got, read_table(path))


def test_json_lines_bytes_read_as_the_file_is(tmp_path: Path) -> None:
    "read_jsonl_bytes (a bundle's golden rows, from the bytes that were hashed) gives read_table's frame."
    from mlprod.tables import read_jsonl_bytes

    df = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, None, 2.0], "c": ["a", None, "b"]})  # (3, 3)
    path = write_table(df, tmp_path / "g.jsonl")
    pd.testing.assert_frame_equal(read_jsonl_bytes(path.read_bytes(), path), read_table(path))
    with pytest.raises(DataError, match=r"g\.jsonl: no rows"):
        read_jsonl_bytes(b"\n\n", path)
