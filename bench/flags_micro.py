"""Per-call CPU cost of the flag engine (:func:`app.flags.engine.evaluate_flags`), on one core.

The flag engine runs once at every intake and twice per changed incident in the what-if
(:func:`app.reports.whatif._count_scored`). This times it per call over realistic pairs of
incident and assessment: the ``dash-ric`` templates of ``bench/whatif_bench.py``
(``triage synth``'s generator, invented data) and the contract's example incident
(``tests/data/incident.example.json``), each scored by the engine under the area's
definitions. Steps, each one pass over all rows:

- ``orjson.loads``: parsing the rows' stored inputs, a reference for the machine's speed;
- ``flags what-if``: ``evaluate_flags`` on the what-if's flag document (``flag_document``);
- ``flags intake``: ``evaluate_flags`` on the full result as intake passes it;
- ``intake pure``: what intake computes without the database: scoring
  (:func:`app.assessments.pipeline.evaluate`) and then the flags.

CPU time of this process (``time.process_time``), median of ``--repeats`` passes, the steps
interleaved. The machine is noisy: compare figures from one run, never across runs.
``--baseline REV`` measures the same rows with the code of git revision ``REV`` too
(exported to a temporary directory), alternating between the two trees in subprocesses,
and prints the ratios, also of each step as a multiple of ``orjson.loads`` in the same
pass (``ratio/orjson``: steadier when the machine's speed changes). Pin it to one core
with ``taskset -c 1``::

    taskset -c 1 .venv/bin/python bench/flags_micro.py [--templates 300] [--repeats 15]
        [--baseline main] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

ROOT = Path(os.environ.get("FLAGS_MICRO_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

NAMES = ("orjson.loads", "flags what-if", "flags intake", "intake pure")
EXAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "incident.example.json"


def build_rows(templates: int) -> list[str]:
    """Stored inputs (JSON text): the bench's ``dash-ric`` templates and the example."""
    import orjson
    from whatif_bench import templates as make_templates

    from app.config import Settings
    from app.contract.incident import Incident
    from app.intake.context import ScoringContext
    from app.scoring.history import History

    context = ScoringContext.load(Settings(environment="test", database_url="sqlite://"))
    rows = [
        str(t["inputs"]) for t in make_templates(context, templates) if t["vc_id"] == "dash-ric"
    ]
    example = Incident.model_validate(json.loads(EXAMPLE.read_text("utf-8")))
    inputs = {
        "incident": example.model_dump(mode="json"),
        "history": History.reported(example).to_dict(),
        "judgements": [],
    }
    return [*rows, orjson.dumps(inputs).decode()]


def measure(rows: list[str], repeats: int) -> dict[str, list[float]]:
    """Per-call µs of each step, one figure per pass (this process's code)."""
    import orjson
    from whatif_bench import AREA

    from app.assessments.pipeline import evaluate
    from app.config import Settings
    from app.flags.engine import evaluate_flags
    from app.intake.context import ScoringContext
    from app.reports.whatif import flag_document, parse_inputs
    from app.scoring.engine import assess

    context = ScoringContext.load(Settings(environment="test", database_url="sqlite://"))
    definitions = context.definition_set(AREA)
    classifier = context.classifier_policy(AREA)
    rules, calendar = context.rules(AREA), context.calendar
    parsed = [parse_inputs(text)[:2] for text in rows]
    whatif = [(i, flag_document(assess(i, h, definitions, []))) for i, h in parsed]
    intake = [(i, evaluate(i, h, definitions, [], classifier)) for i, h in parsed]

    def intake_pure() -> None:
        for incident, history in parsed:
            result = evaluate(incident, history, definitions, [], classifier)
            evaluate_flags(incident, result, rules, calendar, now_reference=incident.reported_at)

    steps: dict[str, Callable[[], object]] = {
        "orjson.loads": lambda: [orjson.loads(t) for t in rows],
        "flags what-if": lambda: [evaluate_flags(i, r, rules, calendar) for i, r in whatif],
        "flags intake": lambda: [evaluate_flags(i, r, rules, calendar) for i, r in intake],
        "intake pure": intake_pure,
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            started = time.process_time()
            step()
            times[name].append((time.process_time() - started) / len(rows) * 1e6)
    return times


def export(revision: str, into: Path) -> Path:
    """The tree of ``revision`` (its ``app`` and ``bench``) written under ``into``."""
    archive = subprocess.run(  # noqa: S603 - git, a revision named on the command line
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision, "app", "bench"],  # noqa: S607
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    for name in ("models", "app/scoring/definitions"):  # data the loaders read, if not in app
        source = ROOT / name
        if source.exists() and not (into / name).exists():
            (into / name).symlink_to(source)
    return into


def run_child(root: Path, rows_file: Path, repeats: int) -> dict[str, list[float]]:
    """Measure in a subprocess on ``root``'s code (this script if that tree has none)."""
    env = {**os.environ, "FLAGS_MICRO_ROOT": str(root)}
    script = root / "bench" / "flags_micro.py"
    if not script.exists():  # a revision from before this script: run this one on its code
        script = Path(__file__).resolve()
    out = subprocess.run(  # noqa: S603 - this interpreter, this script
        [sys.executable, str(script), "--measure", str(rows_file), "--repeats", str(repeats)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
    ).stdout
    result: dict[str, list[float]] = json.loads(out.splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--baseline", metavar="REV", help="also measure git revision REV")
    parser.add_argument("--rounds", type=int, default=3, help="alternations with --baseline")
    parser.add_argument("--measure", metavar="ROWS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # a subprocess of --baseline: measure the rows given, print JSON
        rows = json.loads(Path(args.measure).read_text("utf-8"))
        print(json.dumps(measure(rows, args.repeats)))
        return 0
    rows = build_rows(args.templates)
    print(f"{len(rows)} rows; load average {os.getloadavg()[0]:.2f}")
    if args.baseline is None:
        times = measure(rows, args.repeats)
        for name in NAMES:
            print(f"{name:16} {statistics.median(times[name]):8.1f} µs")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.json"
        rows_file.write_text(json.dumps(rows), "utf-8")
        base = export(args.baseline, Path(tmp) / "baseline")
        collected: dict[str, dict[str, list[float]]] = {"baseline": {}, "this": {}}
        trees = [("baseline", base), ("this", ROOT)]
        for round_ in range(args.rounds):
            for label, root in trees if round_ % 2 == 0 else trees[::-1]:  # neither always first
                measured = run_child(root, rows_file, args.repeats)
                for name, values in measured.items():
                    collected[label].setdefault(name, []).extend(values)
    print(
        f"{'µs per call':16} {args.baseline:>10} {'this tree':>10} {'ratio':>7} "
        f"{'ratio/orjson':>13}"
    )
    for name in NAMES:
        before = statistics.median(collected["baseline"][name])
        after = statistics.median(collected["this"][name])
        multiples = [
            statistics.median(
                value / reference
                for value, reference in zip(
                    collected[tree][name], collected[tree]["orjson.loads"], strict=True
                )
            )
            for tree in ("baseline", "this")
        ]
        print(
            f"{name:16} {before:10.1f} {after:10.1f} {after / before:7.2f} "
            f"{multiples[1] / multiples[0]:13.2f}"
        )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
