"""Canonical JSON (RFC 8785) and digests of it.

Used wherever two documents must compare equal regardless of key order and whitespace:
replay detection, definition hashes and audit digests.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785


def canonical_json(obj: Any) -> bytes:
    return bytes(rfc8785.dumps(obj))


def sha256_hex(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj)).hexdigest()
