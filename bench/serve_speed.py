"""One record over HTTP: `mlprod serve` against a bare Starlette app calling the same pipeline (issue 21).

    .venv/bin/python bench/serve_speed.py [--requests 300] [--repeat 2] [--readme]

Every server runs the same fitted pipeline in a process of its own on 127.0.0.1, uvicorn's access log off:
- `mlprod serve --quiet` on the bundle: the record checked against the schema, the prediction in a worker
  thread, the version in every answer, the metrics, the hot-swap watcher; with one worker, and with two;
- the floor of any framework's cost, in the same run: a bare Starlette app on uvicorn whose one endpoint
  parses the JSON, builds a one-row frame and calls `pipeline.predict` (the pipeline joblib-loaded, no check);
- MLflow's scoring server (`mlflow models serve`, the same pipeline saved by `mlflow.sklearn`) when
  .venv-mlflow/bin/python exists (`make bench-mlflow` builds it); otherwise its rows are skipped, saying so.

A client process of its own (httpx, one kept-alive connection per thread) sends a bounded number of one-record
POSTs at concurrency 1, 8 and 32. Requests/s is the requests over the wall time of the whole loop; p50 and p99
are the latencies the client saw; the server's CPU per request (user + system seconds of its processes over
the loop, by psutil) is the figure a loaded machine disturbs least: mlprod's own cost against the floor. The servers stay up side by side and are measured in interleaved rounds, so
machine noise hits them alike; each figure is the median of `--repeat` rounds. Models: bench/batch_predict.py's
logistic regression and random forest (trained once into bench/data/batch/). The machine has 2 cores, shared by
the client and the server: absolute figures mean little, the ratios are the result.

Issue 21's target beside MLflow: at concurrency 8, at least 2x its requests/s and at most half its p99.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "serve"
BIN = Path(sys.executable).parent
MLFLOW_VENV_PYTHON = HERE.parent / ".venv-mlflow" / "bin" / "python"
CONCURRENCY = (1, 8, 32)
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

# The floor: what anyone serving this pipeline with Starlette writes first.
BARE = """
import sys, joblib, pandas as pd, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

pipeline = joblib.load(sys.argv[1])
columns = sys.argv[2].split(",")


async def predict(request):
    frame = pd.DataFrame([await request.json()], columns=columns)  # (1, n_features)
    return JSONResponse({"prediction": pipeline.predict(frame)[0].item()})


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning", access_log=False)
"""

# Run once by the MLflow interpreter: the very pipeline of the bundle, saved by mlflow.sklearn with a signature.
MLFLOW_SAVE = """
import shutil, sys
import joblib, pandas as pd, mlflow.sklearn
from mlflow.models import infer_signature
pipe = joblib.load(sys.argv[1])
X = pd.read_json(sys.argv[2], orient="records")
shutil.rmtree(sys.argv[3], ignore_errors=True)
mlflow.sklearn.save_model(pipe, sys.argv[3], signature=infer_signature(X, pipe.predict(X)), serialization_format="cloudpickle")
"""

# The client: `concurrency` threads, each with its kept-alive connection, `total` requests in all.
CLIENT = """
import json, sys, threading, time
import httpx

url, concurrency, total, body = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()
headers = {"content-type": "application/json"}
todo, lock, latencies, failed = iter(range(total)), threading.Lock(), [], []
start = threading.Barrier(concurrency + 1)


def run():
    with httpx.Client(timeout=120) as c:
        for _ in range(2):  # the connection opened, the first answers out of the way
            c.post(url, content=body, headers=headers)
        start.wait()
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            t0 = time.perf_counter()
            r = c.post(url, content=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                failed.append(r.status_code)


threads = [threading.Thread(target=run) for _ in range(concurrency)]
for t in threads:
    t.start()
start.wait()
t0 = time.perf_counter()
for t in threads:
    t.join()
wall = time.perf_counter() - t0
latencies.sort()
rank = lambda q: latencies[min(len(latencies) - 1, max(0, int(q * len(latencies) + 0.5) - 1))]
print(json.dumps({"rps": total / wall, "p50": rank(0.50), "p99": rank(0.99), "failed": len(failed)}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    "A server process: started, waited for until it answers a record, stopped (SIGTERM, then SIGKILL)."

    def __init__(self, name: str, cmd: list[str], url: str | None, body: bytes, log: Path) -> None:
        self.name, self.body = name, body
        self.log = open(log, "w+")  # noqa: SIM115  (closed in stop)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log, env=ENV, text=True)
        self.url = url or self._url_from_log()
        self._wait()

    def _url_from_log(self, timeout: float = 120) -> str:
        "`mlprod serve --port 0` names its address in its first line."
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.log.seek(0)
            first = self.log.readline()
            if first.startswith("mlprod: serving") and first.endswith("\n"):
                return first.split(" on ", 1)[1].split(" ", 1)[0] + "/predict"
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start: {self.tail()}")

    def _wait(self, timeout: float = 180) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.post(
                    self.url, content=self.body, headers={"content-type": "application/json"}, timeout=30
                )
                if r.status_code == 200:
                    return
                raise RuntimeError(f"{self.name} answered {r.status_code}: {r.text[:500]}")
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer: {self.tail()}")

    def tail(self) -> str:
        self.log.seek(0)
        return self.log.read()[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(20)
        self.log.close()


def server_cpu(server: Server) -> float:
    "CPU seconds (user + system) the server's processes have used so far, its workers included."
    import psutil

    proc = psutil.Process(server.proc.pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += sum(p.cpu_times()[:2])
    return total


def measure(server: Server, concurrency: int, requests: int) -> dict[str, float]:
    "One bounded loop of the client process: requests/s, p50 and p99 seconds, the server's CPU seconds per request."
    cpu = server_cpu(server)
    out = _loop(server.url, server.body, concurrency, requests)
    out["cpu"] = (server_cpu(server) - cpu) / (requests + 2 * concurrency)  # the warm-up requests count too
    return out


def _loop(url: str, body: bytes, concurrency: int, requests: int) -> dict[str, float]:
    "One bounded loop of the client process against `url`: requests/s, p50 and p99 seconds."
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "serve_client.py"
        script.write_text(CLIENT)
        r = subprocess.run(
            [sys.executable, str(script), url, str(concurrency), str(requests), body.decode()],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=1800,
        )
    if r.returncode != 0:
        raise RuntimeError(f"the client failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if out["failed"]:
        raise RuntimeError(f"{out['failed']} of {requests} requests to {url} failed")
    return out


def mlflow_python() -> Path | None:
    "The interpreter with MLflow: .venv-mlflow's, when it exists and imports mlflow.pyfunc."
    if not MLFLOW_VENV_PYTHON.exists():
        return None
    r = subprocess.run([str(MLFLOW_VENV_PYTHON), "-c", "import mlflow.pyfunc"], capture_output=True, env=ENV)
    return MLFLOW_VENV_PYTHON if r.returncode == 0 else None


@contextlib.contextmanager
def servers(model: dict[str, Path], record: dict[str, Any], mlflow: Path | None) -> Iterator[list[Server]]:
    "Every server of one model, up side by side; each stopped on the way out."
    body = json.dumps(record).encode()
    columns = [c for c in record if c != "id"]
    started: list[Server] = []
    DATA.mkdir(parents=True, exist_ok=True)
    bare = DATA / "bare_starlette.py"
    bare.write_text(BARE)
    try:
        port = _free_port()
        started.append(Server("bare Starlette + pipeline.predict (baseline)",
                              [sys.executable, str(bare), str(model["joblib"]), ",".join(columns), str(port)],
                              f"http://127.0.0.1:{port}/predict", body, DATA / "bare.log"))  # fmt: skip
        for workers in (1, 2):
            cmd = [
                str(BIN / "mlprod"),
                "serve",
                "--model-dir",
                str(model["bundle"]),
                "--port",
                "0",
                "--quiet",
            ]
            started.append(Server(f"mlprod serve{' --workers 2' if workers == 2 else ''}",
                                  [*cmd, "--workers", str(workers)], None, body, DATA / f"mlprod{workers}.log"))  # fmt: skip
        if mlflow is not None:
            saved = DATA / f"mlflow_{model['bundle'].parent.name}"
            example = DATA / "example.json"
            example.write_text(json.dumps([{c: record[c] for c in columns}]))
            subprocess.run([str(mlflow), "-c", MLFLOW_SAVE, str(model["joblib"]), str(example), str(saved)],
                           check=True, env=ENV, capture_output=True)  # fmt: skip
            port = _free_port()
            payload = json.dumps({"dataframe_records": [{c: record[c] for c in columns}]}).encode()
            started.append(Server("MLflow `mlflow models serve`",
                                  [str(mlflow), "-m", "mlflow", "models", "serve", "-m", str(saved), "--host",
                                   "127.0.0.1", "--port", str(port), "--env-manager", "local", "--workers", "1"],
                                  f"http://127.0.0.1:{port}/invocations", payload, DATA / "mlflow.log"))  # fmt: skip
        yield started
    finally:
        for s in started:
            s.stop()


def main(argv: list[str] | None = None) -> list[tuple[str, ...]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=300, help="requests of each loop")
    ap.add_argument("--repeat", type=int, default=2, help="interleaved rounds of each loop (median)")
    ap.add_argument("--no-mlflow", action="store_true", help="leave the MLflow rows out")
    ap.add_argument("--readme", action="store_true", help="also write this section into bench/README.md")
    args = ap.parse_args(argv)
    from batch_predict import MODELS, generate, models  # bench/, beside this file

    mlflow = None if args.no_mlflow else mlflow_python()
    trained = models()
    row = generate(1, seed=7).drop(columns="label").iloc[0]  # one record, as a client sends it
    record = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    record = {k: (None if isinstance(v, float) and v != v else v) for k, v in record.items()}
    results: dict[tuple[str, str, int], dict[str, float]] = {}
    names: dict[str, list[str]] = {}
    for model in MODELS:
        print(f"serving the {model} ...", file=sys.stderr)
        with servers(trained[model], record, mlflow) as up:
            names[model] = [s.name for s in up]
            for c in CONCURRENCY:
                rounds: dict[str, list[dict[str, float]]] = {s.name: [] for s in up}
                for _ in range(args.repeat):
                    for s in up:
                        if c == 1 and "--workers 2" in s.name:
                            continue  # one request at a time: a second worker has nothing to do
                        rounds[s.name].append(measure(s, c, args.requests))
                for name, rs in rounds.items():
                    if rs:
                        results[model, name, c] = {
                            k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99", "cpu")
                        }
    rows = report(results, names, args, mlflow)
    return rows


def report(results: dict[tuple[str, str, int], dict[str, float]], names: dict[str, list[str]], args: argparse.Namespace,
           mlflow: Path | None) -> list[tuple[str, ...]]:  # fmt: skip
    "Print the section (and write it into bench/README.md with --readme)."
    out: list[str] = []
    say = out.append
    say(f"## Serving one record over HTTP (issue 21; {args.requests} requests per loop, median of {args.repeat} "
        "interleaved rounds; ratio vs the bare Starlette app)\n")  # fmt: skip
    say("Each server in a process of its own on 127.0.0.1, one uvicorn worker unless said; a client process "
        "(httpx, one kept-alive connection per thread) sends one-record POSTs; the 2 cores are shared by both.\n")  # fmt: skip
    say("| model | server | concurrency | requests/s | p50 | p99 | server CPU per request | requests/s vs baseline "
        "| p99 vs baseline | server CPU per request vs baseline |")  # fmt: skip
    say("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for model, servers_ in names.items():
        base_name = servers_[0]
        for c in CONCURRENCY:
            base = results[model, base_name, c]
            for name in servers_:
                r = results.get((model, name, c))
                if r is None:
                    continue
                row = (model, name, str(c), f"{r['rps']:,.0f}", f"{r['p50'] * 1000:.1f} ms", f"{r['p99'] * 1000:.1f} ms",
                       f"{r['cpu'] * 1000:.1f} ms", f"{r['rps'] / base['rps']:.2f}x", f"{r['p99'] / base['p99']:.2f}x",
                       f"{r['cpu'] / base['cpu']:.2f}x")  # fmt: skip
                rows.append(row)
                say("| " + " | ".join(row) + " |")
    say("")
    for model in names:
        mine = {c: results[model, "mlprod serve", c] for c in CONCURRENCY}
        base = {c: results[model, names[model][0], c] for c in CONCURRENCY}
        say(f"{model}: mlprod serve's own cost (its checks, version, metrics, log, hot-swap watcher, worker thread) "
            f"in server CPU per request: {mine[1]['cpu'] / base[1]['cpu']:.2f}x the bare app's at concurrency 1, "
            f"{mine[8]['cpu'] / base[8]['cpu']:.2f}x at 8; requests/s at concurrency 8: {mine[8]['rps'] / base[8]['rps']:.2f}x "
            "(the bare app predicts on its event loop, mlprod in a worker thread).\n")  # fmt: skip
    if mlflow is not None:
        for model in names:
            m = next((n for n in names[model] if n.startswith("MLflow")), None)
            if m is None:
                continue
            mine, theirs = results[model, "mlprod serve", 8], results[model, m, 8]
            ok = mine["rps"] >= 2 * theirs["rps"] and mine["p99"] <= theirs["p99"] / 2
            say(f"{model}: vs MLflow at concurrency 8: {mine['rps'] / theirs['rps']:.2f}x its requests/s, "
                f"{mine['p99'] / theirs['p99']:.2f}x its p99 (target >= 2x and <= 0.5x: {'PASS' if ok else 'FAIL'})")  # fmt: skip
    elif args.no_mlflow:
        say("MLflow rows left out (--no-mlflow).")
    else:
        say("MLflow rows skipped: .venv-mlflow/ is absent; `make bench-mlflow` builds it (MLflow beside, never in, "
            ".venv/), and then this benchmark runs MLflow's scoring server on the same pipeline in the same run.")  # fmt: skip
    section = "\n".join(out)
    print("\n" + section)
    if args.readme:
        from readme_section import replace_section

        print(f"\nwrote {os.path.relpath(replace_section('Serving one record', section))}")
    return rows


if __name__ == "__main__":
    main()
