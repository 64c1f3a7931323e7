"""Where the time of `mlprod predict` CSV -> JSON Lines goes, stage by stage (issue 21).

    .venv/bin/python bench/batch_stages.py [--rows 1000000] [--repeat 3] [--end-to-end]

bench/batch_predict.py's data and models (its `dataset()` and `models()`: 1M rows of an id, 20 numeric and 2
categorical columns; a logistic regression and a random forest saved as mlprod bundles). In this one process,
for each model, each stage of both sides is timed over the whole file, chunk by chunk (100,000 rows):

- mlprod (what one worker of `mlprod predict` does): read (locate the CSV's chunks and parse them:
  `iter_chunks` + `parse_chunk`), predict (`Predictor.predict`: the schema's checks and the pipeline), encode
  (`encode_rows` to JSON Lines, exact floats) and write (the text into a file);
- the plain script (bench/plain_predict.py): read (`pd.read_csv(chunksize=...)`), predict
  (`pipeline.predict`), encode (`to_json(orient="records", lines=True)`) and write;
- the encode stage alone on mlprod's prediction frames with probabilities (id, prediction, 2 probabilities):
  today's writer against the writer before its fast paths (tests/jsonl_reference.py, the bytes checked equal)
  and pandas' `to_json`.

Each figure is the smallest of `--repeat` passes (the machine is shared: the least disturbed pass). The sum of
the stages is one process's work; `mlprod predict` spreads it over the cores, so the end-to-end ratio is
smaller than the ratio of the sums. With `--end-to-end`, bench/batch_predict.py's CSV rows are run after the
table (fresh processes, interleaved), with the load average beside them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # the writer before its fast paths: the reference of the bytes

from batch_predict import dataset, load_average, models  # noqa: E402

CHUNK = 100_000


def _timed(stages: dict[str, float], name: str, f: Callable[[], Any]) -> Any:
    "Run `f`, add its seconds to `stages[name]`, return what it returned."
    t0 = time.perf_counter()
    out = f()
    stages[name] = stages.get(name, 0.0) + time.perf_counter() - t0
    return out


def _next(it: Iterator[Any]) -> Any:
    return next(it, None)


def mlprod_stages(version: Path, csv: Path, out: Path) -> tuple[dict[str, float], list[Any]]:
    "One pass of mlprod's stages over `csv`: seconds per stage, and the prediction frames (with probabilities)."
    from mlprod.batch import id_columns
    from mlprod.predict import Predictor
    from mlprod.tables import encode_rows, iter_chunks, parse_chunk

    predictor = Predictor.load(version)
    stages: dict[str, float] = {}
    frames: list[Any] = []
    chunks = iter_chunks(csv, CHUNK, ids=id_columns(predictor))
    offset = 0
    with open(out, "w", encoding="utf-8") as f:
        while True:
            chunk = _timed(stages, "read", lambda: _next(chunks))
            if chunk is None:
                break
            df = _timed(stages, "read", lambda c=chunk: parse_chunk(c))  # (100_000, 23)
            pred = _timed(
                stages, "predict", lambda d=df, o=offset: predictor.predict(d, source=str(csv), row_offset=o)
            )  # (100_000, 2)
            text = _timed(stages, "encode", lambda p=pred: encode_rows(p, "jsonl", header=False))
            _timed(stages, "write", lambda t=text: f.write(t))
            frames.append(predictor.predict(df, proba=True))  # (100_000, 4) for the encode comparison
            offset += len(df)
    return stages, frames


def plain_stages(joblib_file: Path, csv: Path, out: Path) -> dict[str, float]:
    "One pass of bench/plain_predict.py's stages over `csv`: seconds per stage."
    import joblib
    import pandas as pd

    pipe = joblib.load(joblib_file)
    stages: dict[str, float] = {}
    with pd.read_csv(csv, chunksize=CHUNK) as reader, open(out, "w", encoding="utf-8") as f:
        it = iter(reader)
        while True:
            chunk = _timed(stages, "read", lambda: _next(it))
            if chunk is None:
                break
            pred = _timed(
                stages,
                "predict",
                lambda c=chunk: pd.DataFrame({"id": c["id"], "prediction": pipe.predict(c)}),
            )
            text = _timed(stages, "encode", lambda p=pred: p.to_json(orient="records", lines=True))
            _timed(stages, "write", lambda t=text: f.write(t))
    return stages


def encode_stages(frames: list[Any]) -> dict[str, float]:
    "The encode stage alone on `frames` (id, prediction, 2 probabilities): today's writer, the one before, pandas'."
    from jsonl_reference import jsonl_by_column as before

    from mlprod.tables import encode_rows

    stages: dict[str, float] = {}
    for df in frames:
        now = _timed(stages, "mlprod, now", lambda d=df: encode_rows(d, "jsonl", header=False))
        old = _timed(stages, "mlprod, before", lambda d=df: before(d))
        _timed(stages, "pandas to_json", lambda d=df: d.to_json(orient="records", lines=True))
        if now != old:
            raise SystemExit("the JSON Lines writer's bytes changed: see tests/test_exact_floats.py")
    return stages


def best(passes: list[dict[str, float]]) -> dict[str, float]:
    "Per stage, the smallest of the passes."
    return {k: min(p[k] for p in passes) for k in passes[0]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--end-to-end", action="store_true", help="then bench/batch_predict.py's CSV rows")
    args = ap.parse_args(argv)
    csv = dataset(args.rows)["csv"]
    print(f"{args.rows:,} rows, chunks of {CHUNK:,}; load average before: {load_average()}")
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "p.jsonl"
        for name, paths in models().items():
            ours, plain, enc = [], [], []
            for _ in range(args.repeat):
                stages, frames = mlprod_stages(paths["bundle"], csv, out)
                ours.append(stages)
                plain.append(plain_stages(paths["joblib"], csv, out))
                enc.append(encode_stages(frames))
                del frames
            a, b, e = best(ours), best(plain), best(enc)
            print(f"\n{name}: seconds per stage, one process (smallest of {args.repeat})")
            print("| stage | mlprod | plain script | ratio |\n|---|---|---|---|")
            for stage in ("read", "predict", "encode", "write"):
                print(f"| {stage} | {a[stage]:.2f} | {b[stage]:.2f} | {a[stage] / b[stage]:.2f}x |")
            sa, sb = sum(a.values()), sum(b.values())
            print(f"| sum | {sa:.2f} | {sb:.2f} | {sa / sb:.2f}x |")
            print("\nencode alone, (id, prediction, 2 probabilities):")
            print("| writer | seconds | against pandas' to_json |\n|---|---|---|")
            for k, v in e.items():
                print(f"| {k} | {v:.3f} | {v / e['pandas to_json']:.2f}x |")
    print(f"\nload average after: {load_average()}")
    if args.end_to_end:
        import batch_predict

        batch_predict.main(["--rows", str(args.rows), "--repeat", "1", "--skip", "jsonl,parquet,memory,dask"])


if __name__ == "__main__":
    main()
