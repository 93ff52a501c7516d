"""The facts an area report counts, taken from an assessment when it is written.

An assessment's ``inputs`` and ``result`` are large JSON documents (some 20 kB, stored
compressed out of line on PostgreSQL); reading them for every incident of an area-year was
most of a report's time (bench/report_bench.py). So the few facts the report counts
(docs/reports.md "The tables") are stored in columns of the assessment as it is written,
and the report reads only those. The migration that added the columns
(``migrations/versions/20261201_c4d7e2a9f613_assessment_report_facts.py``) derived the
same facts in SQL for the assessments stored before it; a test holds the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.contract.levels import CHILD_LEVELS

# A relationship's separation that makes an incident separation-related (docs/reports.md).
SEPARATION_STATUSES = ("recent", "planned", "perceived")
CHILD_FACTS = ("present", "witnessed", "injured", "intervened")


def _yes(value: object) -> bool:
    return value is True or value == "yes"


def _no(value: object) -> bool:
    return value is False or value == "no"


def _get(value: object, *path: str) -> object:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def report_facts(
    inputs: Mapping[str, Any] | None, result: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The report's columns of an assessment (``marac_repeat`` … ``separation_related``);
    all None when its content is gone (erased)."""
    if result is None or inputs is None:
        return dict.fromkeys(REPORT_FACT_COLUMNS)
    levels = [_get(c, "level") for c in _list(result.get("children"))]
    facts: dict[str, Any] = {
        "marac_repeat": "repeat_marac" in _list(_get(result, "victim", "marac", "criteria")),
        "serial_perpetrator": _get(result, "perpetrator", "serial") is True,
        **{f"children_{level}": levels.count(level) for level in CHILD_LEVELS},
    }
    children = [
        child
        for person in _list(_get(inputs, "incident", "persons"))
        if _get(person, "role") == "child" and isinstance(child := _get(person, "child"), Mapping)
    ]
    for fact in CHILD_FACTS:
        facts[f"children_{fact}"] = sum(1 for c in children if _yes(c.get(fact)))
    facts["children_not_spoken_to"] = sum(
        1
        for c in children
        if (_yes(c.get("present")) or _yes(c.get("witnessed")))
        and _no(c.get("spoken_to_by_officer"))
    )
    incident = _get(inputs, "incident")
    facts["separation_related"] = _get(
        incident, "relationship", "separation", "status"
    ) in SEPARATION_STATUSES or _yes(
        _get(incident, "victim_checklist", "answers", "separation_past_year")
    )
    return facts


def result_facts(result: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a what-if checks before it counts a stored result as the current one
    (``app.reports.whatif.stored_keys``), in columns so that it never reads the JSON to
    decide: the engine version that made it, whether the classifier raised the victim's
    level (a trigger of stage ``classifier``) and the victim's checklist score (a draft
    that moves only score thresholds can change only some scores). All None when its
    content is gone."""
    if result is None:
        return dict.fromkeys(RESULT_FACT_COLUMNS)
    triggers = _list(_get(result, "victim", "triggers"))
    score = _get(result, "victim", "score")
    return {
        "engine_version": _get(result, "engine_version"),
        "classifier_raised": any(_get(t, "stage") == "classifier" for t in triggers),
        "victim_score": score if isinstance(score, int) and not isinstance(score, bool) else None,
    }


RESULT_FACT_COLUMNS = ("engine_version", "classifier_raised", "victim_score")

# The count of children assessed at each level (``CHILD_LEVELS`` order).
CHILD_LEVEL_COLUMNS = tuple(f"children_{level}" for level in CHILD_LEVELS)

REPORT_FACT_COLUMNS = (
    "marac_repeat",
    "serial_perpetrator",
    *CHILD_LEVEL_COLUMNS,
    *(f"children_{fact}" for fact in CHILD_FACTS),
    "children_not_spoken_to",
    "separation_related",
)
