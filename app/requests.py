"""Request bodies parsed strictly: UTF-8 JSON, every key once, no hidden characters.

Python's ``json`` is lenient where a client's mistake or an attacker's trick should be
refused, so every route reads JSON through ``StrictJsonRoute``:

- the body must be UTF-8 (RFC 8259 §8.1) with no byte-order mark: a UTF-16 or UTF-32
  body, or invalid UTF-8, is a 400;
- ``NaN``, ``Infinity`` and numbers beyond a float's range are not JSON: 400;
- a key repeated in one object is a 422 (Python keeps the last, so a second ``area`` or
  ``source.system`` would silently override the first);
- a string holding NUL or another control character (other than tab, line feed and
  carriage return), or half of a surrogate pair, is a 422 naming where it is;
- nesting too deep for the parser is a 400.

No message quotes the body: a location holds only names the API defines
(``errors.safe_key``).
The checks cost one literal search of the text; the walk that finds where a bad character
is runs only when the search hits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from app.errors import BadRequest, BodyRejected, Unprocessable, safe_key
from app.openapi import known_keys

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
NOT_UTF8 = "The body must be JSON encoded as UTF-8 (RFC 8259), without a byte-order mark."

# An escape that may stand for a refused character: \u0000-\u001f, \u007f, a surrogate
# (\ud800-\udfff), \b or \f. A hit (an escaped backslash before "b" is one too) only
# starts the exact walk below.
_SUSPECT_ESCAPE = re.compile(r"\\(?:u00[01]|u007[fF]|u[dD][89a-fA-F]|[bf])")
_REFUSED_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__("duplicate key")
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _constant(name: str) -> float:
    raise BodyRejected(BadRequest(f"{name} is not a JSON number (RFC 8259 §6)."))


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BodyRejected(BadRequest("A number in the body is beyond the range of a double."))
    return value


def _refused_at(value: Any, loc: list[str | int], known: frozenset[str]) -> list[str | int] | None:
    """The location of the first string (or key) holding a refused character."""
    if isinstance(value, str):
        return loc if _REFUSED_CHARACTER.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _REFUSED_CHARACTER.search(key):
                return [*loc, safe_key(key, known)]
            found = _refused_at(item, [*loc, safe_key(key, known)], known)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _refused_at(item, [*loc, i], known)
            if found is not None:
                return found
    return None


def parse_json(body: bytes, known: Callable[[], frozenset[str]] = frozenset) -> Any:
    """The JSON value of ``body``, or ``BodyRejected`` with a problem that quotes nothing.

    Syntax errors raise ``json.JSONDecodeError`` (FastAPI answers 422 with its position).
    ``known`` gives the names an error may quote; it is called only when there is one.
    """
    if body.startswith(_BOMS) or b"\x00" in body:
        # UTF-16 and UTF-32 encode JSON's ASCII structure with zero bytes.
        raise BodyRejected(BadRequest(NOT_UTF8))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyRejected(BadRequest(NOT_UTF8)) from None
    try:
        value = json.loads(
            text, object_pairs_hook=_object, parse_constant=_constant, parse_float=_float
        )
    except _DuplicateKey as exc:
        raise BodyRejected(
            Unprocessable(
                "A key appears twice in one JSON object; send each key once.",
                errors=[{"loc": ["body", safe_key(exc.key, known())], "msg": "duplicate key"}],
            )
        ) from None
    except RecursionError:
        raise BodyRejected(BadRequest("The JSON body is nested too deeply.")) from None
    except json.JSONDecodeError:
        raise
    except ValueError:
        # An integer with more digits than Python converts (sys.get_int_max_str_digits).
        raise BodyRejected(BadRequest("A number in the body is too long.")) from None
    if _SUSPECT_ESCAPE.search(text):
        loc = _refused_at(value, ["body"], known())
        if loc is not None:
            raise BodyRejected(
                Unprocessable(
                    "A string holds a control character or an unpaired surrogate.",
                    errors=[{"loc": loc, "msg": "refused character"}],
                )
            )
    return value


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body(), lambda: known_keys(self.app))
        return self._json


class StrictJsonRoute(APIRoute):
    """An ``APIRoute`` whose JSON bodies go through ``parse_json``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler
