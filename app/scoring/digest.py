"""The digest of everything the engine was given, stored with every assessment.

A reproduction recomputes it from the stored inputs, so it also proves the stored inputs
were not altered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from app.canonical import fast_canonical_json
from app.contract.incident import Incident
from app.scoring.history import History
from app.scoring.judgement import Judgement


def inputs_digest(incident: Incident, history: History, judgements: Sequence[Judgement]) -> str:
    """sha256 of the canonical JSON of everything the engine was given.

    The inputs hold only strings, whole numbers, booleans and nulls, with ASCII keys, and
    for such documents sorted keys, no whitespace and UTF-8 are exactly RFC 8785 (JCS);
    the tests check the two agree. The standard library's encoder is used because the
    pure-Python RFC 8785 encoder costs ~0.3 ms per incident, more than scoring it.
    """
    return hashlib.sha256(canonical_inputs(incident, history, judgements)).hexdigest()


def canonical_inputs(
    incident: Incident, history: History, judgements: Sequence[Judgement]
) -> bytes:
    document = {
        "incident": incident.model_dump(mode="json"),
        "history": history.to_dict(),
        "judgements": [judgement.to_dict() for judgement in judgements],
    }
    fast = fast_canonical_json(document)
    if fast is not None:  # the same bytes, written by orjson (app/canonical.py)
        return fast
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
