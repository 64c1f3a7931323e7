"""Loading a bundle with all its checks, against a bare `joblib.load` of the same model.

1. In one process: `load_bundle` (every file read once and its sha256 compared with the manifest, versions,
   the model unpickled by `joblib.load` from those same bytes in memory, golden re-run) on a ~26 MB uncompressed
   random forest, against a bare `joblib.load` of the same file; beside them the read and sha256 of the model file
   alone and `joblib.load` from its bytes in memory alone. Then the same in a fresh process whose allocator keeps
   freed memory (see MALLOC_KEEP). Target: load_bundle <= 2.0x joblib.load.
2. Whole processes: load the bundle and predict 100k rows with `Predictor`, against a plain script that
   joblib-loads the pipeline and calls `predict` on the same rows. Target: <= 1.05x the plain script.
   Beside them, MLflow: the same fitted pipeline saved once with `mlflow.sklearn.save_model` (with a
   signature; as cloudpickle, like the joblib bundle, and in MLflow's default format, skops), and a process
   that runs `mlflow.pyfunc.load_model(path).predict(df)`. Target: mlprod's process < MLflow's.
3. Peak memory of a load, each in a fresh process (warmed up on a 2-tree bundle of the same kind, so imports do not
   count): the peak resident size during the load (VmHWM of /proc/self/status, reset just before it) less the
   resident size just before it, for `load_bundle` and for a bare `joblib.load` of the same file, beside the model
   file's size. Target: load_bundle's <= 2x the model file.
Each measurement is the median of interleaved repeats, so machine noise hits every side alike.

MLflow is not a dependency of mlprod's environment: `make bench-mlflow` builds .venv-mlflow/ (dev.lock's pins
plus MLflow, from requirements/bench-mlflow.lock) and runs this with `--mlflow-python .venv-mlflow/bin/python`;
every timed process then runs in that interpreter. Without `--mlflow-python`, the MLflow rows appear when
`import mlflow` works here or .venv-mlflow/ exists, and are skipped (saying so) otherwise. MLflow runs with
its telemetry off and no tracking server: models are saved to and loaded from local folders only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "bundle_load"
MLFLOW_VENV_PYTHON = HERE.parent / ".venv-mlflow" / "bin" / "python"
# Every timed process runs with its bytecode cached, as after a normal install (as in batch_predict.py: where
# PYTHONDONTWRITEBYTECODE is set, each process would compile mlprod afresh). MLflow: telemetry off, any
# MLFLOW_* setting of the caller dropped, tracking (unused: models live in local folders) kept on a local path.
ENV = {
    k: v
    for k, v in os.environ.items()
    if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith(("MLPROD", "MLFLOW_"))
}
ENV.update(
    PYTHONPYCACHEPREFIX=str(HERE / "data" / "pycache"),
    MLFLOW_DISABLE_TELEMETRY="true",
    DO_NOT_TRACK="true",
    MLFLOW_TRACKING_URI=(DATA / "mlruns").as_uri(),
)


def build(n_train: int = 13_000, n_rows: int = 100_000, seed: int = 0) -> tuple[Path, Path, Path]:
    "A ~26 MB uncompressed random forest bundle, a 2-tree one of the same kind, and a 100k-row parquet input (seeded)."
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    from mlprod.bundle import Bundle, save_bundle
    from mlprod.features import build_pipeline
    from mlprod.schema import capture_schema, validate

    DATA.mkdir(parents=True, exist_ok=True)
    for name in ("rf", "rf_tiny"):
        shutil.rmtree(DATA / name, ignore_errors=True)  # one version only, not one more per run
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
    tiny = build_pipeline(schema, RandomForestClassifier(n_estimators=2, random_state=seed, n_jobs=1))
    tiny.fit(validate(schema, train.head(500)), train["y"].head(500))
    tiny_version = save_bundle(
        Bundle(tiny, {"name": "rf_tiny"}, schema, {}, train.head(8)), DATA / "rf_tiny", compression=0
    )
    inputs = DATA / "input_100k.parquet"
    frame(n_rows).drop(columns=["y"]).to_parquet(inputs, index=False)
    return version, tiny_version, inputs


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

MLFLOW = """
import sys, mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
df = pd.read_parquet(sys.argv[2])
print(len(model.predict(df[[f"x{i}" for i in range(20)]])))
"""

# One load in a fresh process: warmed up on the tiny bundle (imports, first allocations), then the peak resident size
# reset (writing 5 to /proc/self/clear_refs) and the big bundle loaded. Prints JSON: bytes resident before the load,
# the peak during it, and whether the peak could be reset (else it may be an earlier, higher one).
MEMORY = """
import gc, json, sys
from pathlib import Path
how, version, tiny = sys.argv[1:4]
if how == "joblib.load":
    import joblib
    load = lambda v: joblib.load(Path(v) / "model.joblib")
else:
    from mlprod.bundle import load_bundle
    load = load_bundle
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
load(tiny)
gc.collect()
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = True
except OSError:
    reset = False
before = status("VmRSS")
model = load(version)
print(json.dumps({"before": before, "peak": status("VmHWM"), "reset": reset}))
"""

# Run once by the MLflow interpreter: the very pipeline of the bundle, saved in both formats; each saved model
# must give the pipeline's own predictions back.
MLFLOW_SAVE = """
import shutil, sys
import joblib, pandas as pd, skops.io
import mlflow.pyfunc, mlflow.sklearn
from mlflow.models import infer_signature
pipe = joblib.load(sys.argv[1])
X = pd.read_parquet(sys.argv[2])[[f"x{i}" for i in range(20)]].head(1000)
signature = infer_signature(X.head(100), pipe.predict(X.head(100)))
trusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipe))
for path, fmt in [(sys.argv[3], "cloudpickle"), (sys.argv[4], "skops")]:
    shutil.rmtree(path, ignore_errors=True)
    mlflow.sklearn.save_model(pipe, path, signature=signature, serialization_format=fmt,
                              skops_trusted_types=trusted if fmt == "skops" else None)
    assert (mlflow.pyfunc.load_model(path).predict(X) == pipe.predict(X)).all(), fmt
"""


def mlflow_version(python: str | Path) -> str | None:
    "MLflow's version (and which distribution) in `python`, or None when it cannot import mlflow's pyfunc."
    code = (
        "import importlib.metadata as m, mlflow.pyfunc, mlflow.sklearn\n"
        "print(mlflow.__version__ + ', from ' + ' and '.join(sorted(set(m.packages_distributions()['mlflow']))))"
    )
    r = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=ENV)
    return r.stdout.strip() if r.returncode == 0 else None


def find_mlflow(python: str | None) -> tuple[Path, str] | None:
    "The interpreter to time MLflow (and so every process) in: `python`, else this one, else .venv-mlflow's."
    if python:
        version = mlflow_version(python)
        if version is None:
            raise SystemExit(
                f"--mlflow-python {python}: cannot import mlflow.pyfunc and mlflow.sklearn there"
            )
        return Path(python).absolute(), version
    for candidate in (Path(sys.executable), MLFLOW_VENV_PYTHON):
        if candidate.exists() and (version := mlflow_version(candidate)):
            return candidate, version
    return None


def lock_changes() -> str:
    "How requirements/bench-mlflow.lock differs from requirements/dev.lock: MLflow's pins, and any it moved."

    def pins(name: str) -> dict[str, set[str]]:
        text = (HERE.parent / "requirements" / name).read_text(encoding="utf-8")
        found: dict[str, set[str]] = {}
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", text, re.M):
            found.setdefault(m[1].lower(), set()).add(m[2])
        return found

    dev, bench = pins("dev.lock"), pins("bench-mlflow.lock")
    moved = [
        f"{k} {', '.join(sorted(bench[k]))} (dev.lock: {', '.join(sorted(v))})"
        for k, v in sorted(dev.items())
        if k in bench and bench[k] != v
    ]
    return "dev.lock's pins plus MLflow's" + (", but " + "; ".join(moved) if moved else "")


def write_readme(section: str) -> Path:
    "Put `section` in bench/README.md in place of its own section; the others stay as they are."
    # bench/ is on sys.path: the folder of the script that runs, or bench/run.py put it there
    from readme_section import replace_section

    return replace_section("Bundle load", section)


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


MALLOC_KEEP = {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def in_process(version: Path, repeat: int) -> dict[str, float]:
    "Part 1: median seconds of each way to load the model of `version`, interleaved in this process."
    import hashlib
    import io

    import joblib

    from mlprod.bundle import load_bundle

    model_file = version / "model.joblib"
    data = model_file.read_bytes()

    return _median_interleaved(
        {
            "joblib.load (baseline)": lambda: joblib.load(model_file),
            "read + sha256 of the model file": lambda: hashlib.sha256(model_file.read_bytes()).hexdigest(),
            "joblib.load of its bytes in memory (no checks)": lambda: joblib.load(io.BytesIO(data)),
            "load_bundle, all checks": lambda: load_bundle(version),
        },
        repeat,
    )


def peak_memory(version: Path, tiny: Path, python: Path, repeat: int) -> dict[str, Any]:
    "Part 3: median bytes a load adds to the peak resident size, for each way to load, each in fresh processes."
    runs: dict[str, list[int]] = {"joblib.load (baseline)": [], "load_bundle, all checks": []}
    reset = True
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "peak_memory.py"
        script.write_text(MEMORY)
        for _ in range(repeat):
            for row in runs:
                how = row.split(" ")[0]
                cmd = [str(python), str(script), how, str(version), str(tiny)]
                r = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
                if r.returncode != 0:
                    raise RuntimeError(f"the memory run failed ({r.returncode}): {r.stderr.strip()[-3000:]}")
                got = json.loads(r.stdout.strip().splitlines()[-1])
                runs[row].append(got["peak"] - got["before"])
                reset = reset and got["reset"]
    return {"rows": {k: statistics.median(v) for k, v in runs.items()}, "reset": reset}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7, help="rounds of the in-process loads")
    ap.add_argument("--process-repeat", type=int, default=5, help="rounds of the whole processes")
    ap.add_argument("--memory-repeat", type=int, default=3, help="rounds of the fresh processes of part 3")
    ap.add_argument(
        "--mlflow-python", help="an interpreter with MLflow (and mlprod): .venv-mlflow/bin/python"
    )
    ap.add_argument("--no-mlflow", action="store_true", help="leave the MLflow rows out")
    ap.add_argument("--readme", action="store_true", help="also write this section into bench/README.md")
    ap.add_argument("--in-process-only", type=Path, help=argparse.SUPPRESS)  # a version: print part 1 as JSON
    args = ap.parse_args(argv)
    if args.in_process_only:
        print(json.dumps(in_process(args.in_process_only, args.repeat)))
        return

    found = None if args.no_mlflow else find_mlflow(args.mlflow_python)
    version, tiny, inputs = build()
    model_file = version / "model.joblib"
    size_mb = model_file.stat().st_size / 2**20
    inproc = in_process(version, args.repeat)
    # The same in a fresh process whose allocator keeps what is freed: glibc otherwise gives large freed blocks
    # back to the system and the next load takes page faults on fresh ones, more or fewer from run to run
    # depending on what ran before (joblib.load alone: 27 to 49 ms here). Both sides run under the same setting.
    r = subprocess.run(
        [sys.executable, __file__, "--in-process-only", str(version), "--repeat", str(args.repeat)],
        capture_output=True,
        text=True,
        env={**ENV, **MALLOC_KEEP},
    )
    if r.returncode != 0:
        raise RuntimeError(f"the fixed-allocator run failed ({r.returncode}): {r.stderr.strip()[-3000:]}")
    kept = json.loads(r.stdout.strip().splitlines()[-1])
    python = found[0] if found else Path(sys.executable)
    with tempfile.TemporaryDirectory() as d:
        # each script under a name no module has (a script's folder comes first on sys.path)
        for name, text in {
            "plain_script": PLAIN,
            "mlprod_predict": MLPROD,
            "mlflow_predict": MLFLOW,
            "mlflow_save": MLFLOW_SAVE,
        }.items():
            (Path(d) / f"{name}.py").write_text(text)

        def run(name: str, *targets: Path) -> None:
            cmd = [str(python), str(Path(d) / f"{name}.py"), *map(str, targets)]
            r = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
            if r.returncode != 0:
                raise RuntimeError(f"{name} process failed ({r.returncode}): {r.stderr.strip()[-3000:]}")

        runs = {
            "plain script: joblib.load + predict (baseline)": lambda: run("plain_script", model_file, inputs),
            "mlprod: Predictor.load + predict": lambda: run("mlprod_predict", version, inputs),
        }
        mlflow_rows = {  # row -> (format, saved model)
            "MLflow: pyfunc.load_model + predict (cloudpickle, as the joblib bundle)": (
                "cloudpickle",
                DATA / "mlflow_model",
            ),
            "MLflow: pyfunc.load_model + predict (skops, MLflow's default format)": (
                "skops",
                DATA / "mlflow_model_skops",
            ),
        }
        if found:
            run("mlflow_save", model_file, inputs, *(path for _, path in mlflow_rows.values()))
            for row, (_, path) in mlflow_rows.items():
                runs[row] = lambda path=path: run("mlflow_predict", path, inputs)
        proc = _median_interleaved(runs, args.process_repeat)

    memory = peak_memory(version, tiny, python, args.memory_repeat)

    out: list[str] = []
    say = out.append
    say(f"## Bundle load ({size_mb:.1f} MB uncompressed random forest, 100 trees; median of {args.repeat})\n")
    if args.readme:
        from run import machine  # bench/run.py, beside this file

        today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        by = " by `make bench-mlflow`" if found else ""
        say(f"Run on {today}{by}, on {machine()}.\n")
    say(
        "Each row in this process after the benchmark built the bundle, and again in a fresh process whose "
        "allocator keeps freed memory (glibc's `MALLOC_MMAP_THRESHOLD_=64 MiB`, `MALLOC_TRIM_THRESHOLD_=1 GiB`: "
        "no page faults on fresh memory after the first load, which otherwise come and go with what ran "
        "before).\n"
    )
    base, kbase = inproc["joblib.load (baseline)"], kept["joblib.load (baseline)"]
    say(
        "| step | median | vs joblib.load | median, allocator keeping | vs joblib.load |\n"
        "|---|---|---|---|---|"
    )
    for k, v in inproc.items():
        say(f"| {k} | {v:.3f} s | {v / base:.2f}x | {kept[k]:.3f} s | {kept[k] / kbase:.2f}x |")
    say("")
    for label, times in [("", inproc), (", allocator keeping", kept)]:
        ratio = times["load_bundle, all checks"] / times["joblib.load (baseline)"]
        verdict = "PASS" if ratio <= 2.0 else "FAIL"
        say(f"load_bundle / joblib.load{label} = {ratio:.2f}x (target <= 2.0x: {verdict})")
    say(
        f"\n### Whole process: load and predict 100k rows (median of {args.process_repeat} interleaved rounds, "
        "each a fresh process)\n"
    )
    if found:
        rel = os.path.relpath(python, HERE.parent)
        lock = f"; requirements/bench-mlflow.lock: {lock_changes()}" if python == MLFLOW_VENV_PYTHON else ""
        say(
            f"Every process runs in `{rel}` (MLflow {found[1]}{lock}). MLflow's models: the bundle's pipeline "
            "saved once by `mlflow.sklearn.save_model` with a signature, loaded from a local folder.\n"
        )
    pbase = proc["plain script: joblib.load + predict (baseline)"]
    say("| process | median wall | vs plain script |\n|---|---|---|")
    for k, v in proc.items():
        say(f"| {k} | {v:.3f} s | {v / pbase:.2f}x |")
    mine = proc["mlprod: Predictor.load + predict"]
    pr = mine / pbase
    say(f"\nmlprod process / plain script = {pr:.2f}x (target <= 1.05x: {'PASS' if pr <= 1.05 else 'FAIL'})")
    if found:
        row = min(mlflow_rows, key=proc.__getitem__)
        best = proc[row]
        say(
            f"\nmlprod process < MLflow process: {'PASS' if mine < best else 'FAIL'} (mlprod {mine:.3f} s; "
            f"MLflow in its faster format here, {mlflow_rows[row][0]}, {best:.3f} s: {mine / best:.2f}x)"
        )
    elif args.no_mlflow:
        say("\nMLflow rows left out (--no-mlflow).")
    else:
        say(
            "\nMLflow rows skipped: mlflow is not importable here and .venv-mlflow/ is absent; "
            "`make bench-mlflow` builds it and runs this with them."
        )
    size = model_file.stat().st_size
    say(
        f"\n### Peak memory of a load (median of {args.memory_repeat} fresh processes each; model file "
        f"{size / 2**20:.1f} MiB)\n"
    )
    say(
        "Each process first loads a 2-tree bundle of the same kind (imports, first allocations), then the peak "
        "resident size is reset and the bundle loaded: the peak during the load less the resident size just "
        "before it."
        + (
            ""
            if memory["reset"]
            else " (The peak could not be reset here: an earlier, higher peak may show.)"
        )
        + "\n"
    )
    say("| load | peak added | vs the model file | vs joblib.load |\n|---|---|---|---|")
    mbase = memory["rows"]["joblib.load (baseline)"]
    for k, v in memory["rows"].items():
        say(f"| {k} | {v / 2**20:.1f} MiB | {v / size:.2f}x | {v / mbase:.2f}x |")
    mr = memory["rows"]["load_bundle, all checks"] / size
    say(f"\nload_bundle peak / model file = {mr:.2f}x (target <= 2x: {'PASS' if mr <= 2 else 'FAIL'})")
    section = "\n".join(out)
    print("\n" + section)
    if args.readme:
        print(f"\nwrote the bundle section of {os.path.relpath(write_readme(section))}")


if __name__ == "__main__":
    main()
