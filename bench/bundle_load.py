"""Loading a bundle with all its checks, against a bare `joblib.load` of the same model.

1. In one process: `load_bundle` (manifest sha256 of every file, versions, unpickle, golden re-run) on a
   ~28 MB uncompressed random forest, against a bare `joblib.load` of the same file, and `sha256` alone.
   Target: load_bundle <= 1.8x joblib.load.
2. Whole processes: load the bundle and predict 100k rows with `Predictor`, against a plain script that
   joblib-loads the pipeline and calls `predict` on the same rows. Target: <= 1.1x the plain script.
   (MLflow's pyfunc is not installed here, so its column is left out.)
Each measurement is the median of interleaved repeats, so machine noise hits both sides alike.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "bundle_load"


def build(n_train: int = 13_000, n_rows: int = 100_000, seed: int = 0) -> tuple[Path, Path]:
    "A ~28 MB uncompressed random forest bundle, and a 100k-row parquet input (seeded)."
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    from mlprod.bundle import Bundle, save_bundle
    from mlprod.features import build_pipeline
    from mlprod.schema import capture_schema, validate

    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cols = [f"x{i}" for i in range(20)]

    def frame(n: int) -> pd.DataFrame:
        X = rng.normal(size=(n, 20))  # (n, 20)
        df = pd.DataFrame(X, columns=cols)
        df.insert(0, "id", np.arange(n))
        df["y"] = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(size=n) > 0).astype(int)
        return df

    train = frame(n_train)
    schema = capture_schema(train, "classification", "y", "id")
    pipe = build_pipeline(schema, RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1))
    pipe.fit(validate(schema, train), train["y"])
    version = save_bundle(Bundle(pipe, {"name": "rf"}, schema, {}, train.head(8)), DATA / "rf", compression=0)
    inputs = DATA / "input_100k.parquet"
    frame(n_rows).drop(columns=["y"]).to_parquet(inputs, index=False)
    return version, inputs


PLAIN = """
import sys, joblib, pandas as pd
model = joblib.load(sys.argv[1])
df = pd.read_parquet(sys.argv[2])
pred = model.predict(df[[f"x{i}" for i in range(20)]])
print(len(pred))
"""

MLPROD = """
import sys, pandas as pd
from mlprod.predict import Predictor
p = Predictor.load(sys.argv[1])
df = pd.read_parquet(sys.argv[2])
print(len(p.predict(df)))
"""


def _median_interleaved(fns: dict, repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm-up: file cache, imports
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    import joblib

    from mlprod.bundle import load_bundle
    from mlprod.io import sha256_file

    version, inputs = build()
    model_file = version / "model.joblib"
    size_mb = model_file.stat().st_size / 2**20
    inproc = _median_interleaved(
        {
            "joblib.load (baseline)": lambda: joblib.load(model_file),
            "sha256 of the model file": lambda: sha256_file(model_file),
            "load_bundle, all checks": lambda: load_bundle(version),
        },
        args.repeat,
    )
    with tempfile.TemporaryDirectory() as d:
        plain, mine = Path(d) / "plain.py", Path(d) / "mlprod_predict.py"
        plain.write_text(PLAIN)
        mine.write_text(MLPROD)
        run = lambda script, target: subprocess.run(  # noqa: E731
            [sys.executable, str(script), str(target), str(inputs)], check=True, capture_output=True
        )
        proc = _median_interleaved(
            {
                "plain script: joblib.load + predict (baseline)": lambda: run(plain, model_file),
                "mlprod: Predictor.load + predict": lambda: run(mine, version),
            },
            max(3, args.repeat // 2),
        )
    base = inproc["joblib.load (baseline)"]
    print(
        f"\n## Bundle load ({size_mb:.1f} MB uncompressed random forest, 100 trees; median of {args.repeat})\n"
    )
    print("| step | median | vs joblib.load |\n|---|---|---|")
    for k, v in inproc.items():
        print(f"| {k} | {v:.3f} s | {v / base:.2f}x |")
    ratio = inproc["load_bundle, all checks"] / base
    print(
        f"\nload_bundle / joblib.load = {ratio:.2f}x (target <= 1.8x: {'PASS' if ratio <= 1.8 else 'FAIL'})"
    )
    pbase = proc["plain script: joblib.load + predict (baseline)"]
    print("\n## Whole process: load and predict 100k rows\n")
    print("| process | median wall | vs plain script |\n|---|---|---|")
    for k, v in proc.items():
        print(f"| {k} | {v:.3f} s | {v / pbase:.2f}x |")
    pr = proc["mlprod: Predictor.load + predict"] / pbase
    print(f"\nmlprod process / plain script = {pr:.2f}x (target <= 1.1x: {'PASS' if pr <= 1.1 else 'FAIL'})")


if __name__ == "__main__":
    main()
