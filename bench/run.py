"""`make bench`: run every benchmark beside its baseline and write the tables into bench/README.md.

Benchmarks print figures and ratios against a baseline measured in the same run; they assert nothing
(tests assert behaviour). Absolute times on a shared 2-core machine mean little; the ratios are the result.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import io
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# module names in bench/, run in this order
BENCHMARKS = [
    "cli_startup",
    "predict_overhead",
    "bundle_load",
    "recsys_scale",
    "report_speed",
    "batch_predict",
    "serve_speed",
]


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()} {platform.machine()}"


def main() -> None:
    sys.path.insert(0, str(HERE))
    sections = []
    for name in BENCHMARKS:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            importlib.import_module(name).main([])
        print(buf.getvalue())
        sections.append(buf.getvalue().strip())
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    text = (
        "# Benchmarks\n\n"
        "`make bench` runs every benchmark in this folder beside its baseline, in the same run, and rewrites\n"
        "this file. Ratios are the result; absolute times on a shared machine are only context.\n\n"
        f"Latest run: {today}, on {machine()}.\n\n" + "\n\n".join(sections) + "\n"
    )
    (HERE / "README.md").write_text(text, encoding="utf-8")
    print(f"wrote {os.path.relpath(HERE / 'README.md')}")


if __name__ == "__main__":
    main()
