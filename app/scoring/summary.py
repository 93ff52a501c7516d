"""One plain-language paragraph a triage worker can read aloud.

Built only from the assessment's own parts, so it cannot say anything the explanation does
not. It names people by their refs and ages, never by name: the summary is stored and shown
to several roles, and names are personal data (docs/brief.md; docs/reliability-research.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.contract.levels import CHILD_RANK, VICTIM_RANK

if TYPE_CHECKING:  # results imports this module to write the summary
    from app.scoring.results import ChildAssessment, PerpetratorProfile, VictimAssessment

# Most red-flag factors a summary names before saying "and N more".
MAX_FACTORS_NAMED = 4

_LEVEL_WORDS = {"standard": "Standard", "medium": "Medium", "high": "High"}
_CHILD_LEVEL_WORDS = {
    "moderate": "moderate",
    "moderate_to_serious": "moderate to serious",
    "serious": "serious",
    "severe": "severe",
}
_CRITERION_WORDS = {
    "visible_high_risk": "visible high risk",
    "red_flag_high": "red flags graded high",
    "professional_judgement": "professional judgement",
    "potential_escalation": "potential escalation",
    "repeat_marac": "repeat MARAC",
}
_STAGE_WORDS = {
    "red_flag": "red flags",
    "perception": "the victim's own view",
    "judgement": "professional judgement",
    "marac": "MARAC criteria",
}
# Rules v2: where an answer the summary names came from, when not the victim.
_SOURCE_WORDS = {"observed": " (seen by the officer)", "recorded": " (recorded)"}
_PLAN_WORDS = {
    "child_protection": "on a child-protection plan",
    "child_in_need": "on a child-in-need plan",
    "looked_after": "looked after",
    "early_help": "on an early-help plan",
}
_NUMBER_WORDS = ("No", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")


def summarise(
    victim: VictimAssessment,
    children: Sequence[ChildAssessment],
    perpetrator: PerpetratorProfile,
    key_items: Sequence[str],
) -> str:
    """The summary paragraph; ``key_items`` are the red-flag items, named first when yes."""
    return " ".join(
        part
        for part in (
            _victim_sentence(victim, key_items),
            _children_sentence(children),
            "Perpetrator linked to other victims (serial)." if perpetrator.serial else "",
        )
        if part
    )


def _victim_sentence(victim: VictimAssessment, key_items: Sequence[str]) -> str:
    head = f"{_LEVEL_WORDS[victim.level]} risk"
    if victim.level != victim.score_level:
        raised_by = []
        for trigger in victim.triggers:
            words = _STAGE_WORDS.get(trigger.stage)
            if (
                words is not None
                and trigger.fired
                and trigger.effect in VICTIM_RANK
                and VICTIM_RANK[trigger.effect] > VICTIM_RANK[victim.score_level]
                and words not in raised_by
            ):
                raised_by.append(words)
        head += f" (score alone {victim.score_level}; raised by {_and(raised_by)})"

    clauses = [f"{victim.score} of {victim.max_score} risk factors"]
    yes_labels = {
        item.id: item.label + _SOURCE_WORDS.get(item.source or "", "")
        for item in victim.items
        if item.points
    }
    named = [yes_labels[item] for item in key_items if item in yes_labels]
    if named:
        shown = [_lower_first(label) for label in named[:MAX_FACTORS_NAMED]]
        more = len(named) - len(shown)
        listed = ", ".join(shown) + f" and {more} more red-flag factors" if more else _and(shown)
        clauses[0] += ", including " + listed
    if victim.unknown_count:
        plural = "answer" if victim.unknown_count == 1 else "answers"
        clauses.append(f"{victim.unknown_count} {plural} unknown or not asked")
    if any(t.rule == "incomplete_assessment" and t.fired for t in victim.triggers):
        clauses.append("the assessment is incomplete and must be finished with the victim")
    if victim.marac.refer:
        criteria = [_CRITERION_WORDS.get(c, c) for c in victim.marac.criteria]
        clauses.append(f"meets MARAC on {_and(criteria)}")
    else:
        clauses.append("no MARAC criterion met")
    return f"{head}: {'; '.join(clauses)}."


def _children_sentence(children: Sequence[ChildAssessment]) -> str:
    if not children:
        return "No children recorded."
    count = len(children)
    head = _NUMBER_WORDS[count] if count < len(_NUMBER_WORDS) else str(count)
    head += " child" if count == 1 else " children"
    described = [_child_phrase(child) for child in children]
    return f"{head}: {'; '.join(described)}."


def _child_phrase(child: ChildAssessment) -> str:
    if child.unborn:
        age = "unborn"
    elif child.age_years is None:
        age = "age unknown"
    else:
        age = f"aged {child.age_years}"
    phrase = f"{child.person_ref} ({age}) {_CHILD_LEVEL_WORDS[child.level]}"
    # The child's own facts come first in its items.
    facts: dict[str, object] = {}
    for item in child.items:
        if item.source != "child":
            break
        facts[item.id] = item.value
    seen = [fact for fact in ("present", "witnessed", "injured", "intervened") if facts.get(fact)]
    if facts.get("present") and facts.get("spoken_to_by_officer") is False:
        seen.append("not spoken to")
    plan = facts.get("existing_plan")
    if isinstance(plan, str) and plan in _PLAN_WORDS:
        seen.append(_PLAN_WORDS[plan])
    if seen:
        phrase += " — " + ", ".join(seen)
    if CHILD_RANK[child.level] > CHILD_RANK[child.rule_level]:
        raised_by = [
            "professional judgement" if t.stage == "judgement" else "age or vulnerability"
            for t in child.triggers
            if t.fired and t.stage in ("step", "judgement") and t.effect in CHILD_RANK
        ]
        phrase += f" (raised for {_and(list(dict.fromkeys(raised_by)))})"
    return phrase


def _and(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
