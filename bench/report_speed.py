"""How long an evaluation report on 10,000 rows takes, beside the kernel start-up it cannot avoid.

Seeded churn-like data (the binary fixture's columns, `--rows` rows; default 10,000) is written into
bench/data/ (git-ignored), a logistic-regression model with the custom ColumnRatio transformer is trained on
another seeded sample, and then, interleaved so machine noise hits all alike, each `--repeat` times:

- baseline: papermill runs a notebook with only an empty parameters cell in the report kernel (kernel start,
  papermill's bookkeeping, kernel shutdown): what every report pays before its first line runs;
- floor: the same with the imports every report needs (pandas, scikit-learn, matplotlib, and mlprod's
  scoring, card and figures modules);
- `evaluate_report` on the data: the whole report, HTML, metrics.json and lineage included.

The figure is the best of the rounds (on a shared machine other processes only ever add time), with the
median beside it. Target (issue 5): the evaluation report at most 10 s wall.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
CONFIG = {
    "name": "bench_report",
    "task": "classification",
    "target": "churned",
    "id_col": "customer_id",
    "preprocessing": {
        "impute_numeric": "median",
        "scale": True,
        "transformers": [
            {
                "class": "mlprod.features.ColumnRatio",
                "params": {"numerator": "income", "denominator": "age", "name": "income_per_year"},
            }
        ],
    },
    "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 1000}},
    "select_by": "roc_auc",
}


def churn_frame(rows: int, seed: int) -> Any:
    "Seeded churn-like rows with the binary fixture's columns and missing values: (rows, 8)."
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows).astype(float)
    income = np.round(rng.lognormal(10.5, 0.5, rows), 2)
    tenure = rng.integers(0, 120, rows).astype(float)
    score = np.round(rng.normal(0, 1, rows), 4)
    city = rng.choice(["tokyo", "osaka", "beijing", "shanghai"], rows)
    plan = rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2])
    logit = (
        -0.04 * (tenure - 60) + 1.2 * score + np.where(plan == "basic", 0.8, -0.6) + (city == "osaka") * 0.7
    )
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i:06d}" for i in range(rows)],
            "age": age,
            "income": income,
            "tenure_months": tenure,
            "score": score,
            "city": city,
            "plan": plan,
            "churned": (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int),
        }
    )
    for col, frac in [("age", 0.05), ("income", 0.08), ("city", 0.06), ("plan", 0.04)]:
        df.loc[rng.random(rows) < frac, col] = None
    return df


def prepare(rows: int) -> tuple[Path, Path]:
    "The evaluation data and a trained model version in bench/data/ (made once per row count)."
    import yaml

    from mlprod.errors import BundleError
    from mlprod.registry import resolve_version
    from mlprod.tables import write_table
    from mlprod.train import train_from_path

    data = DATA / f"report_{rows}.csv"
    train = DATA / f"report_{rows}_train.csv"
    root = DATA / "models" / f"report_{rows}"
    if not data.exists():
        write_table(churn_frame(rows, seed=2), data)
    try:
        version = resolve_version(root)
    except BundleError:
        write_table(churn_frame(rows, seed=1), train)
        config = DATA / "report_config.yaml"
        config.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
        version = train_from_path(config, train, root)
    return data, version


def _notebook(path: Path, *sources: str) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(s) for s in sources)]
    nbformat.write(nb, path)
    return path


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> list[tuple[str, str, str, str]]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000, help="rows of the evaluation data")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the best (and the median) is reported")
    args = ap.parse_args(argv)

    from mlprod.execute import execute
    from mlprod.report import evaluate_report

    DATA.mkdir(exist_ok=True)
    data, version = prepare(args.rows)
    with tempfile.TemporaryDirectory(prefix="mlprod-bench-") as d:
        tmp = Path(d)
        empty = _notebook(tmp / "empty.ipynb")
        imports = _notebook(
            tmp / "imports.ipynb",
            "import pandas, sklearn.pipeline, matplotlib.figure, mlprod.card, mlprod.figures, mlprod.scoring",
        )

        def run_in_kernel(nb: Path) -> Callable[[], Any]:
            def run() -> None:
                with tempfile.TemporaryDirectory(dir=tmp) as scratch:
                    _, failure = execute(nb, {}, Path(scratch))
                assert failure is None, failure

            return run

        cases: dict[str, Callable[[], Any]] = {
            "papermill + kernel, empty notebook (baseline)": run_in_kernel(empty),
            "the same + imports (pandas, sklearn, matplotlib)": run_in_kernel(imports),
            f"evaluate report, {args.rows:,} rows": lambda: evaluate_report(
                version, data, tmp / "report", progress=False
            ),
        }
        for fn in cases.values():  # warm up: file caches, matplotlib's font cache, lazy imports
            fn()
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.repeat):
            for name, fn in cases.items():
                times[name].append(_timed(fn))
    best = {k: min(v) for k, v in times.items()}
    base = best["papermill + kernel, empty notebook (baseline)"]
    rows = [
        (name, f"{best[name]:.2f} s", f"{statistics.median(times[name]):.2f} s", f"{best[name] / base:.1f}x")
        for name in cases
    ]
    report_t = best[f"evaluate report, {args.rows:,} rows"]
    print(
        f"\n## Report speed (best of {args.repeat} rounds, median beside it; ratio vs the kernel baseline)\n"
    )
    print("| run | best wall | median wall | vs baseline |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
    verdict = "PASS" if report_t <= 10 else "FAIL"
    print(f"\nEvaluation report on {args.rows:,} rows: {report_t:.2f} s, target <= 10 s: {verdict}")
    return rows


if __name__ == "__main__":
    main()
