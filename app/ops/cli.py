"""``triage serve``, ``triage db upgrade|check`` and ``triage openapi``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.config import ROOT, get_settings

OPENAPI_PATH = ROOT / "openapi" / "openapi.json"


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=_serve)

    db = sub.add_parser("db", help="database migrations")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply migrations up to head")
    up.set_defaults(func=_upgrade)

    api = sub.add_parser("openapi", help="export the OpenAPI document deterministically")
    api.add_argument("--out", type=Path, default=OPENAPI_PATH)
    api.add_argument("--check", action="store_true", help="fail if the file is stale")
    api.set_defaults(func=_openapi)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

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
    )
    return 0


def _upgrade(_: argparse.Namespace) -> int:
    from app.ops.migrations import upgrade_to_head

    url = get_settings().effective_database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    upgrade_to_head(url)
    print("database migrated to head")
    return 0


def openapi_document() -> str:
    """The OpenAPI document as deterministic text (sorted keys, stable operationIds)."""
    from app.config import Settings
    from app.main import create_app

    app = create_app(Settings(environment="test", database_url="sqlite://"))
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _openapi(args: argparse.Namespace) -> int:
    text = openapi_document()
    if args.check:
        current = args.out.read_text("utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run `triage openapi`", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, "utf-8")
    print(f"wrote {args.out}")
    return 0
