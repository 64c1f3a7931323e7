"""The format registry (mlprod.formats): each suffix maps to its class, an unknown suffix is refused as before, and
a format registered in a test is read, chunked, written and registered with DuckDB without touching any other
module."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mlprod.formats as formats
from mlprod.chunks import GZIP, PLAIN, RawChunk
from mlprod.errors import DataError
from mlprod.formats import Csv, FormatWriter, JsonLines, Parquet, TableFormat, table_format, table_stem
from mlprod.query import run_query
from mlprod.tables import iter_chunks, iter_table, parse_chunk, read_table, write_table

SUPPORTED = "a .csv, .jsonl (or .json / .ndjson, JSON Lines) or .parquet file; .csv and .jsonl may end in .gz"


@pytest.mark.parametrize(
    ("name", "cls", "codec"),
    [
        ("a.csv", Csv, PLAIN),
        ("A.CSV", Csv, PLAIN),
        ("a.csv.gz", Csv, GZIP),
        ("a.jsonl", JsonLines, PLAIN),
        ("a.json", JsonLines, PLAIN),
        ("a.ndjson", JsonLines, PLAIN),
        ("b.JSONL.GZ", JsonLines, GZIP),
        ("a.json.gz", JsonLines, GZIP),
        ("a.parquet", Parquet, PLAIN),
        ("a.pq", Parquet, PLAIN),
    ],
)
def test_each_suffix_maps_to_its_class(name: str, cls: type, codec: Any) -> None:
    fmt = table_format(Path("dir") / name)
    assert type(fmt) is cls
    assert fmt.codec is codec


@pytest.mark.parametrize("name", ["x.xlsx", "x.parquet.gz", "x.pq.gz", "x.gz", "x", "x.csv.bz2"])
def test_an_unknown_suffix_is_refused_with_todays_message(name: str) -> None:
    with pytest.raises(DataError) as e:
        table_format(name)
    assert str(e.value) == f"{name}: unknown table format (expected {SUPPORTED})"


def test_stems_and_the_written_suffix() -> None:
    "What the CLI names a default output after, and the format of a folder of partitions: asked of the registry."
    assert [table_stem(n) for n in ("test.csv.gz", "t.jsonl", "p.pq", "notes.txt", ".csv")] == [
        "test",
        "t",
        "p",
        "notes.txt",
        ".csv",
    ]
    assert formats.written_format("out.csv") is formats.CSV
    assert formats.written_format("out.parquet") is formats.PARQUET
    assert formats.written_format("out.json") is None and formats.written_format("out") is None


# --- a toy format, registered in a test: no other module changes ---------------------------------------------


class _ToyWriter(FormatWriter):
    "Collects the frames; the whole document is written when the writer closes."

    frames: list[pd.DataFrame] | None = None

    @property
    def started(self) -> bool:
        return self.frames is not None

    def write_encoded(self, payload: Any, head: Any = None) -> None:
        self.frames = (self.frames or []) + [payload]

    def close(self) -> None:
        if self.frames is not None:
            df = pd.concat(self.frames, ignore_index=True)  # (n_rows, n_columns)
            doc = {"columns": list(df.columns), "rows": df.astype(object).values.tolist()}
            self.tmp.write_text(json.dumps(doc))


class Toy(TableFormat):
    "One JSON document: {'columns': [...], 'rows': [[...], ...]}."

    name, suffixes, described = "toy", (".toy",), ".toy"

    def chunks(
        self, path: Path, chunk_rows: int, digest: dict[str, str] | None, taper: bool, ids: tuple[str, ...]
    ) -> Iterator[RawChunk]:
        doc = json.loads(path.read_text())
        rows = doc["rows"]
        for index, start in enumerate(range(0, max(len(rows), 1), chunk_rows)):
            part = rows[start : start + chunk_rows]
            yield RawChunk(path, self, index, rows=len(part), table=(doc["columns"], part))

    def parse(self, chunk: RawChunk) -> pd.DataFrame | None:
        columns, rows = chunk.table
        return pd.DataFrame(rows, columns=columns)

    def writer(self, tmp: Path, path: Path) -> FormatWriter:
        return _ToyWriter(self, tmp, path)

    def encode(self, df: pd.DataFrame, header: bool) -> Any:
        return df

    def relation(self, con: Any, path: Path, ids: Sequence[str]) -> Any:
        df = self.read(path, allow_empty=True)  # (n_rows, n_columns)
        con.register(f"_toy_{path.stem}", df)
        return con.table(f"_toy_{path.stem}")


@pytest.fixture
def toy() -> Iterator[Toy]:
    fmt = formats.register(Toy())
    try:
        yield fmt
    finally:
        formats.unregister(fmt)
    with pytest.raises(DataError, match="unknown table format"):
        table_format("x.toy")


def test_a_registered_format_is_read_chunked_written_and_queried(toy: Toy, tmp_path: Path) -> None:
    df = pd.DataFrame({"id": [1, 2, 3, 4, 5], "x": [0.5, 1.5, 2.5, 3.5, 4.5]})  # (5, 2)
    path = write_table(df, tmp_path / "t.toy")  # the format's writer, committed atomically
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.toy"]  # no temporary left
    assert json.loads(path.read_text())["rows"][0] == [1, 0.5]
    pd.testing.assert_frame_equal(read_table(path), df)
    chunks = list(iter_chunks(path, chunk_rows=2))
    assert [c.rows for c in chunks] == [2, 2, 1] and all(c.format is toy for c in chunks)
    assert [len(parse_chunk(c)) for c in chunks] == [2, 2, 1]
    assert [len(f) for f in iter_table(path, chunk_rows=2)] == [2, 2, 1]
    # the messages list it too
    with pytest.raises(DataError) as e:
        table_format("x.xlsx")
    assert "or .toy file" in str(e.value)
    # and DuckDB reads it, through the format, as a table of a query
    sql = tmp_path / "q.sql"
    sql.write_text("SELECT sum(x) AS s, count(*) AS n FROM t WHERE id > 1\n")
    with run_query(sql, {"t": path}) as rel:
        assert rel.fetchall() == [(12.0, 4)]
    # the usual checks come with it: an empty file is refused before the format parses anything
    (tmp_path / "empty.toy").write_bytes(b"")
    with pytest.raises(DataError, match="empty.toy: empty file"):
        read_table(tmp_path / "empty.toy")


def test_a_format_registered_again_replaces_the_first(toy: Toy) -> None:
    again = formats.register(Toy())
    try:
        assert table_format("a.toy") is again
        assert formats.format_named("toy") is again
    finally:
        formats.unregister(again)


def test_partition_output_names_the_folder_and_the_format() -> None:
    "The Dask engine's `--output`: out.csv is the folder `out` of CSV partitions; a bare name, Parquet ones."
    from mlprod.formats import CSV, JSON_LINES, PARQUET, partition_output

    assert partition_output("p/out.csv") == (Path("p/out"), CSV)
    assert partition_output("p/out.JSONL") == (Path("p/out"), JSON_LINES)
    assert partition_output("p/out.parquet") == (Path("p/out"), PARQUET)
    assert partition_output("p/out") == (Path("p/out"), PARQUET)
