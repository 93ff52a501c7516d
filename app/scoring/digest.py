"""The digest of everything the engine was given, stored with every assessment.

A reproduction recomputes it from the stored inputs, so it also proves the stored inputs
were not altered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from app.canonical import fast_canonical_json
from app.contract.incident import Incident
from app.scoring.history import History
from app.scoring.judgement import Judgement


def _without_unset_additions(incident: dict[str, Any]) -> dict[str, Any]:
    """The incident as digested: fields added to the contract after version 1 of the
    rules are left out while they are null, so that an incident stored before they existed
    digests to the same bytes when it is read again (every stored assessment reproduces).

    Added with rules v2 (docs/rules.md): ``persons[].care_and_support_needs``,
    ``persons[].child.school.phase`` and ``perpetrator_history.under_probation_supervision``.
    """
    for person in incident["persons"]:
        if person.get("care_and_support_needs", 0) is None:
            del person["care_and_support_needs"]
        school = (person.get("child") or {}).get("school")
        if school is not None and school.get("phase", 0) is None:
            del school["phase"]
    history = incident["perpetrator_history"]
    if history.get("under_probation_supervision", 0) is None:
        del history["under_probation_supervision"]
    return incident


def inputs_digest(incident: Incident, history: History, judgements: Sequence[Judgement]) -> str:
    """sha256 of the canonical JSON of everything the engine was given.

    The inputs hold only strings, whole numbers, booleans and nulls, with ASCII keys, and
    for such documents sorted keys, no whitespace and UTF-8 are exactly RFC 8785 (JCS);
    the tests check the two agree. The standard library's encoder is used because the
    pure-Python RFC 8785 encoder costs ~0.3 ms per incident, more than scoring it.
    """
    return hashlib.sha256(canonical_inputs(incident, history, judgements)).hexdigest()


def inputs_document(
    incident: Incident, history: History, judgements: Sequence[Judgement]
) -> dict[str, Any]:
    """What is digested: the incident, the history and the judgements, as JSON values."""
    return {
        "incident": _without_unset_additions(incident.model_dump(mode="json")),
        "history": history.to_dict(),
        "judgements": [judgement.to_dict() for judgement in judgements],
    }


def canonical_inputs(
    incident: Incident, history: History, judgements: Sequence[Judgement]
) -> bytes:
    document = inputs_document(incident, history, judgements)
    fast = fast_canonical_json(document)
    if fast is not None:  # the same bytes, written by orjson (app/canonical.py)
        return fast
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
