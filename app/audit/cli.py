"""``triage audit verify | anchor | export``: the statutory audit log from the command line.

``anchor`` prints the verified head as ``SEQ:HASH``; keep it somewhere the database's
administrators cannot rewrite (a ticket, a signed e-mail, WORM storage) and pass it to
``verify --anchor`` later: that is what detects a truncated or wholesale rewritten chain.
``export`` writes JSON Lines for an Information Commissioner request (s.62(5)); reading the
log that way is itself logged, in the same transaction as the read.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import os
import sys
from datetime import datetime
from pathlib import Path

import rfc8785

from app.audit.chain import (
    AuditEntry,
    VerifyResult,
    append,
    format_timestamp,
    head,
    seal_all,
    verify,
)
from app.audit.queries import EventFilter, iter_event_json, read_snapshot
from app.config import get_settings
from app.db import Database, utcnow
from app.progress import Progress, track

_HEX = frozenset("0123456789abcdef")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = subparsers.add_parser(
        "audit",
        help="verify, anchor and export the audit log",
        description="The statutory audit log (DPA 2018 s.62): verify the hash chain, print an "
        "anchor to keep outside the database, export events for the Information Commissioner.",
    )
    commands = audit.add_subparsers(dest="audit_command", required=True)

    verify_parser = commands.add_parser(
        "verify", help="walk the hash chain; exit 1 and name the first broken link if any"
    )
    verify_parser.add_argument(
        "--anchor",
        type=parse_anchor,
        metavar="SEQ:HASH",
        help="a head printed earlier by `triage audit anchor` and kept outside the database",
    )
    verify_parser.add_argument("--batch-size", type=int, default=5000, help=argparse.SUPPRESS)
    verify_parser.set_defaults(func=verify_command)

    anchor_parser = commands.add_parser(
        "anchor", help="verify the chain and print its head as SEQ:HASH, to keep elsewhere"
    )
    anchor_parser.set_defaults(func=anchor_command)

    export_parser = commands.add_parser(
        "export", help="write events as JSON Lines (for an Information Commissioner request)"
    )
    export_parser.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help="file to write"
    )
    export_parser.add_argument(
        "--from",
        dest="occurred_from",
        type=parse_time,
        metavar="TIME",
        help="inclusive, RFC 3339 with offset",
    )
    export_parser.add_argument(
        "--to",
        dest="occurred_to",
        type=parse_time,
        metavar="TIME",
        help="exclusive, RFC 3339 with offset",
    )
    export_parser.add_argument("--record", metavar="ID", help="only events naming this record")
    export_parser.add_argument("--person", metavar="ID", help="only events naming this person")
    export_parser.set_defaults(func=export_command)


def parse_anchor(text: str) -> tuple[int, str]:
    seq_text, _, hash_text = text.strip().partition(":")
    if not (seq_text.isdigit() and len(hash_text) == 64 and set(hash_text) <= _HEX):
        raise argparse.ArgumentTypeError("expected SEQ:HASH, e.g. 1042:3fa9... (64 hex digits)")
    return int(seq_text), hash_text


def parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an RFC 3339 time") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("the time needs an offset, e.g. Z or +01:00")
    return value


def _database() -> Database:
    # Settings are read when a command runs, after the environment is set.
    return Database(get_settings().effective_database_url)


def _describe_failure(result: VerifyResult) -> str:
    return (
        f"audit chain BROKEN at event {result.first_broken_seq}: {result.reason} "
        f"({result.events_checked} events verified before it; "
        f"head {result.head_seq}:{result.head_hash})\n"
    )


def _seal(db: Database) -> None:
    """Chain every pending read event first, so that the walk covers everything logged."""
    with db.unit() as session:
        seal_all(session)


def verify_command(args: argparse.Namespace) -> int:
    db = _database()
    try:
        _seal(db)
        with (
            read_snapshot(db.engine) as conn,
            Progress("verifying", total=head(conn)[0], unit="events") as progress,
        ):
            result = verify(
                conn, batch_size=args.batch_size, anchor=args.anchor, on_batch=progress.update
            )
    finally:
        db.dispose()
    if not result.ok:
        sys.stdout.write(_describe_failure(result))
        return 1
    checked = " and matches the anchor" if args.anchor else ""
    sys.stdout.write(
        f"audit chain OK: {result.events_checked} events verified{checked}; "
        f"head {result.head_seq}:{result.head_hash}\n"
    )
    return 0


def anchor_command(_args: argparse.Namespace) -> int:
    db = _database()
    try:
        _seal(db)
        with read_snapshot(db.engine) as conn:
            result = verify(conn)
            at = utcnow()
    finally:
        db.dispose()
    if not result.ok:
        sys.stderr.write("refusing to anchor a broken chain\n" + _describe_failure(result))
        return 1
    sys.stdout.write(f"{result.head_seq}:{result.head_hash} {format_timestamp(at)}\n")
    return 0


def os_user() -> str:
    """Who runs the command, for the audit trail of a CLI action."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return f"uid-{os.getuid()}"


def export_command(args: argparse.Namespace) -> int:
    where = EventFilter(
        record=args.record,
        person=args.person,
        occurred_from=args.occurred_from,
        occurred_to=args.occurred_to,
    )
    out: Path = args.out
    partial = out.with_name(out.name + ".partial")
    db = _database()
    _seal(db)
    session = db.session()
    try:
        up_to_seq, _ = head(session)
        digest = hashlib.sha256()
        count = 0
        with partial.open("wb") as fh:
            events = iter_event_json(session, where, up_to_seq=up_to_seq)
            for event in track(events, "exporting", unit="events"):
                line = rfc8785.dumps(event) + b"\n"
                fh.write(line)
                digest.update(line)
                count += 1
        logged = append(
            session,
            AuditEntry(
                principal_id=f"cli:{os_user()}",
                role="auditor",
                agency=None,
                operation="consult",
                record_type="audit",
                record_ids=[args.record] if args.record else [],
                person_ids=[args.person] if args.person else [],
                purpose="audit log export (triage audit export)",
                digest=digest.hexdigest(),
                detail={
                    "events": count,
                    "up_to_seq": up_to_seq,
                    "from": format_timestamp(args.occurred_from) if args.occurred_from else None,
                    "to": format_timestamp(args.occurred_to) if args.occurred_to else None,
                },
            ),
        )
        session.commit()
    except BaseException:
        session.rollback()
        partial.unlink(missing_ok=True)
        raise
    finally:
        session.close()
        db.dispose()
    partial.replace(out)
    sys.stdout.write(
        f"exported {count} events (up to event {up_to_seq}) to {out}; "
        f"this export is logged as event {logged.seq}\n"
    )
    return 0
