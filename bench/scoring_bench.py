"""Throughput of the pure scoring engine: assessments per second, single process.

Run: ``.venv/bin/python bench/scoring_bench.py [--seconds 1.0] [--repeats 7]``

The incident is the contract's example (invented data) with a third child added, so that
the engine assesses a victim, three children (one unborn) and a perpetrator. ``assess`` is
timed on its own and together with ``to_dict()`` (which also computes the inputs digest).
The median of several repeats is reported, two ways:

- per core: calls per second of CPU time used by this process (``time.process_time``).
  The engine is single-threaded CPU work, so this is what one core gives it; it holds when
  other processes share the machine, as long as they do not also share the core's caches.
- wall clock: calls per second of elapsed time. On an idle machine the two agree; when
  other work competes for the cores (the load average is printed), wall clock is lower.

The whole machine can do roughly the per-core figure times the number of cores.

Target (issue 4, part 9): at least 20,000 assessments per second per core.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.contract.incident import Incident  # noqa: E402
from app.scoring import History, assess, load_registry  # noqa: E402

EXAMPLE = ROOT.parent / "shared" / "contract" / "incident.example.json"
TARGET_PER_SECOND = 20_000


def example_incident() -> Incident:
    """The contract example (invented data) plus a third child, aged 14, not present."""
    if EXAMPLE.exists():
        raw = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    else:
        from tests.scoring.factories import example_incident_dict

        raw = example_incident_dict()
    raw = copy.deepcopy(raw)
    raw["persons"].append(
        {
            "ref": "c3",
            "role": "child",
            "date_of_birth": "2012-01-05",
            "child": {"present": False, "lives_at_address": True, "existing_plan": "none"},
        }
    )
    return Incident.model_validate(raw)


def rate(fn: Callable[[], object], seconds: float) -> tuple[float, float]:
    """Calls per second of ``fn`` over about ``seconds`` of wall time: (per CPU second,
    per wall-clock second)."""
    calls = 0
    batch = 500
    start, start_cpu = time.perf_counter(), time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        now = time.perf_counter()
        if now >= deadline:
            return calls / (time.process_time() - start_cpu), calls / (now - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each repeat")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    incident = example_incident()
    registry = load_registry()
    definitions = registry.default_set()
    history = History.reported(incident)

    def assess_only() -> object:
        return assess(incident, history, definitions)

    def assess_and_dict() -> object:
        return assess(incident, history, definitions).to_dict()

    for _ in range(2000):  # warm up
        assess_only()
    results: dict[str, list[tuple[float, float]]] = {"assess": [], "assess + to_dict": []}
    for _ in range(args.repeats):
        results["assess"].append(rate(assess_only, args.seconds))
    for _ in range(max(3, args.repeats // 2)):
        results["assess + to_dict"].append(rate(assess_and_dict, args.seconds))

    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    children = sum(1 for p in incident.persons if p.role == "child")
    print(f"python {platform.python_version()} on {platform.machine()}, {cores} cores")
    print(f"load average (1 min) at the end: {load:.2f}")
    print(f"incident: 1 victim, {children} children, dash-ric@1 + child-risk@1")
    for name, pairs in results.items():
        per_core = statistics.median(cpu for cpu, _ in pairs)
        wall = statistics.median(w for _, w in pairs)
        print(
            f"{name:17s} per core {per_core:9,.0f}/s ({1e6 / per_core:5.1f} µs CPU each), "
            f"~{per_core * cores:,.0f}/s on {cores} cores; "
            f"wall clock {wall:9,.0f}/s (best {max(w for _, w in pairs):,.0f}/s)"
        )
    per_core = statistics.median(cpu for cpu, _ in results["assess"])
    verdict = "meets" if per_core >= TARGET_PER_SECOND else "BELOW"
    print(f"target {TARGET_PER_SECOND:,}/s per core for assess: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
