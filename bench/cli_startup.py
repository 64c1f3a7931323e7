"""How long `mlprod --help` takes, beside the floors it stands on.

Each command is run `--repeat` times as a fresh process, interleaved (so machine noise hits all alike);
the median wall time is reported with its ratio to the typer floor (a bare `import typer`).
Target (issue 2): `mlprod --help` at most 0.15 s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
PY = sys.executable

COMMANDS = {
    "python -c pass (interpreter floor)": [PY, "-c", "pass"],
    "python -c 'import typer' (typer floor)": [PY, "-c", "import typer"],
    "mlprod --help": [str(BIN / "mlprod"), "--help"],
    "mlprod --version": [str(BIN / "mlprod"), "--version"],
    "python -c 'import pandas, sklearn' (eager imports)": [PY, "-c", "import pandas, sklearn.pipeline"],
}


def measure(repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for cmd in COMMANDS.values():  # warm the file cache once
        subprocess.run(cmd, capture_output=True, check=True)
    for _ in range(repeat):
        for name, cmd in COMMANDS.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> list[tuple[str, str, str]]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args(argv)
    med = measure(args.repeat)
    floor = med["python -c 'import typer' (typer floor)"]
    rows = [(name, f"{t:.3f} s", f"{t / floor:.2f}x") for name, t in med.items()]
    help_t = med["mlprod --help"]
    verdict = "PASS" if help_t <= 0.15 else "FAIL"
    print(f"\n## CLI start-up (median of {args.repeat} fresh processes; ratio vs the typer floor)\n")
    print("| command | median wall | vs `import typer` |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    print(f"\n`mlprod --help`: {help_t:.3f} s, target <= 0.150 s: {verdict}")
    return rows


if __name__ == "__main__":
    main()
