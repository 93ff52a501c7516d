"""The scoring engine: incident, history and definitions in; assessment (= explanation) out.

Pure: no database, no clock, no globals that change, no randomness. The same inputs give
the same assessment, which is what lets an auditor reproduce a past score exactly
(docs/contract.md "Explanations"). Dates for windows and ages are the incident's date in England and
Wales (``Europe/London``), taken from ``incident.occurred_at``.

The rules are those of docs/contract.md "Scoring defaults", with thresholds, windows, rule switches
and the child ladder read from the checklist definitions (``app.scoring.registry``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from itertools import product
from operator import getitem
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple, cast
from zoneinfo import ZoneInfo

from app.contract.incident import Incident, Person
from app.contract.levels import CHILD_LEVELS, CHILD_RANK, VICTIM_LEVELS, VICTIM_RANK, VictimLevel
from app.contract.paths import incident_value
from app.scoring.conditions import ChildContext, ChildDetailsLike, NoChildDetails
from app.scoring.history import History
from app.scoring.judgement import Judgement
from app.scoring.results import (
    AnswerValue,
    Assessment,
    AssessmentInputs,
    ChildAssessment,
    ChildItem,
    Evidence,
    Figure,
    MaracDecision,
    Marker,
    PerpetratorProfile,
    Trigger,
    VictimAssessment,
    VictimItem,
)

if TYPE_CHECKING:
    from app.scoring.registry import (
        ChildRiskDefinition,
        CompiledChildRule,
        DefinitionSet,
        EffectiveAnswerRule,
        IncompleteConfig,
        PerceptionConfig,
        RedFlagConfig,
        VictimChecklistDefinition,
    )

# Incidents are in England and Wales; a date (for a birthday or a 12-month window) is the
# date there, not in UTC (23:30 UTC on 30 June is already 1 July in London).
INCIDENT_TIMEZONE = ZoneInfo("Europe/London")
# victim_history.prior_da_incidents_12m counts a 12-month window by definition.
REPORTED_WINDOW_MONTHS = 12

_NO_DETAILS = NoChildDetails()
# Triggers whose wording never varies, built once.
_NO_JUDGEMENT = Trigger(
    "professional_judgement", "none", "no professional judgement recorded", False, "judgement"
)
_NO_JUDGEMENT_OF_HIGH = Trigger(
    "professional_judgement", "none", "no judgement of high", False, "marac"
)
_NO_REFERRAL = {
    False: Trigger("repeat_marac", "none", "no earlier MARAC referral reported", False, "marac"),
    True: Trigger(
        "repeat_marac", "none", "no earlier MARAC referral reported or stored", False, "marac"
    ),
}


def assess(
    incident: Incident,
    history: History,
    definitions: DefinitionSet,
    judgements: Sequence[Judgement] = (),
) -> Assessment:
    """Assess the adult victim, every child and the perpetrator of one incident.

    Victim (docs/contract.md "Scoring defaults"; docs/research.md §1.5-1.6): score = number of
    ``yes``; ``unknown`` and ``not_asked`` (items left out count as ``not_asked``) are counted in
    ``unknown_count``; the band comes from the checklist's thresholds; then, each recorded
    as a trigger whether it fired or not: red flags, professional judgement (the
    incident's, then ``judgements`` in time order; raises, never lowers) and the four MARAC
    criteria (any one refers and makes the level high).

    Children (docs/contract.md; docs/research.md §5.1): every child, present or not, unborn
    included, by the child-risk rules against the victim's *final* level, then the
    vulnerability step.

    Perpetrator (docs/contract.md; docs/research.md §3, §6): markers from history and answers, and
    whether the perpetrator is serial.

    ``history`` must describe this incident's people (``History.reported(incident)``,
    optionally ``.with_stored(...)``).
    """
    _check_history(incident, history)
    checklist = definitions.victim_checklist(incident.victim_checklist.instrument)
    child_risk = definitions.child_risk
    local = incident.occurred_at.astimezone(INCIDENT_TIMEZONE)
    all_judgements, of_children = _judgements_in_order(incident, judgements)

    figures: list[Figure] = []
    answers = _effective_answers(incident, checklist)
    victim = _assess_victim(incident, history, checklist, answers, all_judgements, local, figures)
    children = _assess_children(
        incident, history, child_risk, victim.level, answers, local.date(), figures, of_children
    )
    # Perpetrator markers cite the victim's own answers beside the incident's facts (each
    # is evidence in its own right), so they read the answers as given.
    perpetrator = _perpetrator_profile(
        incident, history, incident.victim_checklist.answers, figures
    )
    return Assessment(
        victim,
        children,
        perpetrator,
        tuple(figures),
        child_risk.ref,
        len(all_judgements) + sum(len(j) for j in of_children.values()),
        checklist.red_flag.key_items,
        AssessmentInputs(incident, history, tuple(judgements)),
    )


def assess_victim(
    incident: Incident,
    history: History,
    definitions: DefinitionSet,
    judgements: Sequence[Judgement] = (),
) -> tuple[VictimAssessment, tuple[Figure, ...]]:
    """The victim's part of :func:`assess` alone: the same ``VictimAssessment`` that
    ``assess`` gives, and the history figures it records (the first figures of
    ``assess``'s ``history``), without the children and the perpetrator.

    For a what-if of a victim-checklist draft (``app.reports.whatif``): the children read
    only the victim's final level and effective answers, and the perpetrator reads no
    definition, so where the draft leaves the victim's part as it was, the rest of the
    assessment is unchanged too.
    """
    _check_history(incident, history)
    checklist = definitions.victim_checklist(incident.victim_checklist.instrument)
    local = incident.occurred_at.astimezone(INCIDENT_TIMEZONE)
    all_judgements, _ = _judgements_in_order(incident, judgements)
    answers = _effective_answers(incident, checklist)
    return _victim_alone(incident, history, checklist, answers, all_judgements, local)


def assess_victim_pair(
    incident: Incident,
    history: History,
    first: DefinitionSet,
    second: DefinitionSet,
    judgements: Sequence[Judgement] = (),
) -> tuple[
    tuple[VictimAssessment, tuple[Figure, ...]], tuple[VictimAssessment, tuple[Figure, ...]]
]:
    """:func:`assess_victim` under ``first`` and under ``second``, each result exactly what
    ``assess_victim`` gives, for a what-if that compares the two on a million incidents.

    What does not depend on the definitions is derived once: the history check, the
    incident's local time and the judgements in order; so are the effective answers when
    both checklists derive them by equal rules (they read only the incident and the
    rules). Everything that reads a checklist is computed for each.
    """
    _check_history(incident, history)
    instrument = incident.victim_checklist.instrument
    checklist = first.victim_checklist(instrument)
    other = second.victim_checklist(instrument)
    local = incident.occurred_at.astimezone(INCIDENT_TIMEZONE)
    all_judgements, _ = _judgements_in_order(incident, judgements)
    answers = _effective_answers(incident, checklist)
    same_rules = (
        other.effective_answers is checklist.effective_answers
        or other.effective_answers == checklist.effective_answers
    )
    other_answers = answers if same_rules else _effective_answers(incident, other)
    # The items as answered read only the answers and the items' tables: scored once when
    # both checklists have the very same tables (the what-if's drafts share them).
    scored = _score_items(checklist, answers)
    same_items = (
        other_answers is answers
        and other.item_tables is checklist.item_tables
        and other.item_ids == checklist.item_ids
    )
    return (
        _victim_alone(incident, history, checklist, answers, all_judgements, local, scored),
        _victim_alone(
            incident,
            history,
            other,
            other_answers,
            all_judgements,
            local,
            scored if same_items else None,
        ),
    )


def assess_perpetrator(incident: Incident, history: History) -> PerpetratorProfile:
    """The perpetrator's part of :func:`assess` alone, exactly what ``assess`` gives as
    ``perpetrator``: it reads the incident, the history and the victim's answers as given,
    and no definition."""
    _check_history(incident, history)
    return _perpetrator_profile(incident, history, incident.victim_checklist.answers, [])


def assess_children(
    incident: Incident,
    history: History,
    definitions: DefinitionSet,
    judgements: Sequence[Judgement] = (),
    victim_level: VictimLevel | None = None,
) -> tuple[ChildAssessment, ...]:
    """The children's part of :func:`assess` alone, exactly what ``assess`` gives as
    ``children``: the victim's part is scored for its final level, which the children
    read, unless the caller gives the ``victim_level`` ``assess`` gives the victim (the
    what-if reads it from a stored result made by this engine under the same
    definitions)."""
    checklist = definitions.victim_checklist(incident.victim_checklist.instrument)
    read = _children_read(incident, history, checklist, judgements, victim_level)
    return _assess_children(incident, history, definitions.child_risk, *read)


def assess_children_pair(
    incident: Incident,
    history: History,
    first: DefinitionSet,
    second: DefinitionSet,
    judgements: Sequence[Judgement] = (),
    victim_level: VictimLevel | None = None,
) -> tuple[tuple[ChildAssessment, ...], tuple[ChildAssessment, ...]]:
    """The children's part of :func:`assess` under ``first``'s child-risk definition and
    under ``second``'s, each exactly what ``assess`` gives as ``children``, for a what-if of
    a child-risk draft over a million incidents.

    The children read the victim's final level and effective answers, and the victim's
    part reads no child-risk definition: it is scored once, under the victim checklist
    the two sets share (a ``ValueError`` if they do not), or not at all when the caller
    gives the ``victim_level`` that :func:`assess` gives the victim under that checklist
    (the what-if reads it from a stored result made by this engine under the same
    definitions).
    """
    instrument = incident.victim_checklist.instrument
    checklist = first.victim_checklist(instrument)
    other = second.victim_checklist(instrument)
    if other is not checklist and other != checklist:
        raise ValueError("both definition sets must have the same victim checklist")
    read = _children_read(incident, history, checklist, judgements, victim_level)
    return (
        _assess_children(incident, history, first.child_risk, *read),
        _assess_children(incident, history, second.child_risk, *read),
    )


def _children_read(
    incident: Incident,
    history: History,
    checklist: VictimChecklistDefinition,
    judgements: Sequence[Judgement],
    victim_level: VictimLevel | None,
) -> tuple[VictimLevel, _Answers, dt.date, list[Figure], Mapping[str, list[Judgement]]]:
    """What :func:`_assess_children` reads besides the incident, the history and the
    child-risk definition, as :func:`assess` works it out: the victim's final level (scored
    under ``checklist`` unless given), the effective answers, the incident's local date, a
    list for the figures (not kept) and the judgements of each child."""
    _check_history(incident, history)
    local = incident.occurred_at.astimezone(INCIDENT_TIMEZONE)
    all_judgements, of_children = _judgements_in_order(incident, judgements)
    answers = _effective_answers(incident, checklist)
    if victim_level is None:
        victim, _ = _victim_alone(incident, history, checklist, answers, all_judgements, local)
        victim_level = victim.level
    return victim_level, answers, local.date(), [], of_children


def _victim_alone(
    incident: Incident,
    history: History,
    checklist: VictimChecklistDefinition,
    answers: _Answers,
    judgements: tuple[Judgement, ...],
    local: dt.datetime,
    scored: _Scored | None = None,
) -> tuple[VictimAssessment, tuple[Figure, ...]]:
    """The victim's part and the history figures it records, as :func:`assess` makes them
    (``scored``: the items as answered, when already scored under the same tables)."""
    figures: list[Figure] = []
    victim = _assess_victim(
        incident, history, checklist, answers, judgements, local, figures, scored
    )
    return victim, tuple(figures)


def _check_history(incident: Incident, history: History) -> None:
    if history.victim.person_ref != incident.relationship.victim:
        raise ValueError("history is for a different victim than the incident names")


def _judgements_in_order(
    incident: Incident, judgements: Sequence[Judgement]
) -> tuple[tuple[Judgement, ...], dict[str, list[Judgement]]]:
    """The victim's judgements (the officer's first, then the rest in time order) and
    each child's, in time order."""
    officer = Judgement.from_officer_assessment(incident)
    ordered = sorted(judgements, key=_judged_at) if len(judgements) > 1 else list(judgements)
    of_victim = [j for j in ordered if j.subject_ref is None]
    all_judgements = (officer, *of_victim) if officer is not None else tuple(of_victim)
    of_children: dict[str, list[Judgement]] = {}
    for judgement in ordered:
        if judgement.subject_ref is not None:
            of_children.setdefault(judgement.subject_ref, []).append(judgement)
    return all_judgements, of_children


class _Answers(NamedTuple):
    """The answers every rule reads, and where an answer came from when not the victim."""

    effective: Mapping[str, str]
    given: Mapping[str, str]  # the victim's own answers
    # item id → (rule, fact value) for items with an effective-answer rule (rules v2).
    facts: Mapping[str, tuple[EffectiveAnswerRule, object]]
    # item id → "observed" or "recorded" where the incident's fact made the answer yes.
    sources: Mapping[str, str]


def _effective_answers(incident: Incident, checklist: VictimChecklistDefinition) -> _Answers:
    """Rules v2, rule 1: an item is ``yes`` when the victim said so or the incident records
    the fact (the officer saw a strangulation, a weapon, an injury; a recent, planned or
    perceived separation), whatever the victim answered. Version-1 definitions have no
    such rules: the answers are the victim's."""
    answers = incident.victim_checklist.answers
    if not checklist.effective_answers:
        return _Answers(answers, answers, MappingProxyType({}), MappingProxyType({}))
    effective = dict(answers)
    facts: dict[str, tuple[EffectiveAnswerRule, object]] = {}
    sources: dict[str, str] = {}
    for rule in checklist.effective_answers:
        value = incident_value(incident, rule.path)
        facts[rule.item] = (rule, value)
        for accepted in rule.accepted:
            if type(value) is type(accepted) and value == accepted:
                effective[rule.item] = "yes"
                sources[rule.item] = rule.source
                break
    return _Answers(effective, answers, facts, sources)


def _judged_at(judgement: Judgement) -> dt.datetime:
    return judgement.at


# --- Victim ----------------------------------------------------------------------------


class _Scored(NamedTuple):
    """The checklist's items as answered: the score, the unknowns and the items."""

    score: int
    unknown: int
    items: tuple[VictimItem, ...]


def _score_items(checklist: VictimChecklistDefinition, answered: _Answers) -> _Scored:
    # An item left out of the answers was not asked (docs/contract.md); only yes scores, and unknown
    # plus not_asked are counted so that "don't know" never passes for "no" (docs/brief.md).
    get = answered.effective.get
    values = [get(item_id, "not_asked") for item_id in checklist.item_ids]
    score = values.count("yes")
    unknown = len(values) - score - values.count("no")
    items: tuple[VictimItem, ...] = tuple(map(getitem, checklist.item_tables, values))
    if answered.facts:
        items = _with_sources(items, answered, checklist.item_ids)
    return _Scored(score, unknown, items)


def _assess_victim(
    incident: Incident,
    history: History,
    checklist: VictimChecklistDefinition,
    answered: _Answers,
    judgements: tuple[Judgement, ...],
    local: dt.datetime,
    figures: list[Figure],
    scored: _Scored | None = None,
) -> VictimAssessment:
    answers = answered.effective
    score, unknown, items = scored or _score_items(checklist, answered)

    score_level = checklist.band_levels[score]
    rank = VICTIM_RANK[score_level]
    triggers = [checklist.band_triggers[score]]

    red_flag, red_flag_rank = _red_flag(checklist.red_flag, answers, checklist.ref.key)
    triggers.append(red_flag)
    rank = max(rank, red_flag_rank)

    if checklist.perception is not None:
        perception, rank = _victim_perception(
            checklist.perception, incident, rank, checklist.ref.key
        )
        triggers.append(perception)
    if checklist.incomplete is not None:
        triggers.append(_incomplete(checklist.incomplete, incident, unknown, checklist.ref.key))

    if not judgements:
        triggers.append(_NO_JUDGEMENT)
    for judgement in judgements:
        trigger, rank = _judgement_trigger(judgement, rank)
        triggers.append(trigger)

    marac = checklist.marac
    criteria: list[str] = []
    visible = checklist.visible_high_risk_triggers[score]
    triggers.append(visible)
    if visible.fired:
        criteria.append("visible_high_risk")
    if marac.red_flag_high is not None:
        red_flag_high = _red_flag_high(marac.red_flag_high, red_flag, checklist.ref.key)
        triggers.append(red_flag_high)
        if red_flag_high.fired:
            criteria.append("red_flag_high")
    judged = _marac_judgement(marac.professional_judgement, judgements, checklist.ref.key)
    triggers.append(judged)
    if judged.fired:
        criteria.append("professional_judgement")
    escalation = _potential_escalation(checklist, history, incident, local, figures)
    triggers.append(escalation)
    if escalation.fired:
        criteria.append("potential_escalation")
    repeat = _repeat_marac(checklist, history, local.date(), figures)
    triggers.append(repeat)
    if repeat.fired:
        criteria.append("repeat_marac")
    if criteria:
        # Any MARAC criterion makes the victim high (docs/contract.md "Scoring defaults" item 3).
        rank = VICTIM_RANK["high"]

    return VictimAssessment(
        incident.relationship.victim,
        VICTIM_LEVELS[rank],
        score_level,
        score,
        len(checklist.item_ids),
        unknown,
        checklist.ref,
        items,
        tuple(triggers),
        MaracDecision(bool(criteria), tuple(criteria)),
    )


def _red_flag(
    rule: RedFlagConfig, answers: Mapping[str, str], definition_key: str
) -> tuple[Trigger, int]:
    """Red flags: one critical item gives at least ``critical_level`` (medium); a critical
    item plus ``aggravating_needed`` aggravating items, or ``criticals_needed`` critical
    items, give ``escalated_level`` (high).

    docs/contract.md "Scoring defaults" item 1; evidence in docs/research.md §6 (strangulation
    about 7 times the odds of homicide, separation, stalking, pregnancy, suicidality, child
    contact) and the Lethality Screen's any-critical-or-k-others pattern (docs/research.md §4).
    """
    if not rule.enabled:
        return Trigger("red_flag", "none", f"disabled in {definition_key}", False, "red_flag"), 0
    critical = [item for item in rule.critical_items if answers.get(item) == "yes"]
    if not critical:
        detail = f"none of {', '.join(rule.critical_items)} = yes"
        return Trigger("red_flag", "none", detail, False, "red_flag"), 0
    aggravating = [item for item in rule.aggravating_items if answers.get(item) == "yes"]
    named = " and ".join(critical) + " = yes"
    if len(critical) >= rule.criticals_needed:
        level = rule.escalated_level
        detail = f"{named}: {len(critical)} critical items → {level}"
    elif len(aggravating) >= rule.aggravating_needed:
        level = rule.escalated_level
        detail = f"{named} with {len(aggravating)} aggravating ({', '.join(aggravating)}) → {level}"
    else:
        level = rule.critical_level
        found = f" ({', '.join(aggravating)})" if aggravating else ""
        detail = (
            f"{named} → at least {level}; {len(aggravating)} aggravating{found}, "
            f"{rule.aggravating_needed} needed for {rule.escalated_level}"
        )
    return Trigger("red_flag", level, detail, True, "red_flag"), VICTIM_RANK[level]


def _with_sources(
    items: tuple[VictimItem, ...], answered: _Answers, item_ids: tuple[str, ...]
) -> tuple[VictimItem, ...]:
    """Items with an effective-answer rule show the fact looked at and, when it made the
    answer yes, that source (rules v2, rule 1: "the item shows both"). ``items`` are in
    the order of ``item_ids``; only the few items with a rule are looked at."""
    result = list(items)
    for item_id, (rule, value) in answered.facts.items():
        if item_id not in item_ids:  # pragma: no cover - the loader checks rules name items
            continue
        index = item_ids.index(item_id)
        item = items[index]
        fact = (rule.path, value if isinstance(value, bool | str) else None)
        source = answered.sources.get(item.id)
        if source is not None:
            given = cast(AnswerValue, answered.given.get(item.id, "not_asked"))
            result[index] = VictimItem(item.id, given, 1, item.label, "yes", source, fact)
        else:
            result[index] = VictimItem(
                item.id, item.answer, item.points, item.label, item.answer, "answer", fact
            )
    return tuple(result)


def _victim_perception(
    config: PerceptionConfig, incident: Incident, rank: int, definition_key: str
) -> tuple[Trigger, int]:
    """Rules v2, rule 3: the victim's own view of the risk is a floor, never a ceiling
    (informative but under-sensitive: docs/rules.md, rule 3)."""
    if not config.enabled:
        return Trigger(
            "victim_perception", "none", f"disabled in {definition_key}", False, "perception"
        ), rank
    perceived = incident.officer_assessment.victim_perception
    if perceived is None:
        return Trigger(
            "victim_perception", "none", "victim's own view not recorded", False, "perception"
        ), rank
    if perceived not in config.perceived:
        detail = f"victim rates the risk {perceived}: no floor"
        return Trigger("victim_perception", "none", detail, False, "perception"), rank
    floor = VICTIM_RANK[config.at_least]
    current = VICTIM_LEVELS[rank]
    change = f"raises {current} to {config.at_least}" if floor > rank else f"already {current}"
    detail = f"victim rates the risk {perceived} → at least {config.at_least}: {change}"
    return Trigger("victim_perception", config.at_least, detail, True, "perception"), max(
        rank, floor
    )


def _incomplete(
    config: IncompleteConfig, incident: Incident, unknown: int, definition_key: str
) -> Trigger:
    """Rules v2, rule 5: too many unknowns (or no checklist) is said, and raises a task to
    finish the assessment; it never changes the level by itself."""
    if not config.enabled:
        return Trigger(
            "incomplete_assessment", "none", f"disabled in {definition_key}", False, "completeness"
        )
    checklist = incident.victim_checklist
    absent = not checklist.answers or checklist.answered_by == "not_completed"
    if config.when_checklist_absent and absent:
        why = "no answers recorded" if not checklist.answers else "checklist not completed"
        return Trigger(
            "incomplete_assessment", "none", f"checklist absent ({why})", True, "completeness"
        )
    fired = unknown >= config.unknown_from
    detail = f"{unknown} answers unknown or not asked {'≥' if fired else '<'} {config.unknown_from}"
    return Trigger("incomplete_assessment", "none", detail, fired, "completeness")


def _red_flag_high(enabled: bool, red_flag: Trigger, definition_key: str) -> Trigger:
    """Rules v2, rule 4: a victim the red-flag rule grades high is referred to MARAC."""
    if not enabled:
        return Trigger("red_flag_high", "none", f"disabled in {definition_key}", False, "marac")
    if red_flag.fired and red_flag.effect == "high":
        return Trigger("red_flag_high", "high", "the red-flag rule gave high", True, "marac")
    return Trigger("red_flag_high", "none", "the red-flag rule did not give high", False, "marac")


def _judgement_trigger(
    judgement: Judgement,
    rank: int,
    levels: Sequence[str] = VICTIM_LEVELS,
    ranks: Mapping[str, int] = VICTIM_RANK,
) -> tuple[Trigger, int]:
    """Professional judgement raises the level, never lowers it (docs/research.md §1.5, [S1.22]);
    a child's (rules v2, rule 7) on the child ladder, given as ``levels`` and ``ranks``.

    A judgement below the level already reached is still recorded, as not fired, so that
    the explanation shows it was considered and why it had no effect.
    """
    judged_rank = ranks[judgement.level]
    current = levels[rank]
    who = f"judged {judgement.level} by {judgement.by} at {judgement.at.isoformat()}"
    if judgement.source != "judgement":
        who += f" ({judgement.source})"
    if judged_rank > rank:
        detail = f"{who}: raises {current} to {judgement.level}"
        return Trigger("professional_judgement", judgement.level, detail, True, "judgement"), (
            judged_rank
        )
    if judged_rank == rank:
        detail = f"{who}: confirms {current}"
        return Trigger("professional_judgement", judgement.level, detail, True, "judgement"), rank
    detail = f"{who}: ignored, below the current level {current}; judgement cannot lower the level"
    return Trigger("professional_judgement", "none", detail, False, "judgement"), rank


def _marac_judgement(
    enabled: bool, judgements: tuple[Judgement, ...], definition_key: str
) -> Trigger:
    """MARAC route 2: professional judgement of high risk (docs/research.md §1.6)."""
    if not enabled:
        return Trigger(
            "professional_judgement", "none", f"disabled in {definition_key}", False, "marac"
        )
    for judgement in judgements:
        if judgement.level == "high":
            detail = f"judged high by {judgement.by} at {judgement.at.isoformat()}"
            return Trigger("professional_judgement", "high", detail, True, "marac")
    return _NO_JUDGEMENT_OF_HIGH


def _potential_escalation(
    checklist: VictimChecklistDefinition,
    history: History,
    incident: Incident,
    local: dt.datetime,
    figures: list[Figure],
) -> Trigger:
    """MARAC route 3: this incident plus the victim's DA incidents in the window before it
    reach N (default 3 in 12 months), taking the larger of the stored and reported counts
    (docs/contract.md "Scoring defaults" item 3; docs/research.md §1.6).

    Stored incidents count when ``window start ≤ occurred_at < this incident``. The
    reported count covers 12 months, so it is used only when the window is at least that
    long (then it is a lower bound); for a shorter window it would overstate the count.
    """
    config = checklist.marac
    window = config.escalation_window_months
    victim = history.victim
    ref = victim.person_ref
    stored_ids: tuple[str, ...] = ()
    if victim.stored_prior_incidents:
        start = _months_before_datetime(local, window)
        occurred_at = incident.occurred_at
        stored_ids = tuple(
            stored.incident_id
            for stored in victim.stored_prior_incidents
            if start <= stored.occurred_at < occurred_at
        )
    reported = victim.reported_prior_incidents_12m
    reported_usable = reported is not None and window >= REPORTED_WINDOW_MONTHS
    parts = []
    if reported is not None:
        figures.append(Figure(ref, "prior_da_incidents_12m", "reported", reported))
        parts.append(
            f"reported {reported}"
            if reported_usable
            else f"reported {reported} not used: it covers 12 months, the window is {window}"
        )
    else:
        parts.append("none reported")
    if history.stored_consulted:
        figures.append(
            Figure(ref, f"prior_da_incidents_{window}m", "stored", len(stored_ids), stored_ids)
        )
        parts.append(
            f"stored {len(stored_ids)}" + (f" [{', '.join(stored_ids)}]" if stored_ids else "")
        )
    else:
        parts.append("stored history not consulted")
    if not config.potential_escalation:
        return Trigger(
            "potential_escalation", "none", f"disabled in {checklist.ref.key}", False, "marac"
        )
    prior = max(len(stored_ids), reported if reported_usable and reported is not None else 0)
    total = 1 + prior
    needed = config.escalation_incidents
    fired = total >= needed
    detail = (
        f"this incident + {prior} earlier in {window} months = {total} "
        f"{'≥' if fired else '<'} {needed} ({'; '.join(parts)})"
    )
    return Trigger("potential_escalation", "high" if fired else "none", detail, fired, "marac")


def _repeat_marac(
    checklist: VictimChecklistDefinition,
    history: History,
    incident_date: dt.date,
    figures: list[Figure],
) -> Trigger:
    """MARAC route 4: a MARAC referral for this victim within the window (12 months) before
    the incident, stored or reported (docs/contract.md item 3; docs/research.md §1.6 "repeat
    Marac").

    The window includes its first day and the incident's own date; a referral dated after
    the incident is not "before" it and does not count.
    """
    config = checklist.marac
    window = config.repeat_window_months
    victim = history.victim
    candidates: list[tuple[str, dt.date]] = []
    if victim.reported_last_marac_referral is not None:
        referred_on = victim.reported_last_marac_referral
        figures.append(
            Figure(victim.person_ref, "last_marac_referral", "reported", referred_on.isoformat())
        )
        candidates.append(("reported", referred_on))
    stored = victim.stored_last_marac_referral
    if stored is not None:
        figures.append(
            Figure(
                victim.person_ref,
                "last_marac_referral",
                "stored",
                stored.referred_on.isoformat(),
                (stored.incident_id,),
            )
        )
        candidates.append((f"stored, incident {stored.incident_id}", stored.referred_on))
    if not config.repeat_marac:
        return Trigger("repeat_marac", "none", f"disabled in {checklist.ref.key}", False, "marac")
    if not candidates:
        where = "reported or stored" if history.stored_consulted else "reported"
        return Trigger("repeat_marac", "none", f"no earlier MARAC referral {where}", False, "marac")
    start = _months_before_date(incident_date, window)
    within = [(source, day) for source, day in candidates if start <= day <= incident_date]
    if within:
        source, day = max(within, key=lambda c: c[1])
        detail = f"MARAC referral on {day.isoformat()} ({source}) is within {window} months before"
        return Trigger("repeat_marac", "high", detail, True, "marac")
    described = "; ".join(f"{day.isoformat()} ({source})" for source, day in candidates)
    detail = (
        f"no MARAC referral within {window} months before {incident_date.isoformat()}: {described}"
    )
    return Trigger("repeat_marac", "none", detail, False, "marac")


# --- Children --------------------------------------------------------------------------


def _assess_children(
    incident: Incident,
    history: History,
    definition: ChildRiskDefinition,
    victim_level: VictimLevel,
    answered: _Answers,
    incident_date: dt.date,
    figures: list[Figure],
    judgements: Mapping[str, list[Judgement]],
) -> tuple[ChildAssessment, ...]:
    """Every child's level by the child-risk rules, then the vulnerability step.

    docs/contract.md "Scoring defaults" (children: every child, present or not, unborn included);
    Barnardo's matrix and its age/vulnerability modifier (docs/research.md §5.1). Rules see the
    victim's final level.
    """
    children = [person for person in incident.persons if person.role == "child"]
    if not children:
        return ()
    answers = answered.effective
    # Rules that read only the victim's level and answers give the same result for every
    # child of the incident: evaluate them once. The per-child rules' slots are filled in
    # for each child.
    shared_context = ChildContext(_NO_DETAILS, False, None, victim_level, answers, 0)
    shared: list[Trigger] = []
    shared_rank = definition.start_rank
    per_child: list[tuple[int, CompiledChildRule]] = []
    for index, rule in enumerate(definition.rules):
        if rule.reads_child:
            per_child.append((index, rule))
            shared.append(rule.not_fired)
        elif rule.predicate(shared_context):
            shared.append(rule.fired)
            shared_rank = max(shared_rank, rule.rank)
        else:
            shared.append(rule.not_fired)
    table = definition.item_table
    shared_items: list[ChildItem] = []
    if definition.uses_victim_level:
        shared_items.append(table[("victim_level", victim_level)])
    for item_id in definition.answers_used:
        shown = answered.sources.get(item_id) or answers.get(item_id, "not_asked")
        shared_items.append(table[(item_id, shown)])
    return tuple(
        _assess_child(
            person,
            history,
            definition,
            victim_level,
            answers,
            incident_date,
            figures,
            _SharedRules(shared, shared_rank, per_child, shared_items),
            judgements.get(person.ref, ()),
        )
        for person in children
    )


class _SharedRules(NamedTuple):
    triggers: list[Trigger]
    rank: int
    per_child: list[tuple[int, CompiledChildRule]]
    items: list[ChildItem]


def _assess_child(
    person: Person,
    history: History,
    definition: ChildRiskDefinition,
    victim_level: VictimLevel,
    answers: Mapping[str, str],
    incident_date: dt.date,
    figures: list[Figure],
    shared: _SharedRules,
    judgements: Sequence[Judgement],
) -> ChildAssessment:
    details: ChildDetailsLike = person.child if person.child is not None else _NO_DETAILS
    unborn = person.unborn
    age, age_note = _age(person, incident_date)
    child_history = history.child(person.ref)
    prior_ids = child_history.stored_prior_incident_ids if child_history is not None else ()
    if history.stored_consulted:
        figures.append(Figure(person.ref, "prior_incidents", "stored", len(prior_ids), prior_ids))

    context = ChildContext(details, unborn, age, victim_level, answers, len(prior_ids))
    rank = shared.rank
    triggers = shared.triggers.copy()
    for index, rule in shared.per_child:
        if rule.predicate(context):
            triggers[index] = rule.fired
            if rule.rank > rank:
                rank = rule.rank
    rule_rank = rank

    step = definition.step
    if not step.enabled:
        detail = f"disabled in {definition.ref.key}"
        triggers.append(Trigger("vulnerability_step", "none", detail, False, "step"))
    else:
        reasons = []
        if step.unborn and unborn:
            reasons.append("unborn")
        if step.under_age_years is not None and age is not None and age < step.under_age_years:
            reasons.append(f"aged {age}, under {step.under_age_years}")
        if step.disability_or_additional_needs and details.disability_or_additional_needs:
            reasons.append("disability or additional needs")
        if reasons:
            # One step up at most to the top level (docs/contract.md: "never above severe").
            rank = min(rank + step.levels_up, len(CHILD_LEVELS) - 1)
            before, after = CHILD_LEVELS[rule_rank], CHILD_LEVELS[rank]
            change = f"{before} to {after}" if rank > rule_rank else f"already {after}, the highest"
            detail = f"{'; '.join(reasons)}: {change}"
            triggers.append(Trigger("vulnerability_step", after, detail, True, "step"))
        else:
            detail = f"{age_note}; no step"
            triggers.append(Trigger("vulnerability_step", "none", detail, False, "step"))
    # Rules v2, rule 7: a professional judgement raises the child's level, never lowers it.
    for judgement in judgements:
        trigger, rank = _judgement_trigger(judgement, rank, CHILD_LEVELS, CHILD_RANK)
        triggers.append(trigger)

    table = definition.item_table
    items = [by_value[getattr(details, fact)] for fact, by_value in definition.fact_tables]
    items.append(table[("unborn", unborn)])
    items.append(table[("existing_plan", details.existing_plan)])
    items.append(table[("relationship_to_perpetrator", details.relationship_to_perpetrator)])
    items += shared.items
    if definition.uses_prior_incidents:
        items.append(
            ChildItem("prior_incidents", len(prior_ids), "stored", prior_ids)
            if history.stored_consulted
            else ChildItem("prior_incidents", None, "stored")
        )

    response = definition.responses[rank]
    if definition.responses_by_plan and details.existing_plan is not None:
        response = definition.responses_by_plan.get((rank, details.existing_plan), response)
    return ChildAssessment(
        person.ref,
        CHILD_LEVELS[rank],
        CHILD_LEVELS[rule_rank],
        response,
        unborn,
        age,
        tuple(triggers),
        tuple(items),
    )


def _age(person: Person, incident_date: dt.date) -> tuple[int | None, str]:
    """Whole years on the incident date: exact birthday arithmetic.

    Someone born on 29 February is a year older on 1 March in a non-leap year.
    """
    if person.unborn:
        return None, "unborn"
    born = person.date_of_birth
    if born is None:
        return None, "age unknown (no date of birth)"
    if born > incident_date:
        return None, "age unknown (date of birth after the incident date)"
    years = incident_date.year - born.year
    if (incident_date.month, incident_date.day) < (born.month, born.day):
        years -= 1
    return years, f"aged {years}"


# --- Perpetrator -----------------------------------------------------------------------


def _evidence_tables() -> tuple[
    Mapping[tuple[str, str], Evidence], Mapping[tuple[str, bool], Evidence]
]:
    answer_items = (
        "harmed_others",
        "breach_of_bail_or_order",
        "threat_to_kill",
        "weapons_used",
        "substance_or_mental_health",
        "perpetrator_suicidal",
    )
    answers = {
        (item, answer): Evidence("checklist", f"victim_checklist.{item}", answer)
        for item in answer_items
        for answer in ("yes", "no")
    }
    flags: dict[tuple[str, bool], Evidence] = {}
    for field in ("prior_non_da_violence", "prior_custody", "breach_of_conditional_release"):
        for value in (True, False):
            flags[(field, value)] = Evidence("reported", f"perpetrator_history.{field}", value)
    for field in ("weapon_used", "alcohol_involved", "drugs_involved"):
        for value in (True, False):
            flags[(field, value)] = Evidence("incident", f"circumstances.{field}", value)
    return MappingProxyType(answers), MappingProxyType(flags)


# Built once at import, never changed: the evidence objects for every finite value, so
# that profiling a perpetrator mostly looks things up.
_ANSWER_EVIDENCE, _FLAG_EVIDENCE = _evidence_tables()
_WARNING_EVIDENCE = MappingProxyType(
    {
        name: Evidence("reported", "perpetrator_history.warning_markers", name)
        for name in (
            "weapons",
            "firearms",
            "drugs",
            "alcohol",
            "mental_health",
            "self_harm",
            "suicide",
        )
    }
)


_ANSWER_VALUES = ("yes", "no", "unknown", "not_asked", None)
_FLAG_VALUES = (True, False, None)
_PRESENT = (True, False)


def _answer(item: str, value: str | None) -> list[Evidence]:
    # Only yes and no are evidence; unknown and not-asked stay visible in the victim items.
    return [_ANSWER_EVIDENCE[(item, value)]] if value == "yes" or value == "no" else []


def _flag(field: str, value: bool | None) -> list[Evidence]:
    return [] if value is None else [_FLAG_EVIDENCE[(field, value)]]


def _warning(name: str, present: bool) -> list[Evidence]:
    # A warning marker's absence from the list is not evidence of absence.
    return [_WARNING_EVIDENCE[name]] if present else []


def _marker_tables() -> dict[str, Mapping[tuple[object, ...], Marker]]:
    """Every marker except prior_da, for every combination of its (finite) inputs.

    This is where the sources of each marker are defined; the engine looks the marker up
    by the raw values, in the same order as the arguments here.
    """
    tables: dict[str, Mapping[tuple[object, ...], Marker]] = {
        "prior_non_da_violence": {
            (reported, harmed): _marker(
                "prior_non_da_violence",
                _flag("prior_non_da_violence", reported) + _answer("harmed_others", harmed),
            )
            for reported, harmed in product(_FLAG_VALUES, _ANSWER_VALUES)
        },
        "prior_custody": {
            (reported,): _marker("prior_custody", _flag("prior_custody", reported))
            for reported in _FLAG_VALUES
        },
        "breach_of_bail_or_orders": {
            (reported, breach): _marker(
                "breach_of_bail_or_orders",
                _flag("breach_of_conditional_release", reported)
                + _answer("breach_of_bail_or_order", breach),
            )
            for reported, breach in product(_FLAG_VALUES, _ANSWER_VALUES)
        },
        "threats_to_kill": {
            (threat,): _marker("threats_to_kill", _answer("threat_to_kill", threat))
            for threat in _ANSWER_VALUES
        },
        "weapons": {
            (used, weapon_used, weapons, firearms): _marker(
                "weapons",
                _answer("weapons_used", used)
                + _flag("weapon_used", weapon_used)
                + _warning("weapons", weapons)
                + _warning("firearms", firearms),
            )
            for used, weapon_used, weapons, firearms in product(
                _ANSWER_VALUES, _FLAG_VALUES, _PRESENT, _PRESENT
            )
        },
        "substance_or_mental_health": {
            (answer, alcohol, drugs, drugs_w, alcohol_w, mental_w): _marker(
                "substance_or_mental_health",
                _answer("substance_or_mental_health", answer)
                + _flag("alcohol_involved", alcohol)
                + _flag("drugs_involved", drugs)
                + _warning("drugs", drugs_w)
                + _warning("alcohol", alcohol_w)
                + _warning("mental_health", mental_w),
            )
            for answer, alcohol, drugs, drugs_w, alcohol_w, mental_w in product(
                _ANSWER_VALUES, _FLAG_VALUES, _FLAG_VALUES, _PRESENT, _PRESENT, _PRESENT
            )
        },
        "suicidality": {
            (answer, self_harm, suicide): _marker(
                "suicidality",
                _answer("perpetrator_suicidal", answer)
                + _warning("self_harm", self_harm)
                + _warning("suicide", suicide),
            )
            for answer, self_harm, suicide in product(_ANSWER_VALUES, _PRESENT, _PRESENT)
        },
    }
    return {marker_id: MappingProxyType(dict(table)) for marker_id, table in tables.items()}


def _perpetrator_profile(
    incident: Incident,
    history: History,
    answers: Mapping[str, str],
    figures: list[Figure],
) -> PerpetratorProfile:
    """Perpetrator markers and serial status (docs/contract.md "Scoring defaults", perpetrator).

    Markers follow the ODARA history items (docs/research.md §3) and the perpetrator red flags
    of docs/research.md §6. A marker is present when any source says so, absent when a source
    says no and none says yes, and unknown (None) when no source says either way.
    """
    p = history.perpetrator
    c = incident.circumstances
    w = p.reported_warning_markers
    a = answers.get
    prior_da: list[Evidence] = []
    if p.reported_prior_da_incidents_total is not None:
        total = p.reported_prior_da_incidents_total
        prior_da.append(Evidence("reported", "perpetrator_history.prior_da_incidents_total", total))
        figures.append(Figure(p.person_ref, "prior_da_incidents", "reported", total))
    if p.reported_prior_da_victims is not None:
        victims = p.reported_prior_da_victims
        prior_da.append(Evidence("reported", "perpetrator_history.prior_da_victims", victims))
        figures.append(Figure(p.person_ref, "prior_da_victims", "reported", victims))
    if history.stored_consulted:
        counted = p.stored_incident_ids
        prior_da.append(Evidence("stored", "prior_da_incidents", len(counted), counted))
        figures.append(Figure(p.person_ref, "prior_da_incidents", "stored", len(counted), counted))

    t = _MARKER_TABLES
    markers = (
        _marker("prior_da", prior_da),
        t["prior_non_da_violence"][(p.reported_prior_non_da_violence, a("harmed_others"))],
        t["prior_custody"][(p.reported_prior_custody,)],
        t["breach_of_bail_or_orders"][
            (p.reported_breach_of_conditional_release, a("breach_of_bail_or_order"))
        ],
        t["threats_to_kill"][(a("threat_to_kill"),)],
        t["weapons"][(a("weapons_used"), c.weapon_used, "weapons" in w, "firearms" in w)],
        t["substance_or_mental_health"][
            (
                a("substance_or_mental_health"),
                c.alcohol_involved,
                c.drugs_involved,
                "drugs" in w,
                "alcohol" in w,
                "mental_health" in w,
            )
        ],
        t["suicidality"][(a("perpetrator_suicidal"), "self_harm" in w, "suicide" in w)],
    )
    serial, reason = _serial(history, figures)
    return PerpetratorProfile(p.person_ref, markers, serial, reason)


def _marker(marker_id: str, evidence: list[Evidence]) -> Marker:
    present: bool | None = None
    for item in evidence:
        if _is_positive(item.value):
            present = True
            break
        present = False
    return Marker(marker_id, present, tuple(evidence))


def _is_positive(value: bool | int | str | None) -> bool:
    # "yes", a warning-marker name, True and a count above zero say the marker is present.
    if value is True or value is False:
        return value
    if isinstance(value, int):
        return value > 0
    return value is not None and value != "no"


_MARKER_TABLES = _marker_tables()


def _serial(history: History, figures: list[Figure]) -> tuple[bool, str]:
    """Serial when linked to two or more distinct victims in stored records, or when the
    submitting system reports ``prior_da_victims`` ≥ 1 (docs/contract.md; serial = abuse of two or
    more unconnected victims, docs/research.md §6 [S6.20]).

    The stored count includes this incident's victim when the persistence layer has
    resolved the victim to a person id.
    """
    p = history.perpetrator
    reasons: list[str] = []
    serial = False
    reported = p.reported_prior_da_victims
    if reported is not None:
        if reported >= 1:
            serial = True
            reasons.append(f"reported prior_da_victims {reported} ≥ 1")
        else:
            reasons.append("reported prior_da_victims 0")
    else:
        reasons.append("prior_da_victims not reported")
    if history.stored_consulted:
        distinct = {victim.person_id for victim in p.stored_victims}
        incident_ids = sorted({i for victim in p.stored_victims for i in victim.incident_ids})
        if history.victim.person_id is not None:
            distinct.add(history.victim.person_id)
        figures.append(
            Figure(p.person_ref, "distinct_victims", "stored", len(distinct), tuple(incident_ids))
        )
        counted = f" [{', '.join(incident_ids)}]" if incident_ids else ""
        if len(distinct) >= 2:
            serial = True
            reasons.append(f"linked to {len(distinct)} distinct victims (stored{counted}) ≥ 2")
        else:
            reasons.append(f"linked to {len(distinct)} distinct victim(s) (stored{counted})")
    else:
        reasons.append("stored history not consulted")
    return serial, ("serial: " if serial else "not serial: ") + "; ".join(reasons)


# --- Dates -----------------------------------------------------------------------------


def _months_before_date(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier, clamped to the month's last day."""
    month_index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(month_index, 12)
    month += 1
    last_day = _days_in_month(year, month)
    return dt.date(year, month, min(day.day, last_day))


def _months_before_datetime(moment: dt.datetime, months: int) -> dt.datetime:
    earlier = _months_before_date(moment.date(), months)
    return moment.replace(year=earlier.year, month=earlier.month, day=earlier.day)


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (dt.date(year, month + 1, 1) - dt.timedelta(days=1)).day
