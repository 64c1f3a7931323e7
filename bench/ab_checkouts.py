"""A/B of two checkouts: the same `mlprod predict` commands from two installed checkouts, interleaved round by round.

    .venv/bin/python bench/ab_checkouts.py --base ../other-checkout [--rounds 5] [--rows 1000000]

`bench/batch_predict.py` gives each checkout's ratio against the plain chunked script, but two such runs minutes
apart see different machine load. For a change that must not slow the batch path (a restructuring), this runs
both checkouts' `mlprod predict` (each from its own `.venv`) on the same inputs and models, alternating A and B
in every round, so load hits both alike; the result is B's median wall and CPU time over A's. Inputs and models
are bench/batch_predict.py's (generated there once, under bench/data/batch/). Both outputs are compared byte for
byte: a faster B that writes something else is not a result.
"""

from __future__ import annotations

import argparse
import filecmp
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import batch_predict  # noqa: E402  (bench/ is not a package)


def run_cpu() -> float:
    "CPU seconds (user + system) of this process's finished children so far."
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(checkout: Path, args: list[str], out: Path) -> tuple[float, float]:
    "Wall and CPU (user + system of the process tree) seconds of one `mlprod predict` from `checkout`."
    out.unlink(missing_ok=True)
    before = run_cpu()
    cmd = [str(checkout / ".venv" / "bin" / "mlprod"), "predict", *args, "--output", str(out)]
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=batch_predict.ENV)
    wall = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"{checkout}: {' '.join(cmd[1:])} failed:\n{r.stderr}")
    return wall, run_cpu() - before


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="checkout A (with its .venv installed)")
    ap.add_argument("--head", type=Path, default=HERE.parent, help="checkout B (default: this one)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    data = batch_predict.dataset(args.rows)
    models = batch_predict.models()
    sides = {"A": args.base.resolve(), "B": args.head.resolve()}
    print(f"A = {sides['A'].name}, B = {sides['B'].name}; {args.rounds} interleaved rounds; medians\n")
    print("| input -> JSON Lines | model | A wall (CPU) | B wall (CPU) | B / A wall | B / A CPU |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="mlprod-ab-") as d:
        for fmt in ("csv", "jsonl", "parquet"):
            for name, m in models.items():
                times: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
                cmd = ["--model-dir", str(m["bundle"]), "--input", str(data[fmt])]
                for r in range(args.rounds):
                    for side in ("A", "B") if r % 2 == 0 else ("B", "A"):
                        out = Path(d) / f"{side}.jsonl"
                        times[side].append(run(sides[side], cmd, out))
                    if not filecmp.cmp(Path(d) / "A.jsonl", Path(d) / "B.jsonl", shallow=False):
                        sys.exit(f"{fmt}, {name}: A and B wrote different predictions")
                med = {s: tuple(statistics.median(t[i] for t in v) for i in (0, 1)) for s, v in times.items()}
                (aw, ac), (bw, bc) = med["A"], med["B"]
                print(
                    f"| {fmt} | {name} | {aw:.2f} s ({ac:.1f} s) | {bw:.2f} s ({bc:.1f} s) | {bw / aw:.3f}x | {bc / ac:.3f}x |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
