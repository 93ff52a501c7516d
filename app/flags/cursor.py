"""Opaque keyset cursors for the flag and queue listings.

A cursor is the sort key of the last row a page returned, plus a short fingerprint of
the query it belongs to, as URL-safe base64 JSON. The next page starts strictly after that
key, so pages never repeat or skip a row that existed when the first page was read, and a
flag or incident that arrives meanwhile appears only if it sorts after the cursor (never
shifting the rows of later pages, as an offset would). Clients treat it as opaque.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from app.errors import BadRequest

CURSOR_VERSION = 1


def query_fingerprint(kind: str, params: Mapping[str, Any]) -> str:
    """A short digest of the listing and its filters (not the limit, nor the cursor)."""
    canonical = json.dumps({"kind": kind, **params}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(fingerprint: str, key: list[Any]) -> str:
    raw = json.dumps({"v": CURSOR_VERSION, "q": fingerprint, "k": key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> list[Any]:
    """The key in ``cursor``; a 400 problem if it is malformed or from another query."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise BadRequest("The cursor is not valid; start again without one.") from None
    if (
        not isinstance(data, dict)
        or data.get("v") != CURSOR_VERSION
        or not isinstance(data.get("k"), list)
    ):
        raise BadRequest("The cursor is not valid; start again without one.")
    if data.get("q") != fingerprint:
        raise BadRequest("The cursor belongs to a query with other filters; start again.")
    key: list[Any] = data["k"]
    return key
