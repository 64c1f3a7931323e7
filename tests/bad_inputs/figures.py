"""Figures of the hardening tests (bad inputs, properties, crashes, concurrency), counted while they run.

Every hardening test file records what it actually ran here; `lines()` turns the counts into the summary that
`make test` prints (tests/conftest.py calls it from `pytest_terminal_summary`). Nothing is hard-coded: a figure
that was not run is not shown.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

_COUNTS: dict[str, int] = defaultdict(int)
_VALUES: dict[str, int | float] = {}
_SEEN: dict[str, set[tuple[str, ...]]] = defaultdict(set)
_TIMES: dict[str, float] = defaultdict(float)


_PENDING: list[Callable[[], None]] | None = None  # the running test's figures, kept only if it passes


def _do(change: Callable[[], None]) -> None:
    if _PENDING is None:
        change()
    else:
        _PENDING.append(change)


def passed_only(test: Callable[..., Any]) -> Callable[..., Any]:
    "Decorate a test: the figures it records count only if it passes (a failing or xfailing run adds nothing)."

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        global _PENDING
        _PENDING = []
        try:
            result = test(*args, **kwargs)
            for change in _PENDING:
                change()
            return result
        finally:
            _PENDING = None

    return run


def count(name: str, *key: str, n: int = 1) -> None:
    "Add `n` to the counter `name`; with a key, also remember the distinct keys seen."

    def change() -> None:
        _COUNTS[name] += n
        if key:
            _SEEN[name].add(key)

    _do(change)


def set(name: str, value: int | float) -> None:  # noqa: A001
    _VALUES[name] = value


def add_time(name: str, seconds: float) -> None:
    def change() -> None:
        _TIMES[name] += seconds

    _do(change)


class timed:  # noqa: N801
    "with timed('crash'): ... adds the elapsed seconds to the figure 'crash'."

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> timed:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        add_time(self.name, time.perf_counter() - self.t0)


def get(name: str) -> int | float:
    return _VALUES.get(name, _COUNTS.get(name, 0))


def distinct(name: str, position: int) -> int:
    "How many distinct values the key had at `position` (e.g. case ids, or slots)."
    return len({k[position] for k in _SEEN.get(name, ())})


def lines() -> list[str]:
    "The figures gathered in this pytest session, one line each (empty when no hardening test ran)."
    out = []
    if _SEEN.get("bad_inputs.python") or _SEEN.get("bad_inputs.cli"):
        out.append(
            f"bad inputs: {get('bad_inputs.cases')} cases in the corpus, run against "
            f"{get('bad_inputs.slots')} command inputs: {_COUNTS['bad_inputs.python']} Python runs and "
            f"{_COUNTS['bad_inputs.cli']} command runs passed (+{_COUNTS['bad_inputs.subprocess']} through the "
            f"installed command); {get('bad_inputs.known')} runs are known failures in other modules (strict xfail)"
        )
    if _COUNTS.get("properties.examples"):
        out.append(
            f"properties: {len(_SEEN['properties.examples'])} properties, "
            f"{_COUNTS['properties.examples']} hypothesis examples, "
            f"{_COUNTS['properties.errors']} of them refused with an MlprodError, none with another exception"
        )
    if _COUNTS.get("crash.kills"):
        ops = ", ".join(f"{k[0]} {n}" for k, n in sorted(_by_key("crash.kills").items()))
        out.append(
            f"crashes: {_COUNTS['crash.kills']} SIGKILLs ({ops}), nothing lost, every next run succeeded "
            f"({_TIMES['crash']:.1f} s)"
        )
    if _COUNTS.get("hostile.runs"):
        classes = _by_key("hostile.runs")
        per = ", ".join(
            f"{k[0]} {len({c for cls, c in _SEEN['hostile.cases'] if cls == k[0]})}" for k in sorted(classes)
        )
        out.append(
            f"hostile conditions: {len(_SEEN['hostile.cases'])} cases in {len(classes)} classes ({per}), "
            f"{_COUNTS['hostile.runs']} runs passed (each: no traceback, no hang, no crash, nothing lost)"
        )
    if _COUNTS.get("concurrency.trials"):
        out.append(
            f"concurrency: {_COUNTS['concurrency.trials']} trials of two processes at once "
            f"({_COUNTS['concurrency.trainings']} trainings, {_COUNTS['concurrency.predictions']} predictions), "
            "every one consistent"
        )
    return out


_PER_KEY: dict[str, dict[tuple[str, ...], int]] = defaultdict(lambda: defaultdict(int))


def count_by(name: str, key: str, n: int = 1) -> None:
    "Add `n` to the counter `name` and to its share for `key` (e.g. crash kills per operation)."

    def change() -> None:
        _COUNTS[name] += n
        _PER_KEY[name][(key,)] += n

    _do(change)


def hostile(cls: str, case: str, runs: int = 1) -> None:
    """Record `runs` passed runs of the hostile case `case` (a distinct input or condition) of the class `cls`
    (crash, orphans, hangs, memory, tracebacks, lineage: the classes of README's hostile-conditions figures).
    Call it inside a test decorated with `passed_only`, after the asserts, so that only passing runs count."""

    def change() -> None:
        _COUNTS["hostile.runs"] += runs
        _PER_KEY["hostile.runs"][(cls,)] += runs
        _SEEN["hostile.cases"].add((cls, case))

    _do(change)


def _by_key(name: str) -> dict[tuple[str, ...], int]:
    return dict(_PER_KEY.get(name, {}))


def _state() -> dict[str, object]:
    return {
        "counts": dict(_COUNTS),
        "values": dict(_VALUES),
        "seen": {k: sorted(v) for k, v in _SEEN.items()},
        "times": dict(_TIMES),
        "per_key": {k: [[list(kk), n] for kk, n in v.items()] for k, v in _PER_KEY.items()},
    }


def _merge(state: dict) -> None:
    "Add the figures of another process (a pytest-xdist worker) to this one's."
    for k, n in state["counts"].items():
        _COUNTS[k] += n
    _VALUES.update(state["values"])
    for k, keys in state["seen"].items():
        _SEEN[k] |= {tuple(x) for x in keys}
    for k, t in state["times"].items():
        _TIMES[k] += t
    for k, rows in state["per_key"].items():
        for key, n in rows:
            _PER_KEY[k][tuple(key)] += n


class _Summary:
    "A pytest plugin: prints `lines()` after the run; under pytest-xdist, workers send their figures home."

    def pytest_sessionfinish(self, session: object) -> None:
        workeroutput = getattr(session.config, "workeroutput", None)  # type: ignore[attr-defined]
        if workeroutput is not None:  # an xdist worker: the controller prints
            workeroutput["mlprod_figures"] = _state()

    def pytest_testnodedown(self, node: object, error: object) -> None:  # the xdist controller
        state = getattr(node, "workeroutput", {}).get("mlprod_figures")
        if state:
            _merge(state)

    def pytest_terminal_summary(self, terminalreporter: object) -> None:
        out = lines()
        if out:
            terminalreporter.section("hardening figures")  # type: ignore[attr-defined]
            for line in out:
                terminalreporter.line(line)  # type: ignore[attr-defined]
            for name, seconds in sorted(_TIMES.items()):
                if name.startswith("file:"):
                    terminalreporter.line(f"  {name[5:]}: {seconds:.1f} s")  # type: ignore[attr-defined]


_PLUGIN = _Summary()


def install(config: object) -> None:
    """Register the summary plugin (idempotent). From tests/conftest.py's pytest_configure it also works under
    pytest-xdist; the hardening test modules call it themselves, which is enough without xdist."""
    pm = config.pluginmanager  # type: ignore[attr-defined]
    if not pm.is_registered(_PLUGIN) and not pm.has_plugin("mlprod-hardening-figures"):
        pm.register(_PLUGIN, "mlprod-hardening-figures")


def register(config: object, module: str) -> timed:
    "Called by each hardening test module (a module-scoped fixture): print the figures at the end; time `module`."
    install(config)
    return timed(f"file:{module}")
