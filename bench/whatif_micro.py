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

ROOT = Path(os.environ.get("WHATIF_MICRO_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

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


def run_child(root: Path, rows_file: Path, repeats: int, high_from: int) -> dict[str, list[float]]:
    env = {**os.environ, "WHATIF_MICRO_ROOT": str(root)}
    script = root / "bench" / "whatif_micro.py"
    if not script.exists():  # a revision from before this script: run this one on its code
        script = Path(__file__).resolve()
    out = subprocess.run(  # noqa: S603 - this interpreter, this script
        [
            sys.executable,
            str(script),
            "--measure",
            str(rows_file),
            "--repeats",
            str(repeats),
            "--high-from",
            str(high_from),
        ],
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
    parser.add_argument("--high-from", type=int, default=15)
    parser.add_argument("--baseline", metavar="REV", help="also measure git revision REV")
    parser.add_argument("--rounds", type=int, default=3, help="alternations with --baseline")
    parser.add_argument("--measure", metavar="ROWS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # a subprocess of --baseline: measure the rows given, print JSON
        rows = json.loads(Path(args.measure).read_text("utf-8"))
        print(json.dumps(measure(rows, args.repeats, args.high_from)))
        return 0
    rows = build_rows(args.templates)
    print(f"{len(rows)} dash-ric rows; load average {os.getloadavg()[0]:.2f}")
    if args.baseline is None:
        times = measure(rows, args.repeats, args.high_from)
        for name in NAMES:
            print(f"{name:18} {statistics.median(times[name]):8.1f} µs")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.json"
        rows_file.write_text(json.dumps(rows), "utf-8")
        base = export(args.baseline, Path(tmp) / "baseline")
        collected: dict[str, dict[str, list[float]]] = {"baseline": {}, "this": {}}
        trees = [("baseline", base), ("this", ROOT)]
        for round_ in range(args.rounds):
            for label, root in trees if round_ % 2 == 0 else trees[::-1]:  # neither always first
                measured = run_child(root, rows_file, args.repeats, args.high_from)
                for name, values in measured.items():
                    collected[label].setdefault(name, []).extend(values)
    print(
        f"{'µs per incident':18} {args.baseline:>10} {'this tree':>10} {'ratio':>7} "
        f"{'ratio/orjson':>13}"
    )
    for name in NAMES:
        before = statistics.median(collected["baseline"][name])
        after = statistics.median(collected["this"][name])
        # Each pass as a multiple of orjson.loads in the same pass: steadier when the
        # machine's speed changes between the two trees' turns.
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
            f"{name:18} {before:10.1f} {after:10.1f} {after / before:7.2f} "
            f"{multiples[1] / multiples[0]:13.2f}"
        )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
