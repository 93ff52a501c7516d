"""The ``triage`` command line: quick top-level help, and every option documented.

``triage --help`` must not import the packages (tests time nothing: the import check is
what keeps it quick); each top-level command in ``app.cli.COMMANDS`` must be the one its
module registers, with the same help; every option has help text, and the help shows
its default.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from app.cli import COMMANDS, build_parser


def _walk(parser: argparse.ArgumentParser, path: str = "triage"):  # type: ignore[no-untyped-def]
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _walk(child, f"{path} {name}")


def _modules_loaded_by(*argv: str) -> set[str]:
    """The modules a fresh interpreter has loaded after ``triage ARGV`` (help: exits)."""
    code = (
        "import sys, contextlib, io\n"
        "from app.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main({list(argv)!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(' '.join(sys.modules))\n"
    )
    run = subprocess.run(  # noqa: S603 (this interpreter, our own code)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(run.stdout.split())


def test_top_level_help_imports_no_package() -> None:
    loaded = _modules_loaded_by("--help")
    heavy = ("sqlalchemy", "fastapi", "sklearn", "numpy", "pydantic", "uvicorn")
    assert sorted(m for m in loaded if m.split(".")[0] in heavy) == []
    assert sorted(m for m in loaded if m.startswith("app.")) == ["app.cli"]


def test_the_command_table_matches_what_the_modules_register() -> None:
    full = build_parser(everything=True)
    top = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    registered = {a.dest: a.help for a in top._choices_actions}
    assert {**{n: h for n, (_m, h) in COMMANDS.items()}, "openapi": registered["openapi"]} == (
        registered
    )


def test_every_option_has_help_and_shows_its_default() -> None:
    full = build_parser(everything=True)
    missing = []
    for path, parser in _walk(full):
        assert parser.formatter_class.__name__ == "Formatter", path
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if action.help == argparse.SUPPRESS:
                continue
            if not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
        text = parser.format_help()
        for action in parser._actions:
            shows = action.option_strings and action.default not in (None, False, argparse.SUPPRESS)
            if shows and action.help and action.help != argparse.SUPPRESS:
                assert f"(default: {action.default})" in " ".join(text.split()), (
                    path,
                    action.option_strings,
                )
    assert missing == []


def test_a_command_imports_its_own_module_only() -> None:
    loaded = _modules_loaded_by("keys", "--help")
    assert "app.auth.cli" in loaded
    assert "sklearn" not in loaded
    assert "app.classifier.cli" not in loaded
