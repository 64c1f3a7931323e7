"""The baseline of bench/batch_predict.py: the plain chunked pandas script a data scientist would write.

    python bench/plain_predict.py MODEL.joblib INPUT OUTPUT.jsonl [--reader csv|jsonl|parquet] [--chunk-rows N]

One process: `joblib.load` the fitted scikit-learn pipeline, read the input 100,000 rows at a time
(`pd.read_csv(chunksize=...)`, `pd.read_json(lines=True, chunksize=...)`, or pyarrow's `iter_batches` for
Parquet), `pipeline.predict` each chunk, and append `id, prediction` as JSON Lines with
`to_json(orient="records", lines=True)`. No validation, no atomic write, no parallelism: the plain answer.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import joblib
import pandas as pd


def chunks(path: str, reader: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    if reader == "csv":
        with pd.read_csv(path, chunksize=chunk_rows) as r:
            yield from r
    elif reader == "jsonl":
        with pd.read_json(path, lines=True, chunksize=chunk_rows) as r:
            yield from r
    else:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--reader", choices=["csv", "jsonl", "parquet"], default="csv")
    ap.add_argument("--id-col", default="id")
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    args = ap.parse_args()
    pipe = joblib.load(args.model)
    with open(args.output, "w", encoding="utf-8") as out:
        for chunk in chunks(args.input, args.reader, args.chunk_rows):
            pred = pd.DataFrame({args.id_col: chunk[args.id_col], "prediction": pipe.predict(chunk)})
            out.write(pred.to_json(orient="records", lines=True))


if __name__ == "__main__":
    main()
