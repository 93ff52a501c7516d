"""``triage keys create|list|revoke|demo``: API keys are only ever made here."""

from __future__ import annotations

import argparse
import uuid
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
    {"role": "admin"},
)


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
                f"{k.id}  {k.prefix}…  {k.role:<9} {k.agency or '-':<10} "
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


def _demo(_: argparse.Namespace) -> int:
    settings = get_settings()
    if not settings.is_development:
        print("error: demo keys are only for development")
        return 2
    db = Database(settings.effective_database_url)
    lines = []
    with db.session() as s:
        now = utcnow()
        for old in s.scalars(
            select(ApiKey).where(ApiKey.label == DEMO_LABEL, ApiKey.revoked_at.is_(None))
        ):
            old.revoked_at = now
        for spec in DEMO_KEYS:
            issued = create_key(s, label=DEMO_LABEL, **spec)
            who = spec["role"] + (f"/{spec['agency']}" if "agency" in spec else "")
            scope = ", ".join(
                [
                    *(f"area {a}" for a in spec.get("areas", ())),
                    *(f"school {u}" for u in spec.get("schools", ())),
                ]
            ) or {"auditor": "all areas, read only", "admin": "keys and retention"}.get(
                spec["role"], ""
            )
            if "source_system" in spec:
                scope = f"source system {spec['source_system']}"
            lines.append(f"  {who:<16} {issued.secret}  ({scope})")
        s.commit()
    db.dispose()
    print("Demo API keys (development only; replaced at every start):")
    print("\n".join(lines))
    return 0
