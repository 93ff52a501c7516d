"""Opaque keyset cursors for the flag and queue listings and the incident search.

A cursor is the sort key of the last row a page returned, plus a short fingerprint of
the query it belongs to, as URL-safe base64 JSON. The next page starts strictly after that
key, so pages never repeat or skip a row that existed when the first page was read, and a
flag or incident that arrives meanwhile appears only if it sorts after the cursor (never
shifting the rows of later pages, as an offset would). Clients treat it as opaque.

The fingerprint is not a secret, so a client can forge a cursor; what it decodes to is
therefore validated in full (``decode_key``): a small integer, an aware time within the
bounds every other time is held to, and a UUID. A forged cursor can do no more than start
a page of the same query (within the caller's scope) at another place.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from app.contract.bounds import EARLIEST_YEAR, LATEST_YEAR
from app.errors import BadRequest

CURSOR_VERSION = 1
# The sort keys' leading integers (a flag's priority, the queue's rank) are small.
MAX_RANK = 1_000
_INVALID = "The cursor is not valid; start again without one."


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
        raise BadRequest(_INVALID) from None
    if (
        not isinstance(data, dict)
        or data.get("v") != CURSOR_VERSION
        or not isinstance(data.get("k"), list)
    ):
        raise BadRequest(_INVALID)
    if data.get("q") != fingerprint:
        raise BadRequest("The cursor belongs to a query with other filters; start again.")
    key: list[Any] = data["k"]
    return key


def decode_key(cursor: str, fingerprint: str) -> tuple[int, dt.datetime, uuid.UUID]:
    """A cursor whose key is ``[rank, aware ISO time, UUID]`` (the flag list, the queue)."""
    key = decode_cursor(cursor, fingerprint)
    if len(key) != 3:
        raise BadRequest(_INVALID)
    rank, when, row_id = key
    if type(rank) is not int or not 0 <= rank <= MAX_RANK:
        raise BadRequest(_INVALID)
    at, parsed_id = _time_and_id(when, row_id)
    return rank, at, parsed_id


def decode_time_key(cursor: str, fingerprint: str) -> tuple[dt.datetime, uuid.UUID]:
    """A cursor whose key is ``[aware ISO time, UUID]`` (newest-first listings)."""
    key = decode_cursor(cursor, fingerprint)
    if len(key) != 2:
        raise BadRequest(_INVALID)
    return _time_and_id(key[0], key[1])


def _time_and_id(when: Any, row_id: Any) -> tuple[dt.datetime, uuid.UUID]:
    if not isinstance(when, str) or not isinstance(row_id, str) or len(when) > 40:
        raise BadRequest(_INVALID)
    try:
        at = dt.datetime.fromisoformat(when)
        parsed_id = uuid.UUID(row_id)
    except ValueError:
        raise BadRequest(_INVALID) from None
    # The year first: comparing or converting a time at the edge of the range overflows.
    if at.tzinfo is None or not EARLIEST_YEAR <= at.year <= LATEST_YEAR:
        raise BadRequest(_INVALID)
    return at, parsed_id
