"""``triage subscriptions create|list|delete`` (``triage notify run`` is in app/ops/cli.py:
it runs the overdue sweep of ``flags`` too)."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from app.auth.principal import AGENCIES
from app.config import get_settings
from app.db import Database
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
    create.add_argument("--agency", required=True, choices=AGENCIES)
    create.add_argument("--channel", choices=CHANNELS, default="webhook")
    create.add_argument("--url", help="the webhook (https), for --channel webhook")
    create.add_argument(
        "--email", metavar="ADDRESS", help="the agency's mailbox, for --channel email"
    )
    create.add_argument("--area", help="only this area's flags (default: every area)")
    create.add_argument("--school", dest="school_urn", metavar="URN", help="for schools")
    create.add_argument("--label", default="")
    create.set_defaults(func=_create)
    ssub.add_parser("list", help="active subscriptions (never secrets)").set_defaults(func=_list)
    delete = ssub.add_parser("delete", help="end a subscription")
    delete.add_argument("subscription_id", type=uuid.UUID)
    delete.set_defaults(func=_delete)


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
