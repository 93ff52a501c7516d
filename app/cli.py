"""The ``triage`` command line.

Each domain package that has commands exposes ``register(subparsers)`` in its own
``cli`` module; this file only collects them, so packages never edit each other's code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Packages whose ``cli`` module adds subcommands, in help order.
COMMAND_MODULES = (
    "app.ops.cli",  # serve, db upgrade, openapi export
    "app.auth.cli",  # keys create/list/revoke
    "app.idempotency.cli",  # idempotency purge
    "app.audit.cli",  # audit verify/anchor/export
    "app.classifier.cli",  # synth, train, evaluate, monitor
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
