"""The OpenAPI document says what the service enforces, so a generated client gets it right.

Strings, dates and parameters: every string may hold no control character (the body
parser and the NUL check refuse them), every date and time lies in the years 1900 to
2199 (app/contract/bounds.py), and no parameter is ``null``: each says so in a pattern.

FastAPI documents a header declared ``str | None = None`` as optional, though some are
enforced by our own code with our own problem (``X-Purpose`` on reads of personal data:
400 ``purpose-required``; ``If-Match`` on a flag change: 428), because FastAPI's own
answer to a missing parameter would be a generic 422. Such a parameter carries
``json_schema_extra=enforced(pattern)``; ``document_enforced`` then marks it required and
drops the ``null`` alternative from its schema. The pattern is documented there too, and
checked by the route (so that a malformed value gets the route's 400, not FastAPI's 422).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

_MARK = "x-enforced-required"
# What app/requests.py refuses in any string of a body, and the NUL check refuses in a URL.
NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"
# A required text (minLength 1) must hold a character that is neither a control
# character nor a space as Python's str.strip() sees one (app/contract/bounds.NotBlank and
# the stripped texts): the one "non-blank" class, between two runs of allowed characters.
_ALLOWED = "[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*"
_SOLID = (
    "[^\\u0000-\\u0020\\u007f\\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000]"
)
NOT_BLANK = f"^{_ALLOWED}{_SOLID}{_ALLOWED}$"
# What app/contract/bounds.py holds every date and time to: the years 1900 to 2199.
YEARS_1900_TO_2199 = "^(19|2[01])[0-9]{2}-"
LOCATIONS = frozenset({"body", "query", "header", "path", "cookie"})
_KNOWN_KEYS: frozenset[str] | None = None


def enforced(pattern: str | None = None) -> dict[str, Any]:
    """``json_schema_extra`` for a parameter the route requires (and its pattern)."""
    extra: dict[str, Any] = {_MARK: True}
    if pattern is not None:
        extra["pattern"] = pattern
    return extra


def _strings(node: Any) -> None:
    """Document the rules every string and every date is held to, wherever the schema has
    not said more already."""
    if isinstance(node, dict):
        if node.get("type") == "string" and not {"pattern", "enum", "const"} & node.keys():
            if node.get("format") in ("date", "date-time"):
                node["pattern"] = YEARS_1900_TO_2199
            elif "format" not in node:
                blank_refused = node.get("minLength", 0) >= 1
                node["pattern"] = NOT_BLANK if blank_refused else NO_CONTROL_CHARACTERS
        for value in node.values():
            _strings(value)
    elif isinstance(node, list):
        for value in node:
            _strings(value)


def _document(doc: dict[str, Any]) -> dict[str, Any]:
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if schema.pop(_MARK, False):
                    parameter["required"] = True
                # A parameter is sent or not: `null` is no value a URL or header can hold.
                if "anyOf" in schema:
                    options = [s for s in schema.pop("anyOf") if s.get("type") != "null"]
                    if len(options) == 1:
                        schema.update(options[0])
                    else:
                        schema["anyOf"] = options
    _strings(doc.get("paths", {}))
    _strings(doc.get("components", {}))
    return doc


def document_enforced(app: FastAPI) -> None:
    """Wrap ``app.openapi`` so that the document marks enforced parameters required."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def known_keys(app: Any) -> frozenset[str]:
    """Every name the API itself defines: property and parameter names in the OpenAPI
    document, plus ``app.state.extra_known_keys`` (the checklist item ids). An error may
    quote a key of the client's only if it is one of these; any other key could be a
    name or an identifier. Built once per process, at the first error: every application a
    process builds (one in production, one per test) has the same routes and models, and
    building the document takes a quarter of a second."""
    global _KNOWN_KEYS  # a process-wide cache of a constant
    if _KNOWN_KEYS is not None:
        return _KNOWN_KEYS
    state = app.state
    names: set[str] = set(LOCATIONS) | set(getattr(state, "extra_known_keys", ()))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                names.update(properties)
            if isinstance(node.get("in"), str) and isinstance(node.get("name"), str):
                names.add(node["name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(app.openapi())
    _KNOWN_KEYS = frozenset(names)
    return _KNOWN_KEYS
