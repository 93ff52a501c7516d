"""Per-incident CPU cost of the what-if's victim-only path, on one core, without a database.

``bench/whatif_bench.py`` times the whole what-if over a million PostgreSQL rows; this
times, per incident, the part of it that runs in a worker for a victim-checklist draft
that is not thresholds-only (its ``--red-flag`` draft): the stored ``inputs`` parsed
(:func:`app.reports.whatif.parse_inputs`), the victim part scored under both definitions
(:func:`app.reports.whatif.victim_unchanged`) and the whole :func:`app.reports.whatif.rescore`
of a row whose stored result is the current one. The rows are the bench's templates
(``triage synth``'s generator, invented data, scored as intake stores them), the
``dash-ric`` ones (the draft's instrument; the others are counted without being parsed).
``orjson.loads`` of the same texts is timed as a reference.

CPU time of this process (``time.process_time``), median of ``--repeats`` passes over all
rows, the measurements interleaved. The machine is noisy: compare figures from one run,
never across runs. ``--baseline REV`` measures the same rows with the code of git revision
``REV`` too (exported to a temporary directory), alternating between the two in
subprocesses, and prints the ratios, also of each step as a multiple of ``orjson.loads``
in the same pass (``ratio/orjson``: steadier when the machine's speed changes)::

    .venv/bin/python bench/whatif_micro.py [--templates 300] [--repeats 15] [--baseline main]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(os.environ.get("WHATIF_MICRO_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.append(str(Path(__file__).resolve().parent))  # baseline_runs, from this tree

import baseline_runs  # noqa: E402
from baseline_runs import Times  # noqa: E402

NAMES = ("orjson.loads", "parse_inputs", "victim_unchanged", "rescore")


def build_rows(templates: int) -> list[dict[str, object]]:
    """The ``dash-ric`` templates of ``bench/whatif_bench.py``: inputs text and stored levels."""
    from whatif_bench import templates as make_templates

    from app.config import Settings
    from app.contract.levels import CHILD_LEVELS
    from app.intake.context import ScoringContext

    context = ScoringContext.load(Settings(environment="test", database_url="sqlite://"))
    rows = []
    for t in make_templates(context, templates):
        if t["vc_id"] != "dash-ric":
            continue
        children = [t.get(f"children_{level}", 0) for level in CHILD_LEVELS]
        rows.append({"inputs": t["inputs"], "level": t["victim_level"], "children": children})
    return rows


def measure(rows: list[dict[str, object]], repeats: int, high_from: int) -> dict[str, list[float]]:
    """Per-incident µs of each step, one figure per pass (this process's code)."""
    import orjson
    from whatif_bench import AREA, draft_document

    from app.config import Settings
    from app.intake.context import ScoringContext
    from app.reports.whatif import (
        ScenarioSpec,
        Tally,
        parse_draft,
        parse_inputs,
        rescore,
        victim_unchanged,
    )

    context = ScoringContext.load(Settings(environment="test", database_url="sqlite://"))
    draft = parse_draft(draft_document(context, high_from, red_flag=True))
    scenario = ScenarioSpec.for_area(context, AREA, draft).build()
    texts = [str(r["inputs"]) for r in rows]
    parsed = [parse_inputs(t) for t in texts]
    full = [
        ("dash-ric", str(r["level"]), tuple(r["children"]), str(r["inputs"]))  # type: ignore[arg-type]
        for r in rows
    ]

    def rescore_all() -> None:
        tally = Tally()
        for row in full:
            rescore(scenario, row, tally)

    steps: dict[str, Callable[[], object]] = {
        "orjson.loads": lambda: [orjson.loads(t) for t in texts],
        "parse_inputs": lambda: [parse_inputs(t) for t in texts],
        "victim_unchanged": lambda: [victim_unchanged(scenario, *p) for p in parsed],
        "rescore": rescore_all,
    }
    return baseline_runs.interleaved(steps, repeats, len(rows))


def run_child(root: Path, rows_file: Path, repeats: int, high_from: int) -> Times:
    arguments = ["--measure", str(rows_file), "--repeats", str(repeats)]
    arguments += ["--high-from", str(high_from)]
    return baseline_runs.run_child(root, Path(__file__).resolve(), "WHATIF_MICRO_ROOT", arguments)


def main() -> int:
    options = baseline_runs.parser(__doc__.splitlines()[0])
    options.add_argument("--high-from", type=int, default=15)
    args = options.parse_args()
    return baseline_runs.main(
        args,
        root=ROOT,
        build_rows=build_rows,
        measure=lambda rows: measure(rows, args.repeats, args.high_from),
        child=lambda root, rows_file: run_child(root, rows_file, args.repeats, args.high_from),
        names=NAMES,
        unit="µs per incident",
        rows_are="dash-ric rows",
    )


if __name__ == "__main__":
    sys.exit(main())
