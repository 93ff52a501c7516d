"""The repository stands alone: every citation and every documentation link stays inside it.

A fresh clone is all a contributor has. So no tracked file points at the documents the
project started from outside the repository, a citation of the domain research, the
classifier's or the reliability grounds, the inspection brief, the contract or the rulebook
names its file here (``docs/research.md §5.4``, ``docs/contract.md "Flags"``,
``CONTRIBUTING.md "Shape of the code"``), and every relative link in the README,
CONTRIBUTING.md, CHANGELOG.md and docs/ leads to a file that exists.

The shipped definition files are the exception: their content is hashed into every
assessment that used them (docs/rules.md), so they keep the bare names they were written
with, and docs/rules.md says what those names mean.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SELF = "tests/test_docs.py"  # its examples of wrong citations are tested below

# Definition files that were shipped before the documents moved into docs/. Editing them
# would change their hash and break the reproduction of every assessment that used them. A
# new definition file is checked like any other file.
HASHED_DEFINITIONS = frozenset(
    {
        "app/scoring/definitions/child-risk@1.yaml",
        "app/scoring/definitions/child-risk@2.yaml",
        "app/scoring/definitions/dash-police@1.yaml",
        "app/scoring/definitions/dash-police@2.yaml",
        "app/scoring/definitions/dash-ric@1.yaml",
        "app/scoring/definitions/dash-ric@2.yaml",
        "app/scoring/definitions/dash-ric@local-example.yaml",
        "app/flags/rules/default-flags@1.yaml",
        "app/flags/rules/default-flags@2.yaml",
        "app/flags/rules/example-area-flags@1.yaml",
    }
)

# Paths that lead out of the repository to the documents the project started from. Built
# from parts so that this file does not match itself.
OUTSIDE = re.compile(re.escape("../" + "shared") + "|" + re.escape("/work/" + "shared"))

# A cited document name, not part of a longer name (``ml-research.md`` is not a
# ``research.md``). It is in the repository when ``docs/`` comes right before it.
CITED = re.compile(
    r"(?<![\w.-])(?P<path>(?:[\w.-]+/)*)"
    r"(?P<name>(?:ml-|reliability-)?research|brief|api|style|rules-v2)\.md\b"
    # "reliability-research §4.2" cites the document without its extension.
    r"|(?<![\w./-])(?P<bare>reliability-research)(?=\s*§)"
)
IN_DOCS = frozenset({"research", "ml-research", "reliability-research", "brief"})

# Pages that explain the bare names the hashed definition files use.
EXPLAINS_LEGACY_NAMES = frozenset({"docs/rules.md", "docs/contract.md"})

LINKED_PAGES = ("README.md", "CONTRIBUTING.md", "CHANGELOG.md")
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?(?P<target>[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def tracked_files() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"],  # noqa: S607 - git from PATH, as every developer runs it
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    return [name for name in listed.decode().split("\0") if name]


def text_of(name: str) -> str | None:
    """The file's text, or None for a binary file, a missing one or a symbolic link."""
    path = ROOT / name
    if path.is_symlink() or not path.is_file():
        return None
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def texts() -> dict[str, str]:
    found = {}
    for name in tracked_files():
        if name in HASHED_DEFINITIONS or name == SELF:
            continue
        text = text_of(name)
        if text is not None:
            found[name] = text
    return found


def uncited_at(name: str, text: str) -> list[tuple[int, str]]:
    """Every citation in ``text`` of a document that does not name its place here, with
    its offset."""
    wrong = []
    for match in CITED.finditer(text):
        if match["bare"]:
            wrong.append((match.start(), match[0]))
            continue
        path, cited = match["path"], match["name"]
        if path == "docs/" and cited in IN_DOCS:
            continue
        if path == "" and name.startswith("docs/") and cited in IN_DOCS:
            continue  # a page in docs/ naming its neighbour
        if path in ("", "contract/") and cited == "api" and name in EXPLAINS_LEGACY_NAMES:
            continue
        wrong.append((match.start(), match[0]))
    return wrong


def uncited(name: str, text: str) -> list[str]:
    return [cited for _, cited in uncited_at(name, text)]


def line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def test_no_tracked_file_points_outside_the_repository() -> None:
    offenders = [
        f"{name}:{line_at(text, hit.start())}"
        for name, text in texts().items()
        for hit in OUTSIDE.finditer(text)
    ]
    assert offenders == [], "these files point outside the repository: " + ", ".join(offenders)


def test_every_citation_names_its_file_in_the_repository() -> None:
    offenders = [
        f"{name}:{line_at(text, offset)}: {cited!r}"
        for name, text in texts().items()
        for offset, cited in uncited_at(name, text)
    ]
    assert offenders == [], (
        "cite docs/research.md, docs/ml-research.md, docs/reliability-research.md, "
        "docs/brief.md, docs/contract.md (for api.md), docs/rules.md (for rules-v2.md) or "
        "CONTRIBUTING.md (for style.md):\n" + "\n".join(offenders)
    )


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("app/x.py", "see research.md §5.4", ["research.md"]),
        ("app/x.py", "see docs/research.md §5.4 and docs/ml-research.md section 6", []),
        ("app/x.py", 'api.md "Scoring defaults"', ["api.md"]),
        (
            "app/x.py",
            "contract/api.md, contract/rules-v2.md",
            ["contract/api.md", "contract/rules-v2.md"],
        ),
        ("app/x.py", "(reliability-research §4.2)", ["reliability-research"]),
        ("app/x.py", 'style.md "The scoring engine is pure"', ["style.md"]),
        ("app/x.py", 'CONTRIBUTING.md "The scoring engine is pure"', []),
        ("app/x.py", "docs/api.md is not a page of ours", ["docs/api.md"]),
        ("docs/brief.md", "the facts are in [research.md](research.md)", []),
        ("docs/brief.md", "`api.md` means the contract", ["api.md"]),
        ("docs/rules.md", "`api.md` means the contract", []),
    ],
)
def test_the_citation_rule_is_precise(name: str, text: str, expected: list[str]) -> None:
    assert uncited(name, text) == expected


def markdown_pages() -> list[str]:
    pages = [name for name in LINKED_PAGES if (ROOT / name).is_file()]
    pages += sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))
    return pages


def broken_links(page: str) -> list[str]:
    text = FENCE.sub("", (ROOT / page).read_text(encoding="utf-8"))
    broken = []
    for match in LINK.finditer(text):
        target = match["target"]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a web address, or a heading of the same page
        path = target.split("#", 1)[0].split("?", 1)[0]
        resolved = (ROOT / page).parent / path
        if not resolved.exists() or ROOT not in [resolved.resolve(), *resolved.resolve().parents]:
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", markdown_pages())
def test_every_relative_link_leads_to_a_file_in_the_repository(page: str) -> None:
    assert broken_links(page) == []
