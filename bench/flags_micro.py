"""Per-call CPU cost of the flag engine (:func:`app.flags.engine.evaluate_flags`), on one core.

The flag engine runs once at every intake and twice per changed incident in the what-if
(:func:`app.reports.whatif._count_scored`). This times it per call over realistic pairs of
incident and assessment: the ``dash-ric`` templates of ``bench/whatif_bench.py``
(``triage synth``'s generator, invented data) and the contract's example incident
(``tests/data/incident.example.json``), each scored by the engine under the area's
definitions. Steps, each one pass over all rows:

- ``orjson.loads``: parsing the rows' stored inputs, a reference for the machine's speed;
- ``flags what-if``: the flag engine as the what-if runs it, on the scoring engine's own
  result objects, for the flags' keys and types alone (``flag_keys`` on an
  ``EngineView``; in a ``--baseline`` tree from before that existed, ``evaluate_flags`` on
  the short document ``flag_document`` made);
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

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(os.environ.get("FLAGS_MICRO_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.append(str(Path(__file__).resolve().parent))  # baseline_runs, from this tree

import baseline_runs  # noqa: E402
from baseline_runs import Times  # noqa: E402

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
    from app.reports.whatif import parse_inputs
    from app.scoring.engine import assess

    context = ScoringContext.load(Settings(environment="test", database_url="sqlite://"))
    definitions = context.definition_set(AREA)
    classifier = context.classifier_policy(AREA)
    rules, calendar = context.rules(AREA), context.calendar
    parsed = [parse_inputs(text)[:2] for text in rows]
    scored = [(i, assess(i, h, definitions, [])) for i, h in parsed]
    try:
        from app.flags.engine import flag_keys
        from app.reports.whatif import EngineView

        def flags_whatif() -> object:
            return [flag_keys(i, EngineView.of(a), [rules]) for i, a in scored]
    except ImportError:  # a baseline tree from before the what-if passed the engine's objects
        from app.reports.whatif import flag_document  # type: ignore[attr-defined]

        def flags_whatif() -> object:
            return [evaluate_flags(i, flag_document(a), rules, calendar) for i, a in scored]

    intake = [(i, evaluate(i, h, definitions, [], classifier)) for i, h in parsed]

    def intake_pure() -> None:
        for incident, history in parsed:
            result = evaluate(incident, history, definitions, [], classifier)
            evaluate_flags(incident, result, rules, calendar, now_reference=incident.reported_at)

    steps: dict[str, Callable[[], object]] = {
        "orjson.loads": lambda: [orjson.loads(t) for t in rows],
        "flags what-if": flags_whatif,
        "flags intake": lambda: [evaluate_flags(i, r, rules, calendar) for i, r in intake],
        "intake pure": intake_pure,
    }
    return baseline_runs.interleaved(steps, repeats, len(rows))


def run_child(root: Path, rows_file: Path, repeats: int) -> Times:
    """Measure in a subprocess on ``root``'s code (this script if that tree has none)."""
    arguments = ["--measure", str(rows_file), "--repeats", str(repeats)]
    return baseline_runs.run_child(root, Path(__file__).resolve(), "FLAGS_MICRO_ROOT", arguments)


def main() -> int:
    args = baseline_runs.parser(__doc__.splitlines()[0]).parse_args()
    return baseline_runs.main(
        args,
        root=ROOT,
        build_rows=build_rows,
        measure=lambda rows: measure(rows, args.repeats),
        child=lambda root, rows_file: run_child(root, rows_file, args.repeats),
        names=NAMES,
        unit="µs per call",
        rows_are="rows",
    )


if __name__ == "__main__":
    sys.exit(main())
