"""`mlprod serve` (issue 21): a model over HTTP on 127.0.0.1, every request checked, a promotion swapped in live.

Servers run in this process (uvicorn in a thread, on an ephemeral port) or as the installed command in a
subprocess. Every server a test starts is stopped in a `finally`, and every request and every wait has a timeout.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from bad_inputs import figures

from mlprod.bundle import save_bundle
from mlprod.errors import BundleError, IntegrityError
from mlprod.hotswap import CurrentModel
from mlprod.io import write_json
from mlprod.predict import Predictor
from mlprod.registry import promote
from mlprod.serve import bind, create_app, make_server
from mlprod.tables import read_table
from mlprod.train import train_from_data

from conftest import BIN, CHURN_CONFIG, FIXTURES, run_cli

TIMEOUT = 10.0  # seconds: any one request, a server's start or stop
BODY_LIMIT = 20_000  # bytes: the limit of the shared server, small enough to pass on loopback in one go


# --- models and servers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    "A model root with two versions of a churn classifier (another regularisation each); the second is latest."
    df = read_table(FIXTURES / "binary.csv")
    root = tmp_path_factory.mktemp("serve") / "churn"
    v1 = save_bundle(train_from_data(CHURN_CONFIG, df), root)
    params = {"max_iter": 2000, "C": 0.02}
    v2 = save_bundle(
        train_from_data({**CHURN_CONFIG, "estimator": {**CHURN_CONFIG["estimator"], "params": params}}, df),
        root,
    )
    return root, v1, v2


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    "The fixture's records as a client sends them: JSON values, no target."
    df = read_table(FIXTURES / "binary.csv").drop(columns="churned")
    return json.loads(df.to_json(orient="records"))


@contextmanager
def running(current: CurrentModel, **options: Any) -> Iterator[str]:
    "A server of `current` (create_app's `options`) in a thread of this process on an ephemeral port: its URL."
    sock = bind("127.0.0.1", 0)
    server = make_server(create_app(current, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        sock.close()
    assert not thread.is_alive(), "the server did not stop"


@pytest.fixture(scope="module")
def served(churn: tuple[Path, Path, Path]) -> Iterator[tuple[httpx.Client, Predictor, list[str]]]:
    "One server of the version v2 for the tests that only ask: a client, the same model loaded here, the log."
    _, _, v2 = churn
    log: list[str] = []
    current = CurrentModel(Predictor.load, v2, log=log.append)
    with running(current, max_body_bytes=BODY_LIMIT, log=log.append, watch_every=None) as url:
        with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
            yield client, Predictor.load(v2), log


def wait_for(check: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# --- answers --------------------------------------------------------------------------------------------------


def test_one_record_is_answered_by_the_served_version(served, rows, churn) -> None:
    client, predictor, _ = served
    r = client.post("/predict", json=rows[0])
    assert r.status_code == 200, r.text
    assert r.json() == {"version": churn[2].name, "prediction": predictor.predict_one(rows[0])}
    assert r.headers["x-mlprod-version"] == churn[2].name
    r = client.post("/predict", params={"proba": "true"}, json=rows[5])
    want = predictor.predict_one(rows[5], proba=True)
    got = r.json()["prediction"]
    assert list(got) == ["customer_id", "prediction", "proba_0", "proba_1"]
    assert got["prediction"] == want["prediction"] and got["customer_id"] == rows[5]["customer_id"]
    assert got["proba_1"] == pytest.approx(want["proba_1"], rel=1e-12)


def test_a_batch_is_answered_in_its_order(served, rows) -> None:
    client, predictor, _ = served
    batch = rows[:60]
    r = client.post("/predict?proba=1", json=batch)
    assert r.status_code == 200, r.text
    want = predictor.predict(pd.DataFrame(batch), proba=True)  # (60, 4)
    got = r.json()["predictions"]
    assert [p["customer_id"] for p in got] == [b["customer_id"] for b in batch]
    assert [p["prediction"] for p in got] == want["prediction"].tolist()
    assert [p["proba_0"] for p in got] == pytest.approx(want["proba_0"].tolist(), rel=1e-9)
    # ids are optional: without them, the answer's order says which record is which
    no_ids = client.post(
        "/predict", json=[{k: v for k, v in b.items() if k != "customer_id"} for b in batch[:3]]
    )
    assert no_ids.json()["predictions"] == [{"prediction": p} for p in want["prediction"].tolist()[:3]]
    assert client.post("/predict", json=[]).json()["predictions"] == []


def test_an_unseen_category_and_a_missing_value_are_answered_as_predict_answers_them(served, rows) -> None:
    client, predictor, _ = served
    record = {**rows[1], "city": "atlantis", "income": None}
    r = client.post("/predict", json=record)
    assert r.status_code == 200, r.text
    assert r.json()["prediction"] == predictor.predict_one(record)


def _chunked(body: bytes) -> Iterator[bytes]:
    "A body sent in pieces without a Content-Length (chunked transfer): the limit is checked while it arrives."
    for i in range(0, len(body), 1000):
        yield body[i : i + 1000]


def _bad(rows: list[dict[str, Any]]) -> dict[str, tuple[Any, int, str, int | None, str | None]]:
    "Each kind of bad body: (body, status, words of the error, record at fault, column at fault)."
    r0, r1 = rows[0], rows[1]
    no_tenure = {k: v for k, v in r1.items() if k != "tenure_months"}
    return {
        "not JSON": (b"age=40&income=3", 400, "the body is not JSON (Expecting value", None, None),
        "empty": (b"", 400, "the body is empty", None, None),
        "not UTF-8": (b'{"city": "\xff\xfe"}', 400, "the body is not JSON", None, None),
        "NaN": (b'{"age": NaN}', 400, "NaN is not JSON", None, None),
        "a JSON string": (b'"a record"', 400, "the body is text", None, None),
        "a list of numbers": (b"[1, 2]", 400, "record 0 is a number (expected a JSON object)", 0, None),
        "nested too deep": (b"[" * 15_000, 400, "nested too deep", None, None),
        "wrong type": (json.dumps({**r0, "age": "old"}).encode(), 422,
                       "record 0: column 'age': cannot convert 'old' to a number", 0, "age"),
        "wrong type in a batch": (json.dumps([r0, r1, {**r1, "income": "lots"}]).encode(), 422,
                                  "record 2: column 'income': cannot convert 'lots' to a number", 2, "income"),
        "a list for a value": (json.dumps({**r0, "city": ["osaka"]}).encode(), 422,
                               "record 0: column 'city': a list (expected text or null)", 0, "city"),
        "missing column": (json.dumps(no_tenure).encode(), 422, "record 0: missing column: tenure_months", 0,
                           "tenure_months"),
        "missing column in a batch": (json.dumps([r0, no_tenure]).encode(), 422,
                                      "record 1: missing column: tenure_months", 1, "tenure_months"),
        "too large": (json.dumps([r0] * 200).encode(), 413, f"over the limit of {BODY_LIMIT:,} bytes", None, None),
        "too large, chunked": (_chunked(json.dumps([r0] * 200).encode()), 413, "over the limit", None, None),
    }  # fmt: skip


BAD = list(_bad([{"customer_id": "c", "tenure_months": 1}] * 2))


@figures.passed_only
@pytest.mark.parametrize("case", BAD)
def test_each_bad_body_is_a_4xx_naming_what_is_wrong(served, rows, case) -> None:
    client, _, _ = served
    body, status, words, record, column = _bad(rows)[case]
    r = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    answer = r.json()
    assert words in answer["error"], answer
    assert "\n" not in answer["error"] and "Traceback" not in r.text
    assert (answer.get("record"), answer.get("column")) == (record, column)
    figures.hostile("memory" if status == 413 else "tracebacks", f"serve: a body {case}", runs=1)


@figures.passed_only
def test_the_body_limit_is_checked_while_the_body_arrives() -> None:
    "A body with no Content-Length that would never end: refused once past the limit, the rest never read."
    import asyncio

    from mlprod.records import ClientError, read_body

    pulled = 0

    async def endless() -> Any:
        nonlocal pulled
        while pulled < 1_000_000:  # 1 GB, were it read whole
            pulled += 1
            yield b"x" * 1000

    with pytest.raises(ClientError, match="over the limit of 10,000 bytes") as e:
        asyncio.run(read_body(endless(), limit=10_000))
    assert (e.value.status, pulled) == (413, 11)
    figures.hostile("memory", "serve: an endless body", runs=1)


def test_a_bad_query_and_unknown_paths_are_answered_in_json(served) -> None:
    client, _, _ = served
    r = client.post("/predict?proba=maybe", json={})
    assert (r.status_code, r.json()) == (400, {"error": "proba=maybe (expected proba=true or proba=false)"})
    assert client.get("/predict").json() == {"error": "Method Not Allowed: GET /predict"}
    assert (client.get("/nowhere").status_code, client.get("/nowhere").json()) == (
        404, {"error": "Not Found: GET /nowhere"})  # fmt: skip


def test_health_ready_model_and_metrics(churn, rows) -> None:
    root, _, v2 = churn
    log: list[str] = []
    current = CurrentModel(Predictor.load, v2, log=log.append)
    with (
        running(current, log=log.append, watch_every=None) as url,
        httpx.Client(base_url=url, timeout=TIMEOUT) as c,
    ):
        assert c.get("/health").json() == {"status": "alive"}
        assert c.get("/ready").json() == {"ready": True, "version": v2.name}
        model = c.get("/model").json()
        bundle = Predictor.load(v2).bundle
        assert (model["version"], model["name"], model["task"]) == (v2.name, "churn", "classification")
        assert model["created"] == bundle.metadata["created_at"] and model["metrics"] == bundle.metrics
        assert model["schema"] == bundle.schema.to_dict()
        for record in rows[:3]:
            assert c.post("/predict", json=record).status_code == 200
        assert c.post("/predict", json={"age": 3}).status_code == 422
        assert c.get("/no/such/endpoint").status_code == 404
        r = c.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = dict(line.rsplit(" ", 1) for line in r.text.splitlines() if not line.startswith("#"))
    assert samples['mlprod_requests_total{endpoint="/predict",status="200"}'] == "3"
    assert samples['mlprod_requests_total{endpoint="/predict",status="422"}'] == "1"
    assert samples['mlprod_requests_total{endpoint="other",status="404"}'] == "1"
    assert samples['mlprod_request_duration_seconds_count{endpoint="/predict"}'] == "4"
    assert samples['mlprod_request_duration_seconds_bucket{endpoint="/predict",le="+Inf"}'] == "4"
    assert samples[f'mlprod_model_info{{version="{v2.name}"}}'] == "1"
    assert (samples["mlprod_model_swaps_total"], samples["mlprod_model_refused_total"]) == ("0", "0")
    lines = [line for line in log if line.startswith("POST /predict ")]
    assert len(lines) == 4 and all(line.endswith(f" ms {v2.name}") for line in lines), log
    assert [line.split()[2] for line in lines] == ["200", "200", "200", "422"]


class _Broken:
    "A predictor whose model fails inside (a bug, not the client's): everything else as the real one."

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def __getattr__(self, name: str) -> Any:
        return getattr(self.predictor, name)

    def predict_one(self, record: dict[str, Any], proba: bool = False) -> dict[str, Any]:
        raise RuntimeError("the model fell over")


@figures.passed_only
def test_a_failure_inside_is_a_500_with_one_line_and_no_traceback(churn, rows, capfd) -> None:
    _, _, v2 = churn
    log: list[str] = []
    current = CurrentModel(lambda folder: _Broken(Predictor.load(folder)), v2, log=log.append)
    with (
        running(current, log=None, watch_every=None) as url,
        httpx.Client(base_url=url, timeout=TIMEOUT) as c,
    ):
        r = c.post("/predict", json=rows[0])
        assert c.get("/health").status_code == 200  # the server goes on
    assert r.status_code == 500
    assert r.json() == {"error": "internal error: the server could not answer (logged on the server)"}
    errors = capfd.readouterr().err.splitlines()
    assert [e for e in errors if "500" in e] == [
        next(
            e
            for e in errors
            if e.startswith("mlprod: 500 POST /predict: RuntimeError: the model fell over (at ")
        )
    ]
    assert not [e for e in errors if "Traceback" in e], errors
    figures.hostile("tracebacks", "serve: an exception inside a prediction", runs=1)


# --- the command ----------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tamper(model: Path) -> None:
    "Change one byte of a saved file, in place."
    model.chmod(0o644)
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))


@figures.passed_only
def test_the_command_refuses_a_bad_bundle_without_opening_a_port(churn, tmp_path, monkeypatch) -> None:
    bad = tmp_path / churn[2].name
    shutil.copytree(churn[2], bad)
    _tamper(bad / "model.joblib")
    port = _free_port()
    r = run_cli("serve", "--model-dir", str(bad), "--port", str(port), timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("mlprod: integrity error:") and "model.joblib" in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr and "serving" not in r.stderr
    r = run_cli("serve", "--model-dir", str(tmp_path / "nothing"), "--port", str(port), timeout=60)
    assert (r.returncode, r.stderr.strip().endswith("no such model folder")) == (2, True), r.stderr
    # in this process, with every bind seen: the refusal comes before any socket is bound
    from typer.testing import CliRunner

    from mlprod.cli import app

    bound: list[Any] = []
    real_bind = socket.socket.bind
    monkeypatch.setattr(
        socket.socket, "bind", lambda self, address: bound.append(address) or real_bind(self, address)
    )
    r = CliRunner().invoke(app, ["serve", "--model-dir", str(bad), "--port", "0"])
    assert (r.exit_code, bound) == (2, []), r.output
    r = CliRunner().invoke(app, ["serve", "--model-dir", str(churn[0]), "--alias", "staging", "--port", "0"])
    assert (r.exit_code, bound) == (2, []), r.output
    assert "no alias 'staging' in this model root (expected one of: latest)" in r.stderr
    figures.hostile("tracebacks", "serve: a tampered bundle", runs=2)


@figures.passed_only
def test_a_port_in_use_is_one_line(churn) -> None:
    from typer.testing import CliRunner

    from mlprod.cli import app

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = CliRunner().invoke(app, ["serve", "--model-dir", str(churn[2]), "--port", str(port)])
    assert r.exit_code == 2, r.output
    assert (
        r.stderr == f"mlprod: config error: cannot listen on 127.0.0.1:{port} (Address already in use) "
        "(expected a free port (0: any))\n"
    )
    figures.hostile("tracebacks", "serve: a port in use", runs=1)


@contextmanager
def command(*args: str) -> Iterator[tuple[str, subprocess.Popen[str], queue.Queue[str]]]:
    "`mlprod serve ... --port 0` as a user runs it: its URL (from the line it prints at start), the process, its stderr lines."
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPROD")}
    proc = subprocess.Popen([str(BIN / "mlprod"), "serve", *args, "--port", "0"], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env=env)  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(line.rstrip("\n")) for line in proc.stderr], daemon=True
    )
    reader.start()
    try:
        first = lines.get(timeout=60)  # start-up: imports, the model loaded and verified
        assert first.startswith("mlprod: serving churn version "), first
        yield first.split(" on ", 1)[1].split(" ", 1)[0], proc, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(TIMEOUT)
        reader.join(TIMEOUT)


def _drain(lines: queue.Queue[str]) -> list[str]:
    out = []
    while not lines.empty():
        out.append(lines.get_nowait())
    return out


@pytest.mark.parametrize("quiet", [False, True], ids=["a line per request", "quiet"])
def test_the_command_serves_logs_each_request_and_stops_on_sigterm(churn, rows, quiet) -> None:
    root, _, v2 = churn
    with command("--model-dir", str(root), *(["--quiet"] if quiet else [])) as (url, proc, lines):
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0"), url
        with httpx.Client(base_url=url, timeout=TIMEOUT) as c:
            assert c.post("/predict", json=rows[:2]).json()["version"] == v2.name
            assert c.get("/health").status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) in (0, -signal.SIGTERM)  # stopped once the requests in flight are answered
    logged = _drain(lines)
    assert not [line for line in logged if "Traceback" in line], logged
    requests = [line for line in logged if line.startswith(("POST ", "GET "))]
    if quiet:
        assert requests == [], logged
    else:
        assert [line.split()[:3] for line in requests] == [
            ["POST", "/predict", "200"],
            ["GET", "/health", "200"],
        ]
        assert requests[0].endswith(f" ms {v2.name}"), requests


@pytest.mark.slow
def test_the_command_with_two_workers_answers_and_leaves_none_behind(churn, rows) -> None:
    import psutil

    root, _, v2 = churn
    with command("--model-dir", str(root), "--workers", "2", "--quiet") as (url, proc, _):
        with httpx.Client(base_url=url, timeout=60) as c:
            wait_for(lambda: c.get("/ready").status_code == 200, "a worker to be ready", 60)
            versions = {c.post("/predict", json=r).json()["version"] for r in rows[:20]}
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert versions == {v2.name} and len(workers) >= 2, (versions, workers)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert alive == []


# --- hot swap -------------------------------------------------------------------------------------------------


def test_the_alias_followed_is_the_one_asked(churn) -> None:
    root, v1, v2 = churn
    assert CurrentModel(Predictor.load, root, alias="latest").version == v2.name
    with pytest.raises(BundleError, match="no alias 'champion' in this model root"):
        CurrentModel(Predictor.load, root, alias="champion")


def test_a_promotion_during_a_stream_of_requests_fails_none_and_is_served_after_the_swap(
    churn, rows, tmp_path
) -> None:
    root = tmp_path / "churn"
    shutil.copytree(churn[0], root)
    v1, v2 = churn[1].name, churn[2].name
    promote(root, v1)  # champion: v1; latest: v2
    expected = {  # what each version answers for each record: its probabilities differ in every row
        v: Predictor.load(root / v).predict(pd.DataFrame(rows), proba=True)["proba_1"].tolist()
        for v in (v1, v2)
    }
    log: list[str] = []
    current = CurrentModel(Predictor.load, root, log=log.append)
    n, threads = 300, 4
    todo = itertools.count()
    answers: list[
        tuple[float, int, int, str | None, float | None]
    ] = []  # (start, record, status, version, proba_1)
    observed: list[tuple[float, str]] = []  # (time an answer of /model arrived, the version it named)
    done, stop = threading.Event(), threading.Event()

    def client(url: str) -> None:
        with httpx.Client(base_url=url, timeout=TIMEOUT) as c:
            while (i := next(todo)) < n:
                t0 = time.monotonic()
                r = c.post("/predict?proba=true", json=rows[i % len(rows)])
                ok = r.status_code == 200
                version, p = (r.json()["version"], r.json()["prediction"]["proba_1"]) if ok else (None, None)
                answers.append((t0, i, r.status_code, version, p))
                if len(answers) == 60:
                    done.set()

    def observer(url: str) -> None:
        with httpx.Client(base_url=url, timeout=TIMEOUT) as c:
            while not stop.is_set():
                version = c.get("/model").json()["version"]
                observed.append((time.monotonic(), version))
                time.sleep(0.01)

    with running(current, log=None, watch_every=0.05) as url:
        watching = threading.Thread(target=observer, args=(url,), daemon=True)
        watching.start()
        workers = [threading.Thread(target=client, args=(url,), daemon=True) for _ in range(threads)]
        try:
            for w in workers:
                w.start()
            assert done.wait(60), "the stream did not start"
            promote(root, v2)
            for w in workers:
                w.join(120)
        finally:
            stop.set()
            watching.join(TIMEOUT)
    assert not any(w.is_alive() for w in workers)
    assert len(answers) == n and {a[2] for a in answers} == {200}
    for _, i, _, version, p in answers:  # each answer computed by the version it names
        assert p == pytest.approx(expected[version][i % len(rows)], rel=1e-9), (i, version)
    seen = min(t for t, v in observed if v == v2)  # the swap observed through /model
    after = [a[3] for a in answers if a[0] > seen]
    assert after and set(after) == {v2}, (len(after), set(after))
    assert {a[3] for a in answers} == {v1, v2}  # the stream saw both versions
    assert log == [f"mlprod: now serving version {v2} (was {v1})"] and current.swaps == 1


@figures.passed_only
def test_a_tampered_version_promoted_is_never_served(churn, rows, tmp_path) -> None:
    root = tmp_path / "churn"
    shutil.copytree(churn[0], root)
    v2 = churn[2].name
    promote(root, v2)
    log: list[str] = []
    current = CurrentModel(Predictor.load, root, log=log.append)
    with (
        running(current, log=None, watch_every=0.05) as url,
        httpx.Client(base_url=url, timeout=TIMEOUT) as c,
    ):
        v3 = save_bundle(
            train_from_data(CHURN_CONFIG, read_table(FIXTURES / "binary.csv")), root, latest=False
        )
        _tamper(v3 / "model.joblib")  # changed after it was saved
        with pytest.raises(IntegrityError):
            promote(root, v3.name)  # promote refuses it; a hand edit of the aliases asks nothing
        write_json(root / "aliases.json", {"latest": v2, "champion": v3.name})
        wait_for(
            lambda: _metric(c, "mlprod_model_refused_total") == "1", "the tampered version to be refused"
        )
        assert c.get("/model").json()["version"] == v2
        assert {c.post("/predict", json=r).json()["version"] for r in rows[:10]} == {v2}
        time.sleep(0.3)  # several more looks at the root: the refusal is not repeated
        assert _metric(c, "mlprod_model_refused_total") == "1"
        assert c.get("/ready").json() == {"ready": True, "version": v2}
    assert len(log) == 1, log
    assert log[0].startswith(f"mlprod: still serving version {v2}; refused the new one: integrity error:"), (
        log
    )
    assert v3.name in log[0] and current.swaps == 0
    figures.hostile("tracebacks", "serve: a tampered version promoted", runs=1)


def _metric(client: httpx.Client, name: str) -> str:
    "The value of the metric `name` (a sample without labels) that /metrics answers now."
    line = next(x for x in client.get("/metrics").text.splitlines() if x.startswith(name + " "))
    return line.split()[-1]
