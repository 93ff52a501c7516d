"""What-if: re-score stored incidents under a draft checklist or flag-rules version.

A draft is a definition file in the shipped format (a victim checklist, a child-risk
definition or a flag-rules file), validated exactly as the service validates its own
files. The latest assessment of each incident in scope is re-scored from its stored
``inputs`` (incident, history, judgements: what ``reproduce`` re-runs) **twice on the same
inputs**: once with the area's current definitions and once with the draft in place of
the definition of the same id (or of the area's flag rules). Comparing current with draft
isolates the draft's effect; comparing with the stored results would mix in every change
of definitions since each assessment was made.

Nothing is stored. What is compared: victim and child levels, MARAC criteria and the flag
types the versioned rules raise (by dedupe key, so one flag per type and subject). Not
compared: the classifier (its output does not depend on checklists or rules files; it is
not re-run, so ``classifier_elevated`` never differs) and the cross-incident patterns
(they read other incidents' stored rows, not this assessment's inputs).

The engine is pure, so work that a draft cannot change is skipped, never approximated.
A stored result *is* the current result when it names the area's current checklist and
child-risk definition by sha256, was made by this engine version and the classifier did
not raise its level (:func:`stored_keys`; the repository tests this in SQL). Then:

- an incident of an instrument a victim-checklist draft is not for (``dash-ric`` or
  ``dash-police``) is counted from its stored levels, without reading or parsing its
  inputs (the repository sends only the victim level and the count of children at each
  level, columns written with the assessment);
- an incident of the draft's own instrument, when the draft derives effective answers by
  the same rules, has only its victim part scored, under the current definitions and
  under the draft (:func:`app.scoring.engine.assess_victim`, about half of ``assess``,
  under each, by :func:`app.scoring.engine.assess_victim_pair`), and the two compared
  (:func:`victim_unchanged`). The children read only the victim's final level and the
  effective answers, and the perpetrator reads no definition, so when the victim part is
  unchanged nothing is, and the incident is counted from its stored levels; otherwise
  (the few incidents a draft actually changes) it is scored in full on both sides. When
  the draft moves only score thresholds, the incidents at a score it does not change
  (:func:`affected_scores`) are counted from their stored levels without reading their
  inputs at all;
- under a child-risk draft, which changes only the children (the victim's part reads no
  child-risk definition, and the children read the victim's final level), an incident has
  its victim part scored once and its children under both definitions
  (:func:`app.scoring.engine.assess_children_pair`), compared (:func:`children_unchanged`)
  and, when they are the same, counted from its stored levels;
- under a flag-rules draft, which changes no level, an incident is counted from its
  stored levels, and the flags of the changed rules are evaluated on only the parts of
  the assessment those rules read, each scored alone from its inputs
  (:func:`partial_view`, ``app.flags.engine.parts_read``: the victim's part, the
  children's from the stored victim level, the perpetrator's; nothing when they read
  the incident alone);
- every other incident (the few a draft actually changes, or whose stored result is not
  the current one) is scored in full, twice on the same inputs (once if the draft
  cannot change it);
- flag rules are evaluated only when the two results differ in something the flag rules
  read (:func:`parts_changed`: the fields of ``app.flags.engine.AssessmentView``), and
  then only the rules that read a part that differs (:meth:`Scenario.rules_reading`), on
  the engine's own result objects (:class:`EngineView`: no JSON written and validated
  back);
- a flag-rules draft evaluates only the rules that differ between the two versions: the
  flags of identical rules are identical on both sides, and within one version dedupe keys
  are unique, so the difference of the full sets is the difference of those subsets.

The whole stored result is never read back: it is some 12 KB of JSON, and parsing it
costs about as much as the ``assess`` call it would save. Stored inputs are JSON text on
both databases (``json``, not ``jsonb``, on PostgreSQL: reading them is a copy) and are
parsed in one pass by pydantic's JSON parser (:func:`parse_inputs`).

Measured (``bench/whatif_bench.py``, README "Performance"): see the README for the
figures against the 120 s per 1,000,000 target.

Output is aggregates only, suppressed (:mod:`app.reports.suppression`) before it leaves.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import yaml
from pydantic import BaseModel, ConfigDict

from app.contract.bounds import STORED, stored_validator
from app.contract.incident import Incident
from app.contract.levels import (
    CHILD_LEVELS,
    CHILD_RANK,
    VICTIM_LEVELS,
    VICTIM_RANK,
    VictimLevel,
)
from app.flags.calendar import Calendar
from app.flags.engine import (
    AssessmentPart,
    ChildRead,
    FigureRead,
    PerpetratorRead,
    VictimRead,
    flag_keys,
    parts_read,
    rule_parts,
)
from app.flags.ruleset import FlagRule, FlagRulesError, FlagRuleSet, parse_rule_set
from app.flags.vocabulary import FlagType
from app.intake.context import ScoringContext
from app.reports.suppression import Relation, Shown, suppress
from app.scoring.engine import (
    assess,
    assess_children,
    assess_children_pair,
    assess_perpetrator,
    assess_victim,
    assess_victim_pair,
)
from app.scoring.history import History
from app.scoring.judgement import Judgement
from app.scoring.registry import (
    ChildRiskDefinition,
    DefinitionError,
    DefinitionSet,
    VictimChecklistDefinition,
    definition_from_document,
)
from app.scoring.results import (
    ENGINE_VERSION,
    Assessment,
    ChildAssessment,
    Figure,
    Trigger,
    VictimAssessment,
    VictimItem,
)
from app.yamlfiles import load_yaml

DraftKind = Literal["victim_checklist", "child_risk", "flag_rules"]
DRAFT_KINDS: tuple[DraftKind, ...] = ("victim_checklist", "child_risk", "flag_rules")
MAX_DRAFT_BYTES = 256 * 1024
ORIGIN = "draft"


class DraftError(ValueError):
    """A draft that cannot be used. ``problems`` name locations and rules, never values."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


# --------------------------------------------------------------------------- the draft


@dataclass(frozen=True)
class Draft:
    """A validated draft: its kind, ``id@version``, sha256 and the document itself."""

    kind: DraftKind
    key: str
    sha256: str
    document: dict[str, Any]


def parse_draft(source: str | bytes | Mapping[str, Any]) -> Draft:
    """Validate a draft given as YAML or JSON text, or as an already parsed mapping."""
    if isinstance(source, str | bytes):
        raw = source.encode() if isinstance(source, str) else source
        if len(raw) > MAX_DRAFT_BYTES:
            raise DraftError([f"the draft is larger than {MAX_DRAFT_BYTES // 1024} KiB"])
        document = _parse_text(raw)
    else:
        document = dict(source)
    if not isinstance(document, dict):
        raise DraftError(["the draft must be a mapping at the top level"])
    kind = document.get("kind")
    if kind not in ("victim_checklist", "child_risk") and not _looks_like_rules(document):
        raise DraftError(
            ["kind: must be victim_checklist or child_risk (a flag-rules file has no kind)"]
        )
    if kind in ("victim_checklist", "child_risk"):
        try:
            definition = definition_from_document(document, ORIGIN)
        except DefinitionError as exc:
            raise DraftError([exc.problem]) from None
        return Draft(
            "victim_checklist" if kind == "victim_checklist" else "child_risk",
            definition.ref.key,
            definition.ref.sha256,
            document,
        )
    try:
        rules = parse_rule_set(document, origin=ORIGIN)
    except FlagRulesError as exc:
        raise DraftError(list(exc.problems)) from None
    return Draft("flag_rules", rules.key, rules.sha256, document)


def _looks_like_rules(document: Mapping[str, Any]) -> bool:
    return "kind" not in document and "rules" in document


def _parse_text(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="strict") if raw else ""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise DraftError([f"not valid JSON (line {exc.lineno}, column {exc.colno})"]) from None
    if not text.strip():
        raise DraftError(["the draft is empty"])
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        # The parser's message quotes the offending line: say only where it is.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise DraftError([f"not valid YAML{where}"]) from None


# --------------------------------------------------------------------------- scenario


@dataclass(frozen=True)
class ScenarioSpec:
    """Everything a worker process needs, as plain data (picklable): the area's current
    definitions and rules as documents, the calendar, and the draft."""

    victim_checklists: tuple[dict[str, Any], ...]
    child_risk: dict[str, Any]
    flag_rules: dict[str, Any]
    calendar: Calendar
    draft: Draft
    # Count rows the draft cannot change from their stored result where it is the current
    # result (see :func:`stored_keys`); False scores every row (the tests compare).
    use_stored: bool = True

    @classmethod
    def for_area(
        cls, context: ScoringContext, area: str, draft: Draft, *, use_stored: bool = True
    ) -> ScenarioSpec:
        definitions = context.definition_set(area)
        spec = cls(
            victim_checklists=tuple(d.document() for d in definitions.victim_checklists.values()),
            child_risk=definitions.child_risk.document(),
            flag_rules=context.rules(area).document(),
            calendar=context.calendar,
            draft=draft,
            use_stored=use_stored,
        )
        spec.build()  # refuses a draft that does not fit the area (DraftError)
        return spec

    def stored_keys(self) -> StoredKeys | None:
        """Which stored results may stand for the current side (None: none)."""
        return self.build().stored_keys

    def build(self) -> Scenario:
        victims = [_victim(definition_from_document(d, "current")) for d in self.victim_checklists]
        current = DefinitionSet(
            victim_checklists={v.ref.id: v for v in victims},
            child_risk=_child(definition_from_document(self.child_risk, "current")),
        )
        rules = parse_rule_set(self.flag_rules, origin="current")
        draft = current
        draft_rules = rules
        instruments: frozenset[str] = frozenset()
        kind = self.draft.kind
        if kind == "victim_checklist":
            victim = _victim(definition_from_document(self.draft.document, ORIGIN))
            if victim.ref.id not in current.victim_checklists:
                raise DraftError([f"id: this area does not use a {victim.ref.id} checklist"])
            victim = _sharing(victim, current.victim_checklists[victim.ref.id])
            draft = dataclasses.replace(
                current, victim_checklists={**current.victim_checklists, victim.ref.id: victim}
            )
            instruments = frozenset({victim.ref.id})
        elif kind == "child_risk":
            child = _child(definition_from_document(self.draft.document, ORIGIN))
            draft = dataclasses.replace(current, child_risk=child)
            instruments = frozenset(current.victim_checklists)
        else:
            draft_rules = parse_rule_set(self.draft.document, origin=ORIGIN)
        changed = _changed_rules(rules, draft_rules) if kind == "flag_rules" else None
        return Scenario(
            kind=kind,
            current=current,
            draft=draft,
            rules=rules,
            draft_rules=draft_rules,
            calendar=self.calendar,
            rescored_instruments=instruments,
            changed_rules=changed,
            stored_keys=(
                stored_keys(current, draft, instruments, kind) if self.use_stored else None
            ),
            flag_parts=(
                parts_read(changed[0]) | parts_read(changed[1]) if changed else frozenset()
            ),
        )


def _sharing(
    draft: VictimChecklistDefinition, current: VictimChecklistDefinition
) -> VictimChecklistDefinition:
    """``draft`` with the parts it has equal to ``current``'s (its effective-answer rules,
    its items' tables) as ``current``'s very objects: the same definition (equal in every
    field), on which the per-incident comparisons are cheap. :func:`assess_victim_pair`
    sees by identity that the effective answers are the same under both, and the items
    built from shared tables are the same objects, so :func:`victim_unchanged` finds the
    two sides' items equal without comparing item by item."""
    if draft.effective_answers == current.effective_answers:
        draft = dataclasses.replace(draft, effective_answers=current.effective_answers)
    if draft.item_tables == current.item_tables:
        draft = dataclasses.replace(draft, item_tables=current.item_tables)
    return draft


def _victim(definition: object) -> VictimChecklistDefinition:
    if not isinstance(definition, VictimChecklistDefinition):  # pragma: no cover - by kind
        raise DraftError(["kind: expected a victim checklist"])
    return definition


def _child(definition: object) -> ChildRiskDefinition:
    if not isinstance(definition, ChildRiskDefinition):  # pragma: no cover - by kind
        raise DraftError(["kind: expected a child-risk definition"])
    return definition


def _changed_rules(current: FlagRuleSet, draft: FlagRuleSet) -> tuple[FlagRuleSet, FlagRuleSet]:
    """Both versions cut down to the rules that differ (by id: absent, added or changed)."""
    before = {r.id: r for r in current.rules}
    after = {r.id: r for r in draft.rules}
    changed = {i for i in before.keys() | after.keys() if before.get(i) != after.get(i)}
    return _cut(current, lambda r: r.id in changed), _cut(draft, lambda r: r.id in changed)


def _cut(rule_set: FlagRuleSet, keep: Callable[[FlagRule], bool]) -> FlagRuleSet:
    """``rule_set`` with only the rules ``keep`` keeps (a copy: compiled on its own first
    use, never sharing the whole set's compiled form)."""
    rules = [r for r in rule_set.spec.rules if keep(r)]
    return dataclasses.replace(rule_set, spec=rule_set.spec.model_copy(update={"rules": rules}))


@dataclass(frozen=True)
class StoredKeys:
    """Which stored results stand for the current side (see :func:`stored_keys`): those
    of an assessment of one of these instruments that names the area's current checklist
    of its instrument and current child-risk definition (by sha256), was made by this
    engine version and whose level the classifier did not raise. For an instrument in
    ``untouched`` the draft cannot change the result either: such a row is counted from
    its stored levels alone. For the others (a victim-checklist draft's own instrument)
    only the victim's part is scored, under both definitions (:func:`victim_unchanged`),
    and not even that at a score a threshold-only draft does not change."""

    victim_checklists: Mapping[str, str]  # instrument id -> sha256 of the current checklist
    child_risk: str
    untouched: frozenset[str]
    # For an instrument whose draft moves only score thresholds: the checklist scores at
    # which the victim's part can change (:func:`affected_scores`). A row at any other
    # score is counted from its stored levels like an untouched one.
    affected_scores: Mapping[str, frozenset[int]] = field(default_factory=dict)
    engine_version: str = ENGINE_VERSION


def stored_keys(
    current: DefinitionSet, draft: DefinitionSet, rescored: frozenset[str], kind: DraftKind
) -> StoredKeys | None:
    """The stored results that can stand for the current side, without scoring it.

    An assessment's stored result is the current result when it names the area's current
    definitions by sha256, was made by this engine version (the engine is pure: same inputs,
    definitions and engine give the same result, which is what ``reproduce`` checks), and
    the classifier did not raise the victim's level (the only change the pipeline makes to
    what the engine gave; the repository checks all three).

    - Where the draft cannot change the result (an instrument a victim-checklist draft is
      not for), the draft's result is the same: the row is counted from its stored levels.
    - For a victim-checklist draft's own instrument, when the draft derives effective
      answers by the same rules, the children (which read the victim's final level and the
      effective answers) and the perpetrator (which reads no definition) can only change
      if the victim's part does: the row is counted from its stored levels when the draft's
      victim part (:func:`app.scoring.engine.assess_victim`) equals the stored one in
      everything the children, MARAC and the flag rules read, and scored in full otherwise.
    - Of those, where the draft moves only score thresholds, an incident at a score the
      draft does not change (:func:`affected_scores`; the score is a column) is counted
      from its stored levels without its inputs being read.
    - A flag-rules draft changes no level and no MARAC criterion: every row is counted from
      its stored levels, and its inputs read for the flags of the changed rules, which are
      evaluated on the parts of the assessment they read, scored from the inputs
      (``Scenario.flag_parts``; none when they read the incident alone).
    - A child-risk draft changes only the children (the victim's part reads no child-risk
      definition): the row is counted from its stored levels when the children's part
      under the draft (:func:`app.scoring.engine.assess_children_pair`) equals the current
      one in everything the tally and the flag rules read, and scored in full otherwise.
    """
    if kind == "flag_rules":
        instruments = sorted(current.victim_checklists)
        return StoredKeys(
            {i: current.victim_checklists[i].ref.sha256 for i in instruments},
            current.child_risk.ref.sha256,
            frozenset(),
        )
    untouched = frozenset(current.victim_checklists) - rescored
    usable = set(untouched)
    if kind == "child_risk":
        usable = set(current.victim_checklists)
    elif kind == "victim_checklist":
        usable |= {
            i
            for i in rescored
            if current.victim_checklists[i].effective_answers
            == draft.victim_checklists[i].effective_answers
        }
    if not usable:
        return None
    affected = {
        i: scores
        for i in sorted(usable - untouched)
        if kind == "victim_checklist"  # a child-risk draft's checklists are the current ones
        and (scores := affected_scores(current.victim_checklists[i], draft.victim_checklists[i]))
        is not None
    }
    return StoredKeys(
        {i: current.victim_checklists[i].ref.sha256 for i in sorted(usable)},
        current.child_risk.ref.sha256,
        untouched,
        affected,
    )


def affected_scores(
    current: VictimChecklistDefinition, draft: VictimChecklistDefinition
) -> frozenset[int] | None:
    """When ``draft`` differs from ``current`` only in its score thresholds (the bands and
    the visible-high-risk criterion's score): the checklist scores at which the victim's
    part can differ, that is where the band's level or whether visible-high-risk fires
    differs. The engine reads those two only through the tables indexed by the score
    (``band_levels``, ``band_triggers``, ``visible_high_risk_triggers``), so at any other
    score the victim's part, and with it the whole assessment, is unchanged. None when the
    draft differs in anything else (its items, labels, red flags, other MARAC criteria,
    rules v2 sections): then every incident of the instrument is scored."""
    if len(draft.band_levels) != len(current.band_levels):
        return None
    neutral = dataclasses.replace(
        draft,
        ref=current.ref,
        canonical=current.canonical,
        thresholds=current.thresholds,
        band_levels=current.band_levels,
        band_triggers=current.band_triggers,
        visible_high_risk_triggers=current.visible_high_risk_triggers,
        marac=dataclasses.replace(
            draft.marac, visible_high_risk_from=current.marac.visible_high_risk_from
        ),
    )
    if neutral != current:
        return None
    return frozenset(
        score
        for score, (level, visible) in enumerate(
            zip(current.band_levels, current.visible_high_risk_triggers, strict=True)
        )
        if draft.band_levels[score] != level
        or draft.visible_high_risk_triggers[score].fired != visible.fired
    )


@dataclass(frozen=True)
class Scenario:
    """The compiled current and draft definitions of one what-if."""

    kind: DraftKind
    current: DefinitionSet
    draft: DefinitionSet
    rules: FlagRuleSet
    draft_rules: FlagRuleSet
    calendar: Calendar
    # Instruments whose results the draft can change (all of them for a child-risk draft).
    rescored_instruments: frozenset[str]
    # A flag-rules draft: (current, draft) cut down to the rules that differ.
    changed_rules: tuple[FlagRuleSet, FlagRuleSet] | None
    # None: no stored result is counted as it is (every row is scored).
    stored_keys: StoredKeys | None = None
    # A flag-rules draft: the parts of an assessment its changed rules read (both sides).
    flag_parts: frozenset[AssessmentPart] = frozenset()
    # The area's rules cut down to those reading some of these parts (:meth:`rules_reading`).
    cuts: dict[frozenset[AssessmentPart], FlagRuleSet] = field(
        default_factory=dict, compare=False, repr=False
    )

    def rules_reading(self, parts: frozenset[AssessmentPart]) -> FlagRuleSet:
        """The area's flag rules that read any of ``parts`` of an assessment (its other
        rules raise the same flags on two assessments that differ in those parts only),
        cut once per set of parts and kept (compiled on first use)."""
        cut = self.cuts.get(parts)
        if cut is None:
            cut = self.cuts[parts] = _cut(self.rules, lambda r: bool(rule_parts(r) & parts))
        return cut


# --------------------------------------------------------------------------- counting


@dataclass
class Tally:
    """What changed, counted; tallies from several workers add up (:meth:`merge`)."""

    incidents: int = 0
    failed: int = 0
    # How many were counted from their stored result, not scored (not part of the report,
    # nor of equality: the same answer however it was reached).
    stored: int = field(default=0, compare=False)
    victims: Counter[tuple[str, str]] = field(default_factory=Counter)
    children: Counter[tuple[str, str]] = field(default_factory=Counter)
    marac_appearing: Counter[str] = field(default_factory=Counter)
    marac_disappearing: Counter[str] = field(default_factory=Counter)
    flags_appearing: Counter[str] = field(default_factory=Counter)
    flags_disappearing: Counter[str] = field(default_factory=Counter)

    def merge(self, other: Tally) -> Tally:
        self.incidents += other.incidents
        self.failed += other.failed
        self.stored += other.stored
        self.victims.update(other.victims)
        self.children.update(other.children)
        self.marac_appearing.update(other.marac_appearing)
        self.marac_disappearing.update(other.marac_disappearing)
        self.flags_appearing.update(other.flags_appearing)
        self.flags_disappearing.update(other.flags_disappearing)
        return self


def victim_view(v: VictimAssessment) -> tuple[Any, ...]:
    """What the flag rules and the children read of the victim's part (level, which
    triggers fired, the MARAC decision, the items' answers)."""
    return (
        v.level,
        _trigger_view(v.triggers),
        v.marac.refer,
        v.marac.criteria,
        _item_view(v.items),
    )


def _trigger_view(triggers: Sequence[Trigger]) -> tuple[tuple[str, bool], ...]:
    return tuple((t.rule, t.fired) for t in triggers)


def _item_view(items: Sequence[VictimItem]) -> tuple[tuple[str, str, str | None], ...]:
    return tuple((i.id, i.answer, i.effective_answer) for i in items)


def parts_changed(before: Assessment, after: Assessment) -> frozenset[AssessmentPart]:
    """The parts of two assessments of one incident that differ in what the flag rules read
    of them (``app.flags.engine.AssessmentRead``; ``app.flags.engine.parts_read`` names
    the parts): the victim's (level, triggers fired, MARAC decision, answers, and the
    victim's history figures), the children's (level and age of each) and the
    perpetrator's (serial, markers). Empty: the same flags on both."""
    parts: set[AssessmentPart] = set()
    if not same_victim_view(before.victim, after.victim) or _victim_figures(
        before
    ) != _victim_figures(after):
        parts.add("victim")
    if _children_view(before.children) != _children_view(after.children):
        parts.add("children")
    if _perpetrator_view(before) != _perpetrator_view(after):
        parts.add("perpetrator")
    return frozenset(parts)


def _victim_figures(a: Assessment) -> tuple[tuple[str, str, Any], ...]:
    ref = a.victim.person_ref
    return tuple((f.name, f.source, f.value) for f in a.history if f.subject == ref)


def _perpetrator_view(a: Assessment) -> tuple[Any, ...]:
    return (a.perpetrator.serial, tuple((m.id, m.present) for m in a.perpetrator.markers))


class _StoredInputs(BaseModel):
    """Stored ``inputs`` parsed in one pass from their JSON text: pydantic's JSON parser
    builds the incident model directly, without an intermediate dict (about a fifth of
    the cost of ``orjson.loads`` followed by ``stored_incident``, with the same model).
    Constructing the models without validation (``model_construct``, or setting their
    fields directly, with the dates and times parsed) was tried and measured no faster:
    building some fifteen nested models in Python costs what pydantic-core's validation
    of them costs."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    incident: Incident
    # Built by pydantic in the same pass, as ``History.from_dict`` builds it from the dict
    # (tests/reports/test_whatif.py holds the two equal): some 12 µs an incident less.
    history: History
    judgements: list[dict[str, Any]] | None = None


# Built once: without intake's plausibility checks at all, rather than calling each (some
# forty per incident) to be told it does not apply to stored inputs; the same instances.
_STORED_INPUTS = stored_validator(_StoredInputs)


def parse_inputs(text: str | bytes) -> tuple[Incident, History, list[Judgement]]:
    """Stored inputs (JSON text) as the engine takes them, loaded as stored (``STORED``:
    as they were accepted, without intake's plausibility checks)."""
    inputs: _StoredInputs = _STORED_INPUTS.validate_json(text, context=STORED)
    return (
        inputs.incident,
        inputs.history,
        [Judgement.from_dict(j) for j in inputs.judgements or ()],
    )


# A row as the repository reads it: the instrument (victim checklist id), the stored victim
# level and the stored count of children at each level (``CHILD_LEVELS`` order) of an
# assessment whose stored result is the current result (else None, None), and its stored
# inputs (JSON text; None when the draft cannot change that result).
Row = tuple[str, str | None, tuple[int, ...] | None, str | bytes | None]


def rescore(scenario: Scenario, row: Row, tally: Tally) -> None:
    """Count the differences between the current and the draft results of one stored
    assessment into ``tally``."""
    _, stored_level, stored_children, inputs = row
    if inputs is None:
        # The stored result is the current result and the draft cannot change it.
        _count_stored(stored_level, stored_children, tally)
        return
    parsed = parse_inputs(inputs)
    if stored_level is not None:  # the stored result is the current result
        if scenario.kind == "flag_rules":  # which changes only flags
            view = partial_view(
                scenario.flag_parts, *parsed[:2], scenario.current, parsed[2], stored_level
            )
            flags = _changed_rule_flags(scenario, parsed[0], view)
            _count_stored(stored_level, stored_children, tally)
            _count_flag_changes(*flags, tally)
            return
        if (
            children_unchanged(scenario, *parsed, victim_level=stored_level)
            if scenario.kind == "child_risk"
            else victim_unchanged(scenario, *parsed)
        ):  # and the draft's is the same
            _count_stored(stored_level, stored_children, tally)
            return
    _count_scored(scenario, *parsed, tally)


def _count_stored(level: str | None, children: Sequence[int] | None, tally: Tally) -> None:
    """An incident the draft does not change, counted from its stored levels."""
    if level is None or children is None:
        raise ValueError("a row counted from its stored result needs the stored levels")
    tally.incidents += 1
    tally.stored += 1
    tally.victims[(level, level)] += 1
    for child_level, count in zip(CHILD_LEVELS, children, strict=True):
        if count:
            tally.children[(child_level, child_level)] += count


def _count_scored(
    scenario: Scenario,
    incident: Incident,
    history: History,
    judgements: list[Judgement],
    tally: Tally,
) -> None:
    # Everything that can fail is worked out before anything is counted: a row that
    # fails is counted as failed, and as nothing else.
    before = assess(incident, history, scenario.current, judgements)
    touched = incident.victim_checklist.instrument in scenario.rescored_instruments
    after = assess(incident, history, scenario.draft, judgements) if touched else before
    flags: tuple[Mapping[str, str], Mapping[str, str]] | None = None
    if scenario.changed_rules is not None:
        flags = _changed_rule_flags(scenario, incident, EngineView.of(before))
    elif touched and (changed := parts_changed(before, after)):
        # Only the rules reading a part that differs can raise other flags.
        rules = [scenario.rules_reading(changed)]
        (flags_before,) = flag_keys(incident, EngineView.of(before), rules)
        (flags_after,) = flag_keys(incident, EngineView.of(after), rules)
        flags = (flags_before, flags_after)
    levels_after = {c.person_ref: c.level for c in after.children}
    children = [(child.level, levels_after[child.person_ref]) for child in before.children]
    tally.incidents += 1
    tally.victims[(before.victim.level, after.victim.level)] += 1
    tally.children.update(children)
    if before.victim.marac.criteria != after.victim.marac.criteria:
        criteria_before = set(before.victim.marac.criteria)
        criteria_after = set(after.victim.marac.criteria)
        tally.marac_appearing.update(criteria_after - criteria_before)
        tally.marac_disappearing.update(criteria_before - criteria_after)
    if flags is not None:
        _count_flag_changes(*flags, tally)


def _changed_rule_flags(
    scenario: Scenario, incident: Incident, view: EngineView
) -> tuple[dict[str, FlagType], dict[str, FlagType]]:
    """A flag-rules draft: the flags of the changed rules of each version, on one view."""
    if scenario.changed_rules is None:  # pragma: no cover - only for a flag-rules draft
        raise ValueError("not a flag-rules draft")
    before, after = flag_keys(incident, view, scenario.changed_rules)
    return before, after


def _count_flag_changes(before: Mapping[str, str], after: Mapping[str, str], tally: Tally) -> None:
    tally.flags_appearing.update(t for k, t in after.items() if k not in before)
    tally.flags_disappearing.update(t for k, t in before.items() if k not in after)


def partial_view(
    parts: frozenset[AssessmentPart],
    incident: Incident,
    history: History,
    definitions: DefinitionSet,
    judgements: Sequence[Judgement],
    victim_level: str | None = None,
) -> EngineView:
    """The ``parts`` of the assessment flag rules read (``app.flags.engine.parts_read``),
    and only those, scored under ``definitions``: the victim's part
    (:func:`app.scoring.engine.assess_victim`, with its history figures) when they read
    it, the children's (:func:`app.scoring.engine.assess_children`, from the victim's
    final level: the one just scored, else ``victim_level`` when given, the stored one
    where the stored result is the current result) when they read them, the
    perpetrator's (:func:`app.scoring.engine.assess_perpetrator`) when they read it. A
    part not scored is not there: reading it fails (the row counts as failed); it never
    passes for empty. No classifier: the what-if does not re-run it."""
    victim: Any = NOT_SCORED
    perpetrator: Any = NOT_SCORED
    figures: tuple[Figure, ...] = ()
    children: tuple[ChildAssessment, ...] = ()
    if "victim" in parts:
        victim, figures = assess_victim(incident, history, definitions, judgements)
        victim_level = victim.level
    if "children" in parts:
        level = _victim_level(victim_level)
        children = assess_children(incident, history, definitions, judgements, level)
    if "perpetrator" in parts:
        perpetrator = assess_perpetrator(incident, history)
    return EngineView(victim, children, perpetrator, figures)


def _victim_level(level: str | None) -> VictimLevel | None:
    """A victim level read from a stored column, checked (a row with another value counts
    as failed, never guessed)."""
    if level is not None and level not in VICTIM_RANK:
        raise ValueError("not a victim level")
    return cast(VictimLevel | None, level)


def victim_unchanged(
    scenario: Scenario, incident: Incident, history: History, judgements: list[Judgement]
) -> bool:
    """Whether the draft leaves the victim's part of the assessment as the current
    definitions make it (:func:`app.scoring.engine.assess_victim` under both, by
    :func:`app.scoring.engine.assess_victim_pair`), in everything the children, MARAC and
    the flag rules read: the level, which triggers fired, the MARAC decision, the items'
    answers, and the victim's history figures (:func:`victim_view`).
    :func:`stored_keys` allows the question only where the draft is a victim checklist
    that derives effective answers as the current one does, so the children (which read
    the victim's final level and the effective answers) and the perpetrator (which reads
    no definition) are then unchanged too. When it is not unchanged, the incident is
    scored in full on both sides (nothing here is approximated)."""
    (before, before_figures), (after, after_figures) = assess_victim_pair(
        incident, history, scenario.current, scenario.draft, judgements
    )
    return same_victim_view(before, after) and before_figures == after_figures


def children_unchanged(
    scenario: Scenario,
    incident: Incident,
    history: History,
    judgements: list[Judgement],
    victim_level: str | None = None,
) -> bool:
    """Whether a child-risk draft leaves the children's part as the current definition
    makes it (:func:`app.scoring.engine.assess_children_pair`), in everything the tally
    and the flag rules read of it: each child's level and age. The victim's part and the
    perpetrator's read no child-risk definition, so nothing else can change. The
    victim's final level, which the children read, is scored unless given: the what-if
    gives the stored one, where the stored result is the current result."""
    before, after = assess_children_pair(
        incident,
        history,
        scenario.current,
        scenario.draft,
        judgements,
        victim_level=_victim_level(victim_level),
    )
    return _children_view(before) == _children_view(after)


def _children_view(children: Sequence[ChildAssessment]) -> tuple[Any, ...]:
    return tuple((c.person_ref, c.level, c.age_years) for c in children)


def same_victim_view(before: VictimAssessment, after: VictimAssessment) -> bool:
    """``victim_view(before) == victim_view(after)``, cheaper: the parts are compared
    whole first (equal wholes have equal views; items from tables both definitions share
    are the same objects, see :func:`_sharing`), and as views only when they differ."""
    return (
        before.level == after.level
        and before.marac == after.marac
        and (
            before.triggers == after.triggers
            or _trigger_view(before.triggers) == _trigger_view(after.triggers)
        )
        and (before.items == after.items or _item_view(before.items) == _item_view(after.items))
    )


class _NotScored:
    """A part of an assessment that was not scored (:func:`partial_view`)."""

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"{name}: this part of the assessment was not scored")


NOT_SCORED: Any = _NotScored()


@dataclass(frozen=True, slots=True)
class EngineView:
    """What the flag rules read of an assessment (``app.flags.engine.AssessmentRead``),
    as the scoring engine's own objects: the engine's victim, children, perpetrator and
    history parts have the attributes the rules read, so the flag engine takes them as
    they are, rather than the assessment written out as JSON (``to_dict``) and validated
    back into an ``AssessmentView`` (about 120 µs an incident, more than scoring it). No
    classifier: the what-if does not re-run it (a draft cannot change its output)."""

    victim: VictimRead
    children: Sequence[ChildRead]
    perpetrator: PerpetratorRead
    history: Sequence[FigureRead]
    classifier: None = None

    @classmethod
    def of(cls, a: Assessment) -> EngineView:
        return cls(a.victim, a.children, a.perpetrator, a.history)


def rescore_rows(scenario: Scenario, rows: Iterable[Row]) -> Tally:
    """Re-score a batch of stored rows; a row that cannot be re-scored (an input the
    engine refuses) is counted as failed, never fatal."""
    tally = Tally()
    for row in rows:
        try:
            rescore(scenario, row, tally)
        except Exception:  # counted and reported: one bad row must not end a run
            tally.failed += 1
    return tally


# --------------------------------------------------------------------------- running

_WORKER_SCENARIO: Scenario | None = None


def _init_worker(spec: ScenarioSpec) -> None:
    global _WORKER_SCENARIO  # one scenario per worker process, built once
    _WORKER_SCENARIO = spec.build()


def _work(rows: list[Row]) -> Tally:
    assert _WORKER_SCENARIO is not None  # noqa: S101 - set by the initializer
    return rescore_rows(_WORKER_SCENARIO, rows)


Progress = Callable[[int], None]


def run(
    spec: ScenarioSpec,
    batches: Iterator[list[Row]],
    *,
    workers: int = 1,
    progress: Progress | None = None,
) -> Tally:
    """Re-score every batch; with ``workers`` > 1 in a process pool, at most two batches
    per worker in flight (the rows are streamed: never all in memory)."""
    total = Tally()
    if workers <= 1:
        scenario = spec.build()
        for batch in batches:
            total.merge(rescore_rows(scenario, batch))
            if progress is not None:
                progress(len(batch))
        return total
    # fork: the workers start in milliseconds with the modules already imported; they
    # never touch the parent's database connections (they get rows, not a connection).
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(spec,)) as pool:
        pending: list[tuple[int, Any]] = []
        for batch in batches:
            pending.append((len(batch), pool.apply_async(_work, (batch,))))
            while len(pending) >= 2 * workers:
                _collect(pending.pop(0), total, progress)
        for item in pending:
            _collect(item, total, progress)
    return total


def _collect(item: tuple[int, Any], total: Tally, progress: Progress | None) -> None:
    size, result = item
    total.merge(result.get())
    if progress is not None:
        progress(size)


# --------------------------------------------------------------------------- the report


def _transitions(
    counts: Counter[tuple[str, str]], levels: Sequence[str], rank: Mapping[str, int]
) -> dict[str, Any]:
    """Before→after table with row and column totals, and the numbers changed up, down
    and unchanged, suppressed together (they are all tied to the same cells)."""
    values: dict[tuple[str, str], int] = {}
    relations: list[Relation[tuple[str, str]]] = []
    for b in levels:
        for a in levels:
            values[(b, a)] = counts.get((b, a), 0)
        values[(b, "total")] = sum(values[(b, a)] for a in levels)
        relations.append(Relation(tuple((b, a) for a in levels), (b, "total")))
    for a in [*levels, "total"]:
        values[("total", a)] = sum(values[(b, a)] for b in levels)
        relations.append(Relation(tuple((b, a) for b in levels), ("total", a)))
    relations.append(Relation(tuple(("total", a) for a in levels), ("total", "total")))
    moves = {
        "up": [(b, a) for b in levels for a in levels if rank[a] > rank[b]],
        "down": [(b, a) for b in levels for a in levels if rank[a] < rank[b]],
        "unchanged": [(b, b) for b in levels],
    }
    for name, cells in moves.items():
        values[("change", name)] = sum(values[c] for c in cells)
        relations.append(Relation(tuple(cells), ("change", name)))
    relations.append(Relation(tuple(("change", n) for n in moves), ("total", "total")))
    shown = suppress(values, relations)
    return {
        "before_after": {
            b: {a: shown[(b, a)] for a in [*levels, "total"]} for b in [*levels, "total"]
        },
        "changed": {name: shown[("change", name)] for name in moves},
    }


def _by_name(counter: Counter[str]) -> dict[str, Shown]:
    return suppress(dict(sorted(counter.items())))


def report(
    tally: Tally, *, draft: Draft, area: str, seconds: float | None = None
) -> dict[str, Any]:
    """The published answer: aggregates only, every count suppressed."""
    body: dict[str, Any] = {
        "area": area,
        "draft": {"kind": draft.kind, "key": draft.key, "sha256": draft.sha256},
        "compared": "current definitions of the area vs the draft, on the same stored inputs",
        "incidents": suppress({"rescored": tally.incidents})["rescored"],
        "failed": suppress({"failed": tally.failed})["failed"],
        "victims": _transitions(tally.victims, VICTIM_LEVELS, VICTIM_RANK),
        "children": _transitions(tally.children, CHILD_LEVELS, CHILD_RANK),
        "marac_criteria": {
            "appearing": _by_name(tally.marac_appearing),
            "disappearing": _by_name(tally.marac_disappearing),
        },
        "flags": {
            "appearing": _by_name(tally.flags_appearing),
            "disappearing": _by_name(tally.flags_disappearing),
        },
    }
    if seconds is not None:
        body["seconds"] = round(seconds, 3)
    return body


def audit_detail(tally: Tally, draft: Draft, area: str) -> dict[str, Any]:
    """What the audit event keeps: area, counts and the draft's hash; no person data."""
    changed = sum(n for (b, a), n in tally.victims.items() if b != a)
    return {
        "what_if": 1,
        "area": area,
        "draft_kind": draft.kind,
        "draft_sha256": draft.sha256,
        "incidents": tally.incidents,
        "victims_changed": changed,
    }
