"""``triage serve``, ``triage db upgrade`` and ``triage notify run`` (the dispatcher)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import uvicorn

from app.config import get_settings
from app.db import Database
from app.flags.overdue import sweep
from app.logging import configure_logging
from app.notify.cli import register_dead_letters
from app.notify.dispatcher import run
from app.notify.secrets import SecretKeyMissing, cipher
from app.ops.migrations import upgrade_to_head


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="the port to listen on")
    serve.set_defaults(func=_serve)

    db = sub.add_parser("db", help="database migrations")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply migrations up to head")
    up.set_defaults(func=_upgrade)

    notify = sub.add_parser("notify", help="deliver notifications and manage the dead letters")
    nsub = notify.add_subparsers(dest="notify_command", required=True)
    runner = nsub.add_parser(
        "run", help="the dispatcher: write overdue notices, deliver due notifications"
    )
    runner.add_argument("--once", action="store_true", help="one round, then exit")
    runner.set_defaults(func=_notify_run)
    register_dead_letters(nsub)


def _serve(args: argparse.Namespace) -> int:
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        # SIGTERM: stop accepting, finish in-flight requests (at most 20 s), then exit.
        timeout_graceful_shutdown=20,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        # No `server: uvicorn`: the header names the software for an attacker's scanner.
        server_header=False,
    )
    return 0


def _upgrade(_: argparse.Namespace) -> int:
    url = get_settings().effective_database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    upgrade_to_head(url)
    print("database migrated to head")
    return 0


def _notify_run(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        cipher(settings)  # production without the key: refuse at once
    except SecretKeyMissing as exc:
        print(f"error: {exc}")
        return 2
    # As the service logs: JSON outside development, at TRIAGE_LOG_LEVEL.
    configure_logging(json_logs=settings.json_logs, level=settings.log_level)
    db = Database(settings.effective_database_url)
    try:
        result = run(db, settings, once=args.once, sweep=sweep)
    except KeyboardInterrupt:
        return 0
    finally:
        db.dispose()
    print(f"delivered {result.delivered}, retried {result.retried}, failed {result.failed}")
    return 0
