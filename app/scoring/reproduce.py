"""Re-run stored inputs through the stored definitions and say what, if anything, differs.

Backs ``POST /v1/assessments/{id}/reproduce`` (docs/contract.md "Explanations": re-runs the stored
inputs through the stored checklist versions and answers ``identical`` and
``differences``). Because the engine is pure, a difference means the inputs, a definition
file or the engine changed since the assessment was made; the paths say where.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.contract.incident import Incident, stored_incident
from app.scoring.engine import assess
from app.scoring.history import History
from app.scoring.judgement import Judgement
from app.scoring.registry import (
    DefinitionSet,
    UnknownDefinitionError,
)

if TYPE_CHECKING:
    from app.scoring.registry import DefinitionRegistry

# Set by the persistence layer, not the engine: never part of a comparison.
PERSISTENCE_KEYS: frozenset[str] = frozenset({"id", "version", "created_at"})

_ABSENT = "<absent>"


@dataclass(frozen=True, slots=True)
class Difference:
    """One place where the stored and recomputed assessments differ.

    ``path`` is a JSON Pointer (RFC 6901) into the assessment; a value missing on one
    side is shown as ``"<absent>"``.
    """

    path: str
    stored: Any
    recomputed: Any

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "stored": self.stored, "recomputed": self.recomputed}


@dataclass(frozen=True, slots=True)
class Reproduction:
    identical: bool
    differences: tuple[Difference, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "differences": [difference.to_dict() for difference in self.differences],
        }


def compare(
    stored: Mapping[str, Any],
    recomputed: Mapping[str, Any],
    ignore: Collection[str] = PERSISTENCE_KEYS,
) -> list[Difference]:
    """Path-level differences between two assessment dicts (top-level ``ignore`` skipped)."""
    differences: list[Difference] = []
    keys = sorted((set(stored) | set(recomputed)) - set(ignore))
    for key in keys:
        _diff(
            stored.get(key, _ABSENT), recomputed.get(key, _ABSENT), f"/{_escape(key)}", differences
        )
    return differences


def reproduce(
    stored_assessment: Mapping[str, Any],
    incident: Incident | Mapping[str, Any],
    history: History | Mapping[str, Any],
    judgements: Sequence[Judgement | Mapping[str, Any]],
    registry: DefinitionRegistry,
    ignore: Collection[str] = PERSISTENCE_KEYS,
) -> Reproduction:
    """Re-run ``assess`` on the stored inputs with the definitions the stored assessment
    names (by id and version) and compare the result with what was stored.

    Only the keys the engine produces are compared: keys other layers add to a stored
    result (the flag rules used, the combination policy) are theirs to check, and
    ``ignore`` lists engine keys to leave out (e.g. ``classifier`` once a model's output is
    stored there and reproduced by the classifier layer).

    ``judgements`` are the later judgements given to ``assess`` (the officer's judgement
    travels inside the incident). A definition that is no longer loaded cannot be re-run:
    that is reported as a difference rather than raised, so the auditor sees why.
    """
    incident_model = incident if isinstance(incident, Incident) else stored_incident(incident)
    history_value = history if isinstance(history, History) else History.from_dict(history)
    judgement_values = tuple(
        j if isinstance(j, Judgement) else Judgement.from_dict(j) for j in judgements
    )
    used = stored_assessment.get("definitions", {})
    victim_ref = used.get("victim_checklist") or stored_assessment.get("victim", {}).get(
        "checklist", {}
    )
    child_ref = used.get("child_risk", {})
    try:
        victim_checklist = registry.victim_checklist(f"{victim_ref['id']}@{victim_ref['version']}")
        child_risk = registry.child_risk(f"{child_ref['id']}@{child_ref['version']}")
    except (KeyError, TypeError, UnknownDefinitionError) as exc:
        missing = Difference("/definitions", dict(used), f"cannot re-run: {exc}")
        return Reproduction(identical=False, differences=(missing,))
    definitions = DefinitionSet(
        victim_checklists={victim_checklist.ref.id: victim_checklist}, child_risk=child_risk
    )
    recomputed = assess(incident_model, history_value, definitions, judgement_values).to_dict()
    stored_engine_keys = {
        key: stored_assessment[key] for key in recomputed if key in stored_assessment
    }
    differences = compare(stored_engine_keys, recomputed, ignore)
    return Reproduction(identical=not differences, differences=tuple(differences))


def _diff(stored: Any, recomputed: Any, path: str, out: list[Difference]) -> None:
    if isinstance(stored, Mapping) and isinstance(recomputed, Mapping):
        for key in sorted(set(stored) | set(recomputed)):
            _diff(
                stored.get(key, _ABSENT),
                recomputed.get(key, _ABSENT),
                f"{path}/{_escape(str(key))}",
                out,
            )
        return
    if isinstance(stored, list | tuple) and isinstance(recomputed, list | tuple):
        for index in range(max(len(stored), len(recomputed))):
            _diff(
                stored[index] if index < len(stored) else _ABSENT,
                recomputed[index] if index < len(recomputed) else _ABSENT,
                f"{path}/{index}",
                out,
            )
        return
    # type() as well as ==: True == 1 in Python, but not in a stored JSON document.
    if stored != recomputed or type(stored) is not type(recomputed):
        out.append(Difference(path, stored, recomputed))


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
