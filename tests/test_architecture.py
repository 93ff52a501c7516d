"""The import graph follows the layers in docs/architecture.md, and imports sit at the top.

Read from the source with ``ast``, so nothing is imported to check it. Every ``import`` of
an ``app`` module counts, whether at module level or inside a function.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"

# Lowest first. A module may import its own package and anything in a lower layer, never
# a higher one. Plumbing (the first layer) is shared by everything and imports only itself.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer)
    for layer in (
        {
            "config",
            "db",
            "errors",
            "logging",
            "canonical",
            "openapi",
            "requests",
            "responses",
            "yamlfiles",
            "models",
            "progress",
        },
        {"contract"},  # the incident schema, the item vocabulary, the levels
        {"scoring"},  # the pure engine and the versioned checklists
        {"classifier"},
        {"auth"},
        {"audit"},
        {"idempotency"},  # replay protection and the write unit every write runs in
        {"incidents"},
        {"assessments"},
        {"notify"},  # subscriptions, the outbox the flag write paths fill, the dispatcher
        {"flags"},
        {"people"},
        {"sharing"},
        {"admin"},
        {"intake"},  # the write orchestrator and the incident routes
        {"reports"},  # area statistics and what-if re-scoring (aggregates, suppressed)
        {"ops"},
        {"ui"},  # the browser screens, made from the API's own answers
        {"main"},
        {"cli"},
    )
)
LAYER_OF = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}

# Imports inside functions, allowed only where a command must start quickly or an optional
# dependency may be missing (and then only of what is named here).
LAZY_IMPORTS_ALLOWED = {
    "cli.py": "`triage openapi` imports the whole application only when it runs",
    "classifier/cli.py": "training code (scikit-learn) only for the commands that use it",
    "classifier/card.py": "matplotlib is an optional dependency (the train extra)",
    "classifier/train.py": "model cards need matplotlib (optional)",
}


@dataclass(frozen=True)
class Import:
    module: Path
    target: str  # the app-level name imported: a package or a plumbing module
    line: int
    in_function: bool


def _unit(path: Path) -> str:
    """The package (or top-level module) a file belongs to."""
    parts = path.relative_to(APP).with_suffix("").parts
    return parts[0]


def _imports() -> list[Import]:
    found = []
    for path in sorted(APP.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        functions = [
            n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        inner = {id(sub) for f in functions for sub in ast.walk(f)}
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name == "app" or name.startswith("app."):
                    target = name.split(".")[1] if "." in name else "app"
                    found.append(Import(path, target, node.lineno, id(node) in inner))
    return found


def test_every_app_module_is_in_a_layer() -> None:
    units = {_unit(p) for p in APP.rglob("*.py") if p.name != "__init__.py" or p.parent != APP}
    assert units - set(LAYER_OF) == set()


def test_no_package_imports_one_above_it() -> None:
    upward = [
        f"{i.module.relative_to(APP)}:{i.line} imports {i.target}"
        for i in _imports()
        if i.target in LAYER_OF and LAYER_OF[i.target] > LAYER_OF[_unit(i.module)]
    ]
    assert upward == []


def test_plumbing_imports_only_plumbing() -> None:
    plumbing = LAYERS[0]
    wrong = [
        f"{i.module.relative_to(APP)}:{i.line} imports {i.target}"
        for i in _imports()
        if _unit(i.module) in plumbing and i.target not in plumbing
    ]
    assert wrong == []


def test_imports_are_at_module_top_except_where_a_command_must_start_quickly() -> None:
    inside = {
        str(i.module.relative_to(APP))
        for i in _imports()
        if i.in_function and str(i.module.relative_to(APP)) not in LAZY_IMPORTS_ALLOWED
    }
    assert inside == set()


def test_the_pure_engines_never_import_storage_or_http() -> None:
    pure = {"contract", "scoring"}
    storage_or_http = {"db", "incidents", "assessments", "people", "intake", "auth", "audit"}
    wrong = [
        f"{i.module.relative_to(APP)} imports {i.target}"
        for i in _imports()
        if _unit(i.module) in pure and i.target in storage_or_http
    ]
    assert wrong == []
    # The flag engine and the classifier's features read the contract, not the incidents.
    for path in ("flags/engine.py", "flags/conditions.py", "classifier/features.py"):
        targets = {i.target for i in _imports() if i.module == APP / path}
        assert "incidents" not in targets, path
