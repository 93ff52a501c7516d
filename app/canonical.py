"""Canonical JSON (RFC 8785) and digests of it.

Used wherever two documents must compare equal regardless of key order and whitespace:
replay detection, definition hashes and audit digests.

Python's own encoder (sorted keys, compact separators, UTF-8) writes exactly the RFC 8785
bytes for documents without floats, without integers beyond IEEE 754's exact range and
without object keys outside the Basic Multilingual Plane (RFC 8785 sorts keys by UTF-16
code units). It is several times faster than the reference implementation, so it is used
for such documents; anything else goes through ``rfc8785``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

_MAX_EXACT_INT = 2**53 - 1


def _needs_reference(obj: Any) -> bool:
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return False
    if isinstance(obj, int):
        return abs(obj) > _MAX_EXACT_INT
    if isinstance(obj, dict):
        return any(
            not isinstance(k, str) or any(ord(c) > 0xFFFF for c in k) or _needs_reference(v)
            for k, v in obj.items()
        )
    if isinstance(obj, list | tuple):
        return any(_needs_reference(v) for v in obj)
    return True  # floats, and anything the reference encoder must judge


def canonical_json(obj: Any) -> bytes:
    if _needs_reference(obj):
        return bytes(rfc8785.dumps(obj))
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj)).hexdigest()
