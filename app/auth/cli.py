"""``triage keys create|list|revoke|demo``: API keys are only ever made here."""

from __future__ import annotations

import argparse
import os
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.auth.keys import MAX_KEY_DAYS, KeySpecError, create_key, list_keys, revoke_key
from app.auth.models import ApiKey
from app.auth.principal import AGENCIES, ROLES
from app.config import get_settings
from app.db import Database, utcnow

DEMO_LABEL = "demo"
DEMO_KEYS: tuple[dict[str, Any], ...] = (
    {"role": "submitter", "source_system": "force-a-records"},
    {"role": "triage", "areas": ["E09000018"]},
    # The school of the example incident's child (tests/data/incident.example.json).
    {"role": "agency", "agency": "school", "areas": ["E09000018"], "schools": ["100123"]},
    {"role": "agency", "agency": "csc", "areas": ["E09000018"]},
    {"role": "auditor"},
    {"role": "partnership", "areas": ["E09000018"]},
    {"role": "admin"},
)
# The shell variable each demo key is given in ``--env-file`` (the README's walkthrough).
DEMO_VARIABLES = {
    "submitter": "SUBMITTER_KEY",
    "triage": "MASH_KEY",
    "agency/school": "SCHOOL_KEY",
    "agency/csc": "CSC_KEY",
    "auditor": "AUDITOR_KEY",
    "partnership": "PARTNERSHIP_KEY",
    "admin": "ADMIN_KEY",
}
# What each role is for, said beside its key.
DEMO_ROLE_NOTES = {
    "submitter": "submits incidents from its source system",
    "triage": "MASH triage: reads, judges, works flags, records disclosures",
    "agency": "works its agency's flags",
    "auditor": "reads everything and the audit log, changes nothing",
    "partnership": "area statistics only, never case data",
    "admin": "keys, subscriptions, retention and erasure",
}


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="manage API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)

    create = ksub.add_parser("create", help="create a key and print it once")
    create.add_argument("--role", required=True, choices=ROLES, help="what the key may do")
    create.add_argument(
        "--agency", choices=AGENCIES, help="the agency of an agency key (required for that role)"
    )
    create.add_argument(
        "--area",
        action="append",
        default=[],
        dest="areas",
        help="area code (repeatable); '*' for all areas",
    )
    create.add_argument(
        "--school",
        action="append",
        default=[],
        dest="schools",
        metavar="URN",
        help="for agency school (required, repeatable): the URN of a school the key serves; "
        "it sees only flags about that school's pupils",
    )
    create.add_argument("--source-system", help="for submitters: the records system")
    create.add_argument("--label", default="", help="who or what holds the key")
    create.add_argument(
        "--expires-in-days",
        type=_days,
        help="days until the key stops working (1-3650; default: until revoked)",
    )
    create.set_defaults(func=_create)

    lst = ksub.add_parser("list", help="list keys (never the secrets)")
    lst.set_defaults(func=_list)

    revoke = ksub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id", type=uuid.UUID, help="the key's id (from `triage keys list`)")
    revoke.set_defaults(func=_revoke)

    demo = ksub.add_parser("demo", help="development only: replace the demo keys and print them")
    demo.add_argument(
        "--env-file",
        metavar="PATH",
        help="also write the keys as shell variables (SUBMITTER_KEY=...) to this file, "
        "readable by its owner only, for `source PATH`",
    )
    demo.set_defaults(func=_demo)


def _days(text: str) -> int:
    """1-3650: zero or a negative number would otherwise mean "never expires"."""
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a whole number of days") from None
    if not 1 <= days <= MAX_KEY_DAYS:
        raise argparse.ArgumentTypeError(f"between 1 and {MAX_KEY_DAYS} days")
    return days


def _database() -> Database:
    return Database(get_settings().effective_database_url)


def _create(args: argparse.Namespace) -> int:
    db = _database()
    try:
        with db.session() as s:
            issued = create_key(
                s,
                role=args.role,
                agency=args.agency,
                areas=args.areas,
                source_system=args.source_system,
                schools=args.schools,
                label=args.label,
                expires_in_days=args.expires_in_days,
            )
            s.commit()
    except KeySpecError as exc:
        print(f"error: {exc}")
        return 2
    finally:
        db.dispose()
    print(f"key id: {issued.id}\nrole:   {issued.role}\nsecret: {issued.secret}")
    print("The secret is shown once and stored only as a hash. Keep it safe.")
    return 0


def _list(_: argparse.Namespace) -> int:
    db = _database()
    with db.session() as s:
        for k in list_keys(s):
            state = "revoked" if k.revoked_at else "active"
            print(
                f"{k.id}  {k.prefix}…  {k.role:<11} {k.agency or '-':<10} "
                f"{','.join(k.areas) or '-':<12} {','.join(k.schools or ()) or '-':<8} "
                f"{k.source_system or '-':<16} {state}  {k.label}"
            )
    db.dispose()
    return 0


def _revoke(args: argparse.Namespace) -> int:
    db = _database()
    with db.session() as s:
        done = revoke_key(s, args.key_id)
        s.commit()
    db.dispose()
    print("revoked" if done else "no such active key")
    return 0 if done else 1


def demo_name(spec: dict[str, Any]) -> str:
    """``submitter``, ``agency/school``: a demo key's role, and its agency if it has one."""
    return str(spec["role"]) + (f"/{spec['agency']}" if spec.get("agency") else "")


def demo_scope(spec: dict[str, Any]) -> str:
    """Who a demo key is and what it covers: agency, areas, schools, source system."""
    parts = [f"role {spec['role']}"]
    if spec.get("agency"):
        parts.append(f"agency {spec['agency']}")
    areas = spec.get("areas") or []
    parts.append(
        f"area {', '.join(areas)}"
        if areas
        else {"submitter": "any area", "auditor": "all areas"}.get(spec["role"], "no area")
    )
    if spec.get("schools"):
        parts.append(f"school URN {', '.join(spec['schools'])}")
    if spec.get("source_system"):
        parts.append(f"source system {spec['source_system']}")
    return "; ".join(parts)


def _demo(args: argparse.Namespace) -> int:
    settings = get_settings()
    if not settings.is_development:
        print("error: demo keys are only for development")
        return 2
    db = Database(settings.effective_database_url)
    lines: list[str] = []
    variables: list[str] = []
    with db.session() as s:
        now = utcnow()
        for old in s.scalars(
            select(ApiKey).where(ApiKey.label == DEMO_LABEL, ApiKey.revoked_at.is_(None))
        ):
            old.revoked_at = now
        for spec in DEMO_KEYS:
            issued = create_key(s, label=DEMO_LABEL, **spec)
            variable = DEMO_VARIABLES[demo_name(spec)]
            variables.append(f"{variable}={issued.secret}")
            lines.append(f"  {variable}={issued.secret}")
            lines.append(f"      {demo_scope(spec)} ({DEMO_ROLE_NOTES[spec['role']]})")
        s.commit()
    db.dispose()
    if args.env_file:
        path = Path(args.env_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("# Demo API keys (development only; replaced at every start).\n")
            out.write("\n".join(variables) + "\n")
    where = f"; also in {args.env_file}: `source {args.env_file}`" if args.env_file else ""
    print(f"Demo API keys (development only; replaced at every start{where}):")
    print("\n".join(lines))
    return 0
