"""How the classifier is combined with the checklist level (recorded in every assessment).

Policy ``classifier-combination/1``:

1. The classifier never lowers a checklist level.
2. A probability at or above the threshold raises a ``classifier_elevated`` flag for triage
   review (agency ``triage``).
3. It raises the victim level (to ``raise_to``, default ``medium``; never lowering) only when
   the area's configuration allows it (``may_raise_level``).

The threshold defaults to the model's own operating threshold from its manifest; an area may
configure its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.classifier.artifact import ClassifierResult

POLICY_ID = "classifier-combination/1"
LEVELS: tuple[str, ...] = ("standard", "medium", "high")


@dataclass(frozen=True)
class CombinedDecision:
    checklist_level: str
    level: str
    classifier_elevated: bool
    level_raised: bool
    policy: dict[str, Any]


def combine(
    checklist_level: str,
    result: ClassifierResult,
    *,
    threshold: float | None = None,
    may_raise_level: bool = False,
    raise_to: str = "medium",
) -> CombinedDecision:
    """Apply the combination policy (see the module docstring)."""
    if checklist_level not in LEVELS or raise_to not in LEVELS:
        raise ValueError("levels must be standard, medium or high")
    used = result.threshold if threshold is None else threshold
    elevated = result.probability >= used
    level = checklist_level
    if elevated and may_raise_level and LEVELS.index(raise_to) > LEVELS.index(checklist_level):
        level = raise_to
    return CombinedDecision(
        checklist_level=checklist_level,
        level=level,
        classifier_elevated=elevated,
        level_raised=level != checklist_level,
        policy={
            "id": POLICY_ID,
            "never_lowers_level": True,
            "threshold": used,
            "threshold_source": "model manifest" if threshold is None else "area configuration",
            "may_raise_level": may_raise_level,
            "raise_to": raise_to,
            "classifier_elevated": elevated,
            "level_before": checklist_level,
            "level_after": level,
        },
    )


def assessment_classifier(
    checklist_level: str,
    result: ClassifierResult,
    *,
    threshold: float | None = None,
    may_raise_level: bool = False,
    raise_to: str = "medium",
) -> tuple[dict[str, Any], CombinedDecision]:
    """The assessment's ``classifier`` object (result plus the policy applied) and the decision."""
    decision = combine(
        checklist_level,
        result,
        threshold=threshold,
        may_raise_level=may_raise_level,
        raise_to=raise_to,
    )
    body = result.to_dict()
    body["elevated"] = decision.classifier_elevated
    body["threshold"] = decision.policy["threshold"]
    body["policy"] = decision.policy
    return body, decision
