"""One evaluation, used both to make an assessment and to reproduce it.

The checklist engine runs first and is authoritative. If a classifier is configured its
output is attached under ``classifier`` with the combination policy applied
(``app.classifier.policy``): it never lowers a level, above the threshold it sets
``elevated`` (which raises a ``classifier_elevated`` flag for triage), and it raises the
victim's level only where the area's configuration allows it. Because intake and
``reproduce`` call the same function with the same stored inputs, a reproduction covers
the classifier's output too.

A level raised by the classifier does not feed back into the children's ladder (which the
engine computes from the checklist level); the trigger says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.classifier.artifact import LoadedModel
from app.classifier.features import ClassifierHistory
from app.classifier.policy import assessment_classifier
from app.contract.incident import Incident
from app.scoring.engine import assess
from app.scoring.history import History
from app.scoring.judgement import Judgement
from app.scoring.registry import DefinitionSet

COMBINATION_POLICY = (
    "checklist levels are authoritative; a classifier, when configured, never lowers a level, "
    "raises a `classifier_elevated` flag for triage review above its threshold, and raises "
    "the victim level only where the area's configuration allows it"
)


@dataclass(frozen=True)
class ClassifierPolicy:
    model: LoadedModel | None
    threshold: float | None = None  # None: the model's own operating threshold
    may_raise_level: bool = False


def classifier_history(history: History, incident: Incident) -> ClassifierHistory:
    """The classifier's view of history: reported figures merged with stored ones."""
    reported = ClassifierHistory.from_incident(incident)
    if not history.stored_consulted:
        return reported
    occurred = incident.occurred_at
    year_before = occurred - dt.timedelta(days=365)
    victim = history.victim
    prior = [i for i in victim.stored_prior_incidents if i.occurred_at < occurred]
    last = max((i.occurred_at for i in prior), default=None)
    referral = victim.stored_last_marac_referral
    others = {v.person_id for v in history.perpetrator.stored_victims} - {victim.person_id}
    stored = ClassifierHistory(
        victim_prior_da_incidents_12m=sum(1 for i in prior if i.occurred_at >= year_before),
        perpetrator_prior_da_incidents=len(history.perpetrator.stored_incident_ids),
        perpetrator_prior_da_victims=len(others),
        days_since_victim_last_incident=(
            (occurred - last).total_seconds() / 86400.0 if last is not None else None
        ),
        days_since_perpetrator_last_incident=None,
        days_since_victim_marac_referral=(
            float(max(0, (occurred.date() - referral.referred_on).days))
            if referral is not None
            else None
        ),
        source="stored",
    )
    return reported.merge(stored)


def evaluate(
    incident: Incident,
    history: History,
    definitions: DefinitionSet,
    judgements: Sequence[Judgement],
    classifier: ClassifierPolicy,
) -> dict[str, Any]:
    """The assessment dict: the engine's explanation plus the classifier, if any."""
    result = assess(incident, history, definitions, judgements).to_dict()
    result["combination_policy"] = COMBINATION_POLICY
    model = classifier.model
    if model is None:
        return result
    output = model.explain(incident, classifier_history(history, incident))
    body, decision = assessment_classifier(
        result["victim"]["level"],
        output,
        threshold=classifier.threshold,
        may_raise_level=classifier.may_raise_level,
    )
    result["classifier"] = body
    if decision.level_raised:
        result["victim"]["level"] = decision.level
        result["victim"]["triggers"].append(
            {
                "rule": "classifier",
                "effect": decision.level,
                "detail": (
                    f"probability {output.probability:.3f} ≥ threshold "
                    f"{decision.policy['threshold']:.3f}; the area allows the classifier to "
                    "raise the level (children's levels are not recomputed)"
                ),
                "fired": True,
                "stage": "classifier",
            }
        )
    return result
