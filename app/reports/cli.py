"""``triage report``: an area's statistics (docs/reports.md) on the server's command line.

The same figures as ``GET /v1/reports/areas/{area}``, small numbers suppressed, as JSON or
CSV on standard output; the read is an audit ``consult`` by the operating-system user.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from app.audit.chain import AuditEntry, append, digest_of
from app.audit.cli import os_user
from app.config import get_settings
from app.db import Database, utcnow
from app.reports.area import MAX_SPAN_DAYS, area_report, report_csv


def register(sub: Any) -> None:
    report = sub.add_parser("report", help="an area's statistics (small numbers suppressed)")
    report.add_argument("--area", required=True, help="area code")
    report.add_argument("--from", dest="start", required=True, type=_date, help="YYYY-MM-DD")
    report.add_argument(
        "--to", dest="end", required=True, type=_date, help="YYYY-MM-DD (exclusive)"
    )
    report.add_argument(
        "--format", choices=("json", "csv"), default="json", help="JSON, or CSV in long format"
    )
    report.set_defaults(func=_report)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a date is YYYY-MM-DD") from None


def _report(args: argparse.Namespace) -> int:
    if not 0 < (args.end - args.start).days <= MAX_SPAN_DAYS:
        print("--to must be after --from, at most five years", file=sys.stderr)
        return 2
    db = Database(get_settings().effective_database_url)
    try:
        with db.unit() as s:
            report = area_report(s, args.area, args.start, args.end, utcnow())
            body = report.json()
            append(
                s,
                AuditEntry(
                    principal_id=f"cli:{os_user()}",
                    role="auditor",
                    agency=None,
                    operation="consult",
                    record_type="report",
                    record_ids=[f"area:{args.area}"],
                    digest=digest_of(body),
                    detail={
                        "area": args.area,
                        "from": args.start.isoformat(),
                        "to": args.end.isoformat(),
                        "format": args.format,
                    },
                ),
            )
    finally:
        db.dispose()
    if args.format == "csv":
        sys.stdout.write(report_csv(report))
    else:
        print(json.dumps(body, indent=2))
    return 0
