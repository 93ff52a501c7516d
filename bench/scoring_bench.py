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

Both shipped rules versions are measured in the same run, repeats interleaved, so that
their ratio is not a comparison across runs: version 1 (the contract's defaults) and
version 2 (the default since docs/rules.md: effective answers, more triggers and flags).
Flag evaluation (``evaluate_flags`` on the assessment) is timed too.

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
from app.flags.calendar import Calendar  # noqa: E402
from app.flags.engine import evaluate_flags  # noqa: E402
from app.flags.ruleset import FlagRuleRegistry  # noqa: E402
from app.scoring import History, assess, load_registry  # noqa: E402

VERSIONS = {
    "v1": (("dash-ric@1", "dash-police@1"), "child-risk@1", "default-flags@1"),
    "v2": (("dash-ric@2", "dash-police@2"), "child-risk@2", "default-flags@2"),
}

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
    flag_rules = FlagRuleRegistry.from_directory()
    calendar = Calendar()
    history = History.reported(incident)
    timed: dict[str, Callable[[], object]] = {}
    for version, (checklists, child_risk, rules_key) in VERSIONS.items():
        definitions = registry.definition_set(checklists, child_risk)
        rules = flag_rules.get(rules_key)
        assessment = assess(incident, history, definitions).to_dict()

        def assess_only(definitions: object = definitions) -> object:
            return assess(incident, history, definitions)  # type: ignore[arg-type]

        def assess_and_dict(definitions: object = definitions) -> object:
            return assess(incident, history, definitions).to_dict()  # type: ignore[arg-type]

        def flags(assessment: dict[str, object] = assessment, rules: object = rules) -> object:
            return evaluate_flags(incident, assessment, rules, calendar)  # type: ignore[arg-type]

        timed[f"{version} assess"] = assess_only
        timed[f"{version} assess + to_dict"] = assess_and_dict
        timed[f"{version} flags"] = flags

    for fn in timed.values():  # warm up
        for _ in range(1000):
            fn()
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in timed}
    for _ in range(args.repeats):
        for name, fn in timed.items():  # interleaved: the versions share the machine's noise
            results[name].append(rate(fn, args.seconds))

    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    children = sum(1 for p in incident.persons if p.role == "child")
    print(f"python {platform.python_version()} on {platform.machine()}, {cores} cores")
    print(f"load average (1 min) at the end: {load:.2f}")
    print(f"incident: 1 victim, {children} children; medians of {args.repeats} repeats")
    medians = {name: statistics.median(cpu for cpu, _ in pairs) for name, pairs in results.items()}
    for name, pairs in results.items():
        per_core = medians[name]
        wall = statistics.median(w for _, w in pairs)
        print(
            f"{name:21s} per core {per_core:9,.0f}/s ({1e6 / per_core:5.1f} µs CPU each), "
            f"~{per_core * cores:,.0f}/s on {cores} cores; wall clock {wall:9,.0f}/s"
        )
    for what in ("assess", "assess + to_dict", "flags"):
        ratio = medians[f"v2 {what}"] / medians[f"v1 {what}"]
        print(f"v2 / v1 throughput, {what}: {ratio:.2f}")
    per_core = medians["v2 assess"]
    verdict = "meets" if per_core >= TARGET_PER_SECOND else "BELOW"
    print(f"target {TARGET_PER_SECOND:,}/s per core for assess (v2): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
