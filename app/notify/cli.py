"""``triage subscriptions create|list|delete`` and the dead letters, ``triage notify failed``
and ``triage notify retry`` (``triage notify run`` is in app/ops/cli.py: it runs the overdue
sweep of ``flags`` too)."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from app.audit.chain import AuditEntry, append, digest_of
from app.audit.cli import os_user
from app.auth.principal import AGENCIES
from app.config import get_settings
from app.db import Database, utcnow
from app.notify import repository
from app.notify.models import CHANNELS
from app.notify.secrets import SecretKeyMissing
from app.notify.service import (
    EmailNotConfigured,
    SubscriptionSpecError,
    create_subscription,
    delete_subscription,
)


def register(sub: Any) -> None:
    subs = sub.add_parser("subscriptions", help="manage notification subscriptions")
    ssub = subs.add_subparsers(dest="subscriptions_command", required=True)
    create = ssub.add_parser("create", help="subscribe an agency; prints a webhook's secret once")
    create.add_argument(
        "--agency", required=True, choices=AGENCIES, help="the agency whose flags it hears of"
    )
    create.add_argument("--channel", choices=CHANNELS, default="webhook", help="how it is told")
    create.add_argument("--url", help="the webhook (https), for --channel webhook")
    create.add_argument(
        "--email", metavar="ADDRESS", help="the agency's mailbox, for --channel email"
    )
    create.add_argument("--area", help="only this area's flags (default: every area)")
    create.add_argument("--school", dest="school_urn", metavar="URN", help="for schools")
    create.add_argument("--label", default="", help="a name for people (not sent anywhere)")
    create.set_defaults(func=_create)
    ssub.add_parser("list", help="active subscriptions (never secrets)").set_defaults(func=_list)
    delete = ssub.add_parser("delete", help="end a subscription")
    delete.add_argument(
        "subscription_id", type=uuid.UUID, help="its id (from `triage subscriptions list`)"
    )
    delete.set_defaults(func=_delete)


def register_dead_letters(nsub: Any) -> None:
    """``notify failed`` and ``notify retry``, under the ``notify`` command of app/ops/cli.py."""
    failed = nsub.add_parser("failed", help="list the dead letters (notifications that failed)")
    failed.add_argument("--limit", type=int, default=100, help="at most this many, newest first")
    failed.set_defaults(func=_failed)
    retry = nsub.add_parser("retry", help="send failed notifications again (a fresh budget)")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("notification_id", nargs="?", type=uuid.UUID, help="one notification")
    which.add_argument("--all", action="store_true", help="every failed notification")
    which.add_argument("--subscription", type=uuid.UUID, help="one subscription's failed ones")
    retry.set_defaults(func=_retry)


def _failed(args: argparse.Namespace) -> int:
    db = _database()
    with db.unit(read_only=True) as s:
        rows, total = repository.list_notifications(
            s, status="failed", agency=None, limit=args.limit
        )
        for n, sub in rows:
            print(
                f"{n.id}  {sub.agency:<10} {n.kind:<14} flag {n.flag_id}  "
                f"{n.attempts} attempts, last {n.last_error_kind or '-'}"
            )
    db.dispose()
    print(f"{total} failed")
    return 0


def _retry(args: argparse.Namespace) -> int:
    db = _database()
    with db.unit() as s:
        ids = repository.requeue_failed(
            s,
            utcnow(),
            notification_id=args.notification_id,
            subscription_id=args.subscription,
        )
        if ids:
            append(
                s,
                AuditEntry(
                    principal_id=f"cli:{os_user()}",
                    role="admin",
                    agency=None,
                    operation="alter",
                    record_type="notification",
                    record_ids=[str(i) for i in ids],
                    recipients=[],
                    digest=digest_of(",".join(str(i) for i in ids)),
                    detail={"requeued": len(ids)},
                ),
            )
    db.dispose()
    print(f"requeued {len(ids)}")
    return 0 if ids or args.all or args.subscription else 1


def _database() -> Database:
    return Database(get_settings().effective_database_url)


def _create(args: argparse.Namespace) -> int:
    db = _database()
    try:
        with db.unit() as s:
            created = create_subscription(
                s,
                get_settings(),
                agency=args.agency,
                channel=args.channel,
                url=args.url,
                email=args.email,
                area=args.area,
                school_urn=args.school_urn,
                label=args.label,
                created_by="cli",
            )
    except (SubscriptionSpecError, SecretKeyMissing, EmailNotConfigured) as exc:
        print(f"error: {exc}")
        return 2
    finally:
        db.dispose()
    print(f"subscription id: {created.subscription.id}")
    if created.secret is not None:
        print(f"secret: {created.secret}")
        print("The secret is shown once. Verify each webhook with it (Standard Webhooks).")
    return 0


def _list(_: argparse.Namespace) -> int:
    db = _database()
    with db.unit(read_only=True) as s:
        for x in repository.list_subscriptions(s):
            print(
                f"{x.id}  {x.agency:<10} {x.area or '*':<12} {x.school_urn or '-':<8} "
                f"{x.channel:<7}  {x.url or x.email}  {x.label}"
            )
    db.dispose()
    return 0


def _delete(args: argparse.Namespace) -> int:
    db = _database()
    with db.unit() as s:
        done = delete_subscription(s, args.subscription_id)
    db.dispose()
    print("deleted" if done else "no such active subscription")
    return 0 if done else 1
