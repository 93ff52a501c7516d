"""``triage serve`` and ``triage db upgrade``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import uvicorn

from app.config import get_settings
from app.ops.migrations import upgrade_to_head


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=_serve)

    db = sub.add_parser("db", help="database migrations")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply migrations up to head")
    up.set_defaults(func=_upgrade)


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
