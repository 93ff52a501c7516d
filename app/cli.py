"""The ``triage`` command line.

Each domain package that has commands exposes ``register(subparsers)`` in its own
``cli`` module; this file only collects them, so packages never edit each other's code,
and adds ``triage openapi``, which builds the whole application (it is the only command
above ``app.main``, and imports it only when run, so ``triage --help`` stays quick).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from app.config import ROOT

OPENAPI_PATH = ROOT / "openapi" / "openapi.json"

# Packages whose ``cli`` module adds subcommands, in help order.
COMMAND_MODULES = (
    "app.ops.cli",  # serve, db upgrade
    "app.auth.cli",  # keys create/list/revoke
    "app.idempotency.cli",  # idempotency purge
    "app.audit.cli",  # audit verify/anchor/export
    "app.notify.cli",  # subscriptions create/list/delete, notify run
    "app.classifier.cli",  # synth, train, evaluate, monitor
    "app.reports.whatif_cli",  # rescore
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="triage", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (name + ".").startswith(exc.name + "."):
                raise
            continue  # package not built yet
        module.register(sub)
    api = sub.add_parser("openapi", help="export the OpenAPI document deterministically")
    api.add_argument("--out", type=Path, default=OPENAPI_PATH)
    api.add_argument("--check", action="store_true", help="fail if the file is stale")
    api.set_defaults(func=_openapi)
    return parser


def openapi_document() -> str:
    """The OpenAPI document as deterministic text (sorted keys, stable operationIds)."""
    # The whole application: imported only for this command (see the module docstring).
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
