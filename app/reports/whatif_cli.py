"""``triage rescore``: what-if over a whole area, streamed to a process pool.

    triage rescore --definition FILE --area AREA [--from T] [--to T] [--json] [--workers N]

Streams the stored inputs of the latest assessment of each incident in scope (a
server-side cursor on PostgreSQL) to ``--workers`` processes (default: every core), shows
a progress bar on a terminal and a progress line every few seconds otherwise, prints the
suppressed report (as text, or as JSON with ``--json``) and appends one ``consult``
audit event. Nothing else is written. A bad draft exits 2 with the problems (locations
and rules, never the file's content).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from app.audit.chain import AuditEntry, append, digest_of
from app.audit.cli import os_user
from app.config import get_settings
from app.db import Database
from app.intake.context import ScoringContext
from app.reports import whatif_repository
from app.reports.whatif import DraftError, ScenarioSpec, audit_detail, parse_draft, report, run
from app.reports.whatif_repository import Scope

BATCH = 2_000
PLAIN_PROGRESS_SECONDS = 5.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "rescore",
        help="what-if: re-score stored incidents under a draft definition (nothing stored)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--definition", type=Path, required=True, help="the draft file (YAML/JSON)")
    p.add_argument("--area", required=True, help="the area code whose incidents are re-scored")
    p.add_argument("--from", dest="occurred_from", type=_aware, help="occurred at or after")
    p.add_argument("--to", dest="occurred_to", type=_aware, help="occurred before")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes (default: cores)"
    )
    p.set_defaults(func=rescore_command)


def _say(text: str, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write(text + "\n")
    out.flush()


def _aware(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("a time needs an offset (e.g. 2026-01-01T00:00:00Z)")
    return value.astimezone(dt.UTC)


def rescore_command(args: argparse.Namespace) -> int:
    try:
        raw = args.definition.read_bytes()
    except OSError as exc:
        _say(f"cannot read the draft: {exc.strerror}", sys.stderr)
        return 2
    settings = get_settings()
    context = ScoringContext.load(settings)
    try:
        draft = parse_draft(raw)
        spec = ScenarioSpec.for_area(context, args.area, draft)
    except DraftError as exc:
        _say("the draft is not a valid definition:", sys.stderr)
        for problem in exc.problems:
            _say(f"  {problem}", sys.stderr)
        return 2
    scope = Scope(args.area, args.occurred_from, args.occurred_to)
    database = Database(settings.effective_database_url)
    try:
        tally, seconds = rescore_area(database, spec, scope, args.workers)
        body = report(tally, draft=draft, area=args.area, seconds=seconds)
        with database.unit() as session:
            append(
                session,
                AuditEntry(
                    principal_id=f"cli:{os_user()}",
                    role="auditor",
                    agency=None,
                    operation="consult",
                    record_type="report",
                    record_ids=[],
                    recipients=[],
                    digest=digest_of(json.dumps(body, sort_keys=True)),
                    detail=audit_detail(tally, draft, args.area),
                ),
            )
    finally:
        database.dispose()
    if args.json:
        _say(json.dumps(body, indent=2))
    else:
        _say(text_report(body))
    return 0


def rescore_area(
    database: Database, spec: ScenarioSpec, scope: Scope, workers: int
) -> tuple[Any, float]:
    with database.engine.connect() as connection:
        total = whatif_repository.count_in_scope(connection, scope)
        started = time.perf_counter()
        with _progress(total, sys.stderr) as advance:
            batches = whatif_repository.stream_rows(connection, scope, BATCH, spec.stored_keys())
            tally = run(spec, batches, workers=workers, progress=advance)
        return tally, time.perf_counter() - started


class _progress:
    """A tqdm bar on a terminal; otherwise a plain line every few seconds."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total = total
        self.out = out
        self.done = 0
        self.bar: tqdm[Any] | None = None
        self.last = 0.0
        self.started = 0.0

    def __enter__(self) -> _progress:
        self.started = self.last = time.perf_counter()
        if self.out.isatty():
            self.bar = tqdm(total=self.total, unit=" incidents", file=self.out, smoothing=0.1)
        return self

    def __call__(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if now - self.last >= PLAIN_PROGRESS_SECONDS or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            _say(f"rescored {self.done}/{self.total} incidents ({rate:,.0f}/s)", self.out)

    def __exit__(self, *_: object) -> None:
        if self.bar is not None:
            self.bar.close()


def text_report(body: dict[str, Any]) -> str:
    """The report for a reader at a terminal (the same figures as ``--json``)."""
    lines = [
        f"what-if for area {body['area']}: draft {body['draft']['key']} "
        f"({body['draft']['kind']}, sha256 {body['draft']['sha256'][:12]}…)",
        f"incidents re-scored: {body['incidents']} (failed: {body['failed']}) "
        f"in {body.get('seconds', 0):.1f} s",
    ]
    for who in ("victims", "children"):
        table = body[who]["before_after"]
        columns = list(next(iter(table.values())))
        width = max(len(c) for c in [*columns, *table]) + 1
        lines.append(f"\n{who}: level now (rows) → under the draft (columns)")
        lines.append(" " * width + "".join(c.rjust(width) for c in columns))
        for row, cells in table.items():
            lines.append(row.ljust(width) + "".join(str(v).rjust(width) for v in cells.values()))
        changed = body[who]["changed"]
        lines.append(
            f"changed up {changed['up']}, down {changed['down']}, unchanged {changed['unchanged']}"
        )
    for what in ("marac_criteria", "flags"):
        for side in ("appearing", "disappearing"):
            counts = body[what][side]
            listed = ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"
            lines.append(f"{what.replace('_', ' ')} {side}: {listed}")
    return "\n".join(lines)
