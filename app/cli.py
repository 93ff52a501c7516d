"""The ``triage`` command line.

Each domain package that has commands exposes ``register(subparsers)`` in its own
``cli`` module; this file only collects them, so packages never edit each other's code,
and adds ``triage openapi``, which builds the whole application (it is the only command
above ``app.main``, and imports it only when run).

**Quick help.** Importing every package's commands costs seconds (SQLAlchemy, uvicorn,
scikit-learn). So :data:`COMMANDS` names each top-level command, the module that
registers it and its one-line help: ``triage --help`` imports nothing but ``argparse``,
and ``triage CMD …`` imports only the module that registers ``CMD``
(``tests/test_cli.py`` holds the table to what the modules register).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"

DESCRIPTION = "Domestic-abuse risk triage: the service, its data and its models."

# Top-level command → (the module whose ``register`` adds it, its one-line help), in help
# order. The help must be the one the module gives (a test checks both).
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("app.ops.cli", "run the API with uvicorn"),
    "db": ("app.ops.cli", "database migrations"),
    "notify": ("app.ops.cli", "deliver notifications and manage the dead letters"),
    "keys": ("app.auth.cli", "manage API keys"),
    "idempotency": ("app.idempotency.cli", "idempotency-key housekeeping"),
    "audit": ("app.audit.cli", "verify, anchor and export the audit log"),
    "subscriptions": ("app.notify.cli", "manage notification subscriptions"),
    "synth": ("app.classifier.cli", "generate synthetic incidents with outcomes (JSONL)"),
    "train": ("app.classifier.cli", "train, calibrate and save a classifier and scorecard"),
    "evaluate": ("app.classifier.cli", "compare a model with the DASH count and checklist levels"),
    "monitor": ("app.classifier.cli", "compare recent incidents with the training data"),
    "report": ("app.reports.cli", "an area's statistics (small numbers suppressed)"),
    "rescore": (
        "app.reports.whatif_cli",
        "what-if: re-score stored incidents under a draft definition (nothing stored)",
    ),
}
OPENAPI_HELP = "export the OpenAPI document deterministically"


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help shows its default (when it has one: not for flags and options
    that are unset by default); descriptions keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return f"{text} (default: %(default)s)"
        return text


def build_parser(argv: Sequence[str] = (), *, everything: bool = False) -> argparse.ArgumentParser:
    """The parser for ``argv``: the module of the command it names is imported (all of
    them with ``everything``); every other command is listed with its help only."""
    parser = argparse.ArgumentParser(
        prog="triage", description=DESCRIPTION, formatter_class=Formatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command = next((a for a in argv if not a.startswith("-")), None)
    wanted = {m for m, _ in COMMANDS.values()} if everything else set()
    if command in COMMANDS:
        wanted.add(COMMANDS[command][0])
    for module in dict.fromkeys(m for m, _ in COMMANDS.values()):
        if module in wanted:
            importlib.import_module(module).register(sub)
    for name, (_module, text) in COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=text, add_help=False)  # imported when it is run
    api = sub.add_parser("openapi", help=OPENAPI_HELP, formatter_class=Formatter)
    api.add_argument("--out", type=Path, default=OPENAPI_PATH, help="where to write it")
    api.add_argument("--check", action="store_true", help="fail if the file is stale")
    api.set_defaults(func=_openapi)
    _defaults_shown(parser)
    return parser


def _defaults_shown(parser: argparse.ArgumentParser) -> None:
    """Give every parser in the tree the formatter that shows defaults."""
    parser.formatter_class = Formatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _defaults_shown(child)


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
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
