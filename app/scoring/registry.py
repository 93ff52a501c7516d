"""Checklist definitions: versioned data files, validated strictly, compiled once.

"Versioned, published checklist definitions and thresholds; every score says which
definition it used" (docs/brief.md, JTAI finding on inconsistent definitions of harm). Each file
in ``app/scoring/definitions/`` is one version of one definition, named ``<id>@<version>``;
an area adds its own version as a new file, never by changing code or an existing file.

Loading validates every file (unknown keys refused, item ids exactly the instrument's
canonical ids from ``app.contract.items``, thresholds ordered, child-rule conditions within
the vocabulary of ``app.scoring.conditions``) and raises ``DefinitionError`` naming the file
and the problem. Each definition's sha256 is taken over its canonical JSON (RFC 8785), so
comments and layout in the file do not change it but any change of meaning does.

Everything the engine needs per assessment that depends only on the definition (an item's
result for each answer, the score-band trigger for each score, a child rule's trigger when
it fires or not) is built here, once, so that the engine mostly looks things up.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from app.canonical import canonical_json
from app.contract.items import DASH_POLICE_ITEMS, INSTRUMENT_ITEMS
from app.contract.levels import (
    CHILD_LEVELS,
    CHILD_RANK,
    VICTIM_LEVELS,
    VICTIM_RANK,
    ChildLevel,
    VictimLevel,
)
from app.contract.paths import resolve_incident_path
from app.scoring.conditions import (
    ANSWERS,
    CHILD_FACTS,
    EXISTING_PLANS,
    RELATIONSHIPS,
    ConditionError,
    Predicate,
    Uses,
    compile_condition,
)
from app.scoring.results import ChildItem, DefinitionRef, Trigger, VictimItem
from app.yamlfiles import DirectorySignature, directory_signature, load_yaml

DEFAULT_DEFINITIONS_DIR = Path(__file__).resolve().with_name("definitions")
# The shipped defaults (docs/contract.md "Scoring defaults"); an area chooses others by reference.
DEFAULT_VICTIM_CHECKLISTS: tuple[str, ...] = ("dash-ric@2", "dash-police@2")
DEFAULT_CHILD_RISK = "child-risk@2"
# Version 1 stays loadable: every assessment made with it reproduces, and an area may pin
# it (docs/rules.md). A deployment cannot start without either version.
VERSION_1_DEFINITIONS: tuple[str, ...] = ("dash-ric@1", "dash-police@1", "child-risk@1")
DEFINITION_SUFFIXES = (".yaml", ".yml", ".json")

RECOMMENDED_RESPONSES: tuple[str, ...] = (
    "universal_support",
    "early_help",
    "child_in_need_assessment",
    "strategy_discussion",
    # Rules v2: a child already on a plan goes to whoever leads it.
    "notify_lead_professional",
    "notify_allocated_social_worker",
)


class DefinitionError(Exception):
    """A definition file that cannot be used; the message names the file and the problem."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


class UnknownDefinitionError(LookupError):
    """No definition with that id and version is loaded."""


# --- The file format -------------------------------------------------------------------

DefinitionId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]
Version = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=80)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=600)]


class _Strict(BaseModel):
    # strict: a YAML 1 is not the string "1", a YAML yes is not the string "yes".
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SourceNotes(_Strict):
    notes: Text
    citations: Annotated[list[Text], Field(max_length=30)] = []


class ItemDefinition(_Strict):
    id: Identifier
    label: Label
    guidance: Text


class Thresholds(_Strict):
    """Score bands: below ``medium_from`` standard, below ``high_from`` medium, else high."""

    medium_from: Annotated[int, Field(ge=1)]
    high_from: Annotated[int, Field(ge=1)]


class RedFlagRule(_Strict):
    """Any-critical-or-k-aggravating screen-in rule (docs/research.md §4 Lethality Screen, §6)."""

    enabled: bool
    critical_items: Annotated[list[Identifier], Field(min_length=1)]
    aggravating_items: list[Identifier]
    critical_level: VictimLevel
    escalated_level: VictimLevel
    aggravating_needed: Annotated[int, Field(ge=1)]
    criticals_needed: Annotated[int, Field(ge=1)]


class VisibleHighRisk(_Strict):
    enabled: bool
    score_from: Annotated[int, Field(ge=1)]


class ProfessionalJudgementCriterion(_Strict):
    enabled: bool


class PotentialEscalation(_Strict):
    enabled: bool
    # This incident counts, so fewer than two would refer every incident.
    incidents: Annotated[int, Field(ge=2, le=100)]
    window_months: Annotated[int, Field(ge=1, le=120)]


class RepeatMarac(_Strict):
    enabled: bool
    window_months: Annotated[int, Field(ge=1, le=120)]


class RedFlagHigh(_Strict):
    """Rules v2: the red-flag rule's ``high`` is a MARAC criterion of its own."""

    enabled: bool


class MaracCriteria(_Strict):
    visible_high_risk: VisibleHighRisk
    # Absent from version-1 files: then no trigger is recorded, as before.
    red_flag_high: RedFlagHigh | None = None
    professional_judgement: ProfessionalJudgementCriterion
    potential_escalation: PotentialEscalation
    repeat_marac: RepeatMarac


FactValue = bool | str


class EffectiveAnswer(_Strict):
    """Rules v2: an item counts as ``yes`` when the incident records the fact, whatever
    the victim answered (``source`` says which kind of record: ``observed`` by the officer
    at the scene, or ``recorded`` in the incident's structured fields)."""

    item: Identifier
    incident: Annotated[str, StringConstraints(pattern=r"^[a-z_]+(\.[a-z_]+)*$")]
    is_: FactValue | None = Field(default=None, alias="is")
    in_: Annotated[list[FactValue], Field(min_length=1, max_length=20)] | None = Field(
        default=None, alias="in"
    )
    source: Literal["observed", "recorded"]


class VictimPerception(_Strict):
    """Rules v2: the victim's own view of the risk sets a floor (``at_least``)."""

    enabled: bool
    perceived: Annotated[list[VictimLevel], Field(min_length=1)]
    at_least: VictimLevel


class IncompleteAssessment(_Strict):
    """Rules v2: say so when too little is known; never changes the level by itself."""

    enabled: bool
    unknown_from: Annotated[int, Field(ge=1)]
    when_checklist_absent: bool


class VictimChecklistFile(_Strict):
    kind: Literal["victim_checklist"]
    id: DefinitionId
    version: Version
    title: Label
    source: SourceNotes
    items: Annotated[list[ItemDefinition], Field(min_length=1, max_length=100)]
    thresholds: Thresholds
    red_flag: RedFlagRule
    marac: MaracCriteria
    # Rules v2 (docs/rules.md); absent from version-1 files, which then score as before.
    effective_answers: Annotated[list[EffectiveAnswer], Field(max_length=50)] | None = None
    victim_perception: VictimPerception | None = None
    incomplete_assessment: IncompleteAssessment | None = None


class ChildRule(_Strict):
    id: Identifier
    level: ChildLevel
    when: dict[str, Any]
    note: Text | None = None


class VulnerabilityStep(_Strict):
    """One level up for the youngest and most vulnerable (docs/research.md §5.1, DVRIM)."""

    enabled: bool
    levels_up: Annotated[int, Field(ge=1, le=3)]
    unborn: bool
    under_age_years: Annotated[int, Field(ge=1, le=18)] | None
    disability_or_additional_needs: bool


class ChildRiskFile(_Strict):
    kind: Literal["child_risk"]
    id: DefinitionId
    version: Version
    title: Label
    source: SourceNotes
    levels: list[ChildLevel]
    start_level: ChildLevel
    rules: Annotated[list[ChildRule], Field(min_length=1, max_length=200)]
    vulnerability_step: VulnerabilityStep
    recommended_responses: dict[ChildLevel, str]
    # Rules v2: the response for a child already on a plan (level → plan → response);
    # absent from version-1 files.
    responses_by_plan: dict[ChildLevel, dict[str, str]] | None = None


# --- Compiled definitions --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedFlagConfig:
    enabled: bool
    critical_items: tuple[str, ...]
    aggravating_items: tuple[str, ...]
    critical_level: VictimLevel
    escalated_level: VictimLevel
    aggravating_needed: int
    criticals_needed: int
    # Critical then aggravating items: the factors a summary names first.
    key_items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MaracConfig:
    visible_high_risk: bool
    visible_high_risk_from: int
    professional_judgement: bool
    potential_escalation: bool
    escalation_incidents: int
    escalation_window_months: int
    repeat_marac: bool
    repeat_window_months: int
    # None: the definition does not have the criterion (version 1), so no trigger at all.
    red_flag_high: bool | None = None


@dataclass(frozen=True, slots=True)
class EffectiveAnswerRule:
    item: str
    path: str
    accepted: tuple[FactValue, ...]
    source: str
    words: str


@dataclass(frozen=True, slots=True)
class PerceptionConfig:
    enabled: bool
    perceived: tuple[str, ...]
    at_least: VictimLevel


@dataclass(frozen=True, slots=True)
class IncompleteConfig:
    enabled: bool
    unknown_from: int
    when_checklist_absent: bool


@dataclass(frozen=True, slots=True)
class VictimChecklistDefinition:
    ref: DefinitionRef
    title: str
    item_ids: tuple[str, ...]
    labels: Mapping[str, str]
    thresholds: tuple[int, int]
    red_flag: RedFlagConfig
    marac: MaracConfig
    canonical: bytes
    # Precomputed: each item's result per answer, in the order of item_ids.
    item_tables: tuple[Mapping[str, VictimItem], ...]
    # Precomputed by score (0..max_score): the band level and its trigger, and the
    # visible-high-risk criterion's trigger.
    band_levels: tuple[VictimLevel, ...]
    band_triggers: tuple[Trigger, ...]
    visible_high_risk_triggers: tuple[Trigger, ...]
    # Rules v2 (None or empty in version-1 definitions).
    effective_answers: tuple[EffectiveAnswerRule, ...] = ()
    perception: PerceptionConfig | None = None
    incomplete: IncompleteConfig | None = None

    @property
    def shows_sources(self) -> bool:
        """Items say where their effective answer came from (definitions with the rules-v2
        ``effective_answers`` section); version-1 items keep their version-1 shape."""
        return bool(self.effective_answers)

    @property
    def max_score(self) -> int:
        return len(self.item_ids)

    def document(self) -> dict[str, Any]:
        """The published definition (a fresh copy: callers cannot alter the registry)."""
        result: dict[str, Any] = json.loads(self.canonical)
        return result


@dataclass(frozen=True, slots=True)
class CompiledChildRule:
    id: str
    level: ChildLevel
    rank: int
    predicate: Predicate
    words: str
    fired: Trigger
    not_fired: Trigger
    reads_child: bool


@dataclass(frozen=True, slots=True)
class StepConfig:
    enabled: bool
    levels_up: int
    unborn: bool
    under_age_years: int | None
    disability_or_additional_needs: bool


@dataclass(frozen=True, slots=True)
class ChildRiskDefinition:
    ref: DefinitionRef
    title: str
    start_rank: int
    rules: tuple[CompiledChildRule, ...]
    step: StepConfig
    responses: tuple[str, ...]  # by level rank
    # (level rank, existing plan) → response, for a child already on a plan (rules v2).
    responses_by_plan: Mapping[tuple[int, str], str]
    canonical: bytes
    # What each child's ``items`` list, in a fixed order: every child fact (with its
    # ChildItem per value), the existing plan and relationship, and the victim level and
    # answers the rules read.
    fact_tables: tuple[tuple[str, Mapping[bool | None, ChildItem]], ...]
    answers_used: tuple[str, ...]
    uses_victim_level: bool
    uses_prior_incidents: bool
    # Precomputed ChildItem for every (id, value) a finite fact can take.
    item_table: Mapping[tuple[str, Any], ChildItem]

    def document(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.canonical)
        return result


Definition = VictimChecklistDefinition | ChildRiskDefinition


@dataclass(frozen=True, slots=True)
class DefinitionSet:
    """The definitions one assessment uses: a victim checklist per instrument, child-risk."""

    victim_checklists: Mapping[str, VictimChecklistDefinition]
    child_risk: ChildRiskDefinition

    def victim_checklist(self, instrument: str) -> VictimChecklistDefinition:
        try:
            return self.victim_checklists[instrument]
        except KeyError:
            raise UnknownDefinitionError(
                f"no victim checklist for instrument {instrument!r} in this definition set"
            ) from None


class DefinitionRegistry:
    """Every loaded definition, by (id, version). Immutable once built."""

    __slots__ = ("_by_key", "directory")

    def __init__(self, definitions: Mapping[tuple[str, str], Definition], directory: Path) -> None:
        self._by_key: dict[tuple[str, str], Definition] = dict(definitions)
        self.directory = directory

    def __iter__(self) -> Iterator[Definition]:
        for key in sorted(self._by_key):
            yield self._by_key[key]

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, definition_id: str, version: str) -> Definition:
        try:
            return self._by_key[(definition_id, version)]
        except KeyError:
            raise UnknownDefinitionError(f"no definition {definition_id}@{version}") from None

    def get_ref(self, reference: str) -> Definition:
        """Look up ``"id@version"`` (e.g. ``"dash-ric@1"``)."""
        definition_id, sep, version = reference.partition("@")
        if not sep:
            raise UnknownDefinitionError(f"{reference!r} is not of the form id@version")
        return self.get(definition_id, version)

    def versions(self, definition_id: str) -> list[str]:
        return sorted(v for (i, v) in self._by_key if i == definition_id)

    def victim_checklist(self, reference: str) -> VictimChecklistDefinition:
        definition = self.get_ref(reference)
        if not isinstance(definition, VictimChecklistDefinition):
            raise UnknownDefinitionError(f"{reference} is not a victim checklist")
        return definition

    def child_risk(self, reference: str) -> ChildRiskDefinition:
        definition = self.get_ref(reference)
        if not isinstance(definition, ChildRiskDefinition):
            raise UnknownDefinitionError(f"{reference} is not a child-risk definition")
        return definition

    def definition_set(
        self,
        victim_checklists: tuple[str, ...] = DEFAULT_VICTIM_CHECKLISTS,
        child_risk: str = DEFAULT_CHILD_RISK,
    ) -> DefinitionSet:
        """Choose definitions by reference, at most one version per instrument."""
        chosen: dict[str, VictimChecklistDefinition] = {}
        for reference in victim_checklists:
            definition = self.victim_checklist(reference)
            if definition.ref.id in chosen:
                raise UnknownDefinitionError(
                    f"two versions of {definition.ref.id} chosen: "
                    f"{chosen[definition.ref.id].ref.key} and {reference}"
                )
            chosen[definition.ref.id] = definition
        return DefinitionSet(victim_checklists=chosen, child_risk=self.child_risk(child_risk))

    def default_set(self) -> DefinitionSet:
        return self.definition_set()


def load_registry(path: Path = DEFAULT_DEFINITIONS_DIR) -> DefinitionRegistry:
    """Load, validate and compile every definition file in ``path``.

    Raises ``DefinitionError`` for the first file that is not valid, naming it. The shipped
    defaults must be present, so that a deployment cannot start without them.
    """
    if not path.is_dir():
        raise DefinitionError(str(path), "definitions directory not found")
    # The registry is immutable: the same files give the same registry, built once.
    return _load_registry(path.resolve(), directory_signature(path, DEFINITION_SUFFIXES))


@functools.lru_cache(maxsize=32)
def _load_registry(path: Path, signature: DirectorySignature) -> DefinitionRegistry:  # noqa: ARG001 - the cache key
    definitions: dict[tuple[str, str], Definition] = {}
    files = sorted(p for p in path.iterdir() if p.suffix in DEFINITION_SUFFIXES)
    for file in files:
        definition = load_definition_file(file)
        key = (definition.ref.id, definition.ref.version)
        if key in definitions:
            raise DefinitionError(file.name, f"a second file defines {definition.ref.key}")
        definitions[key] = definition
    registry = DefinitionRegistry(definitions, path)
    for reference in (*DEFAULT_VICTIM_CHECKLISTS, DEFAULT_CHILD_RISK, *VERSION_1_DEFINITIONS):
        try:
            registry.get_ref(reference)
        except UnknownDefinitionError:
            raise DefinitionError(
                str(path), f"the default definition {reference} is missing"
            ) from None
    return registry


def load_definition_file(file: Path) -> Definition:
    """Parse, validate and compile one definition file."""
    name = file.name
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(name, f"cannot be read: {exc}") from None
    try:
        raw = json.loads(text) if file.suffix == ".json" else load_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise DefinitionError(name, f"is not valid {file.suffix[1:].upper()}: {exc}") from None
    if not isinstance(raw, dict):
        raise DefinitionError(name, "must contain a mapping at the top level")
    return definition_from_document(raw, name, file)


def definition_from_document(
    raw: dict[str, Any], name: str, file: Path | None = None
) -> Definition:
    """Validate and compile a definition document (a file's content, or a stored snapshot).

    ``file``, when given, must be named after the definition's id and version.
    """
    try:
        canonical = canonical_json(raw)
    except Exception:  # rfc8785 refuses dates, NaN, non-string keys
        raise DefinitionError(
            name, "contains values that are not plain JSON (quote dates and numbers-as-text)"
        ) from None
    sha256 = hashlib.sha256(canonical).hexdigest()
    kind = raw.get("kind")
    try:
        if kind == "victim_checklist":
            victim_file = VictimChecklistFile.model_validate(raw)
            if file is not None:
                _check_file_name(file, victim_file.id, victim_file.version)
            return _compile_victim_checklist(victim_file, sha256, canonical)
        if kind == "child_risk":
            child_file = ChildRiskFile.model_validate(raw)
            if file is not None:
                _check_file_name(file, child_file.id, child_file.version)
            return _compile_child_risk(child_file, sha256, canonical)
    except ValidationError as exc:
        raise DefinitionError(name, _describe(exc)) from None
    except ConditionError as exc:
        raise DefinitionError(name, str(exc)) from None
    except ValueError as exc:
        raise DefinitionError(name, str(exc)) from None
    raise DefinitionError(name, f"kind must be victim_checklist or child_risk, not {kind!r}")


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        loc = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
        problems.append(f"{loc.lstrip('.') or '(top level)'}: {error['msg']}")
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def _check_file_name(file: Path, definition_id: str, version: str) -> None:
    expected = f"{definition_id}@{version}"
    if file.stem != expected:
        raise ValueError(f"file must be named {expected}{file.suffix} to match its id and version")


def _compile_victim_checklist(
    spec: VictimChecklistFile, sha256: str, canonical: bytes
) -> VictimChecklistDefinition:
    if spec.id not in INSTRUMENT_ITEMS:
        raise ValueError(
            f"id {spec.id!r} is not a known instrument; expected one of "
            f"{', '.join(sorted(INSTRUMENT_ITEMS))}"
        )
    canonical_ids = INSTRUMENT_ITEMS[spec.id]
    ids = [item.id for item in spec.items]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"items: duplicate item id(s) {', '.join(duplicates)}")
    unknown = [i for i in ids if i not in canonical_ids]
    if unknown:
        raise ValueError(f"items: unknown item id(s) for {spec.id}: {', '.join(unknown)}")
    missing = [i for i in canonical_ids if i not in ids]
    if missing:
        raise ValueError(f"items: missing item id(s) for {spec.id}: {', '.join(missing)}")
    max_score = len(ids)
    medium_from, high_from = spec.thresholds.medium_from, spec.thresholds.high_from
    if not medium_from < high_from <= max_score:
        raise ValueError(
            f"thresholds: need 1 ≤ medium_from < high_from ≤ {max_score} (the item count); "
            f"got medium_from {medium_from}, high_from {high_from}"
        )
    red_flag = spec.red_flag
    for field_name in ("critical_items", "aggravating_items"):
        listed: list[str] = getattr(red_flag, field_name)
        stray = [i for i in listed if i not in ids]
        if stray:
            raise ValueError(f"red_flag.{field_name}: not items of {spec.id}: {', '.join(stray)}")
        if len(set(listed)) != len(listed):
            raise ValueError(f"red_flag.{field_name}: an item is listed twice")
    both = sorted(set(red_flag.critical_items) & set(red_flag.aggravating_items))
    if both:
        raise ValueError(f"red_flag: items both critical and aggravating: {', '.join(both)}")
    if red_flag.criticals_needed > len(red_flag.critical_items):
        raise ValueError("red_flag.criticals_needed is more than the number of critical items")
    if VICTIM_RANK[red_flag.escalated_level] < VICTIM_RANK[red_flag.critical_level]:
        raise ValueError("red_flag.escalated_level is below red_flag.critical_level")
    visible = spec.marac.visible_high_risk
    if visible.score_from > max_score:
        raise ValueError(
            f"marac.visible_high_risk.score_from {visible.score_from} is above the item "
            f"count {max_score}"
        )

    effective = _compile_effective_answers(spec.effective_answers or [], ids)
    incomplete = spec.incomplete_assessment
    if incomplete is not None and incomplete.unknown_from > max_score:
        raise ValueError(
            f"incomplete_assessment.unknown_from {incomplete.unknown_from} is above the item "
            f"count {max_score}"
        )
    ref = DefinitionRef(spec.id, spec.version, sha256)
    labels = {item.id: item.label for item in spec.items}
    # Version-2 items say where their answer came from; their tables hold the plain
    # "answer" case, and the engine builds an item whose fact decided it when it happens.
    source = "answer" if effective else None
    item_tables = tuple(
        {
            answer: VictimItem(
                item.id,
                answer,  # type: ignore[arg-type]
                1 if answer == "yes" else 0,
                item.label,
                answer if source else None,  # type: ignore[arg-type]
                source,
            )
            for answer in ANSWERS
        }
        for item in spec.items
    )
    band_levels: list[VictimLevel] = []
    band_triggers: list[Trigger] = []
    visible_triggers: list[Trigger] = []
    for score in range(max_score + 1):
        if score >= high_from:
            level: VictimLevel = "high"
            why = f"{score} of {max_score}: {high_from} or more is high"
        elif score >= medium_from:
            level = "medium"
            why = f"{score} of {max_score}: {medium_from} to {high_from - 1} is medium"
        else:
            level = "standard"
            why = f"{score} of {max_score}: below {medium_from} is standard"
        band_levels.append(level)
        band_triggers.append(Trigger("score_band", level, why, True, "score"))
        if not visible.enabled:
            visible_triggers.append(
                Trigger("visible_high_risk", "none", f"disabled in {ref.key}", False, "marac")
            )
        elif score >= visible.score_from:
            visible_triggers.append(
                Trigger(
                    "visible_high_risk",
                    "high",
                    f"{score} of {max_score} ≥ {visible.score_from}",
                    True,
                    "marac",
                )
            )
        else:
            visible_triggers.append(
                Trigger(
                    "visible_high_risk",
                    "none",
                    f"{score} of {max_score} < {visible.score_from}",
                    False,
                    "marac",
                )
            )
    marac = spec.marac
    return VictimChecklistDefinition(
        ref=ref,
        title=spec.title,
        item_ids=tuple(ids),
        labels=labels,
        thresholds=(medium_from, high_from),
        red_flag=RedFlagConfig(
            enabled=red_flag.enabled,
            critical_items=tuple(red_flag.critical_items),
            aggravating_items=tuple(red_flag.aggravating_items),
            critical_level=red_flag.critical_level,
            escalated_level=red_flag.escalated_level,
            aggravating_needed=red_flag.aggravating_needed,
            criticals_needed=red_flag.criticals_needed,
            key_items=(*red_flag.critical_items, *red_flag.aggravating_items),
        ),
        marac=MaracConfig(
            visible_high_risk=visible.enabled,
            visible_high_risk_from=visible.score_from,
            professional_judgement=marac.professional_judgement.enabled,
            potential_escalation=marac.potential_escalation.enabled,
            escalation_incidents=marac.potential_escalation.incidents,
            escalation_window_months=marac.potential_escalation.window_months,
            repeat_marac=marac.repeat_marac.enabled,
            repeat_window_months=marac.repeat_marac.window_months,
            red_flag_high=None if marac.red_flag_high is None else marac.red_flag_high.enabled,
        ),
        canonical=canonical,
        item_tables=item_tables,
        band_levels=tuple(band_levels),
        band_triggers=tuple(band_triggers),
        visible_high_risk_triggers=tuple(visible_triggers),
        effective_answers=effective,
        perception=(
            None
            if spec.victim_perception is None
            else PerceptionConfig(
                spec.victim_perception.enabled,
                tuple(spec.victim_perception.perceived),
                spec.victim_perception.at_least,
            )
        ),
        incomplete=(
            None
            if incomplete is None
            else IncompleteConfig(
                incomplete.enabled, incomplete.unknown_from, incomplete.when_checklist_absent
            )
        ),
    )


def _compile_effective_answers(
    rules: list[EffectiveAnswer], item_ids: list[str]
) -> tuple[EffectiveAnswerRule, ...]:
    """Check each effective-answer rule against the items and the incident contract."""
    compiled: list[EffectiveAnswerRule] = []
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        where = f"effective_answers[{index}]"
        if rule.item not in item_ids:
            raise ValueError(f"{where}.item: {rule.item!r} is not an item of this checklist")
        if rule.item in seen:
            raise ValueError(f"{where}.item: {rule.item!r} has a rule already")
        seen.add(rule.item)
        operators = {"is_", "in_"} & rule.model_fields_set
        if len(operators) != 1:
            raise ValueError(f"{where}: give exactly one of `is` and `in`")
        accepted = tuple(rule.in_) if rule.in_ is not None else (rule.is_,)
        if None in accepted:
            raise ValueError(f"{where}: a fact that is not recorded never makes an answer yes")
        leaf = resolve_incident_path(rule.incident)
        adapter: TypeAdapter[Any] = TypeAdapter(leaf)
        for value in accepted:
            try:
                adapter.validate_python(value, strict=True)
            except ValidationError:
                raise ValueError(
                    f"{where}: {value!r} is not a possible value of {rule.incident}"
                ) from None
        shown = " or ".join(_fact_words(value) for value in accepted)
        compiled.append(
            EffectiveAnswerRule(
                rule.item,
                rule.incident,
                tuple(v for v in accepted if v is not None),
                rule.source,
                f"{rule.incident} = {shown}",
            )
        )
    return tuple(compiled)


def _fact_words(value: FactValue | None) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _compile_child_risk(spec: ChildRiskFile, sha256: str, canonical: bytes) -> ChildRiskDefinition:
    if tuple(spec.levels) != CHILD_LEVELS:
        raise ValueError(f"levels: must be exactly {', '.join(CHILD_LEVELS)} (lowest first)")
    rule_ids = [rule.id for rule in spec.rules]
    duplicates = sorted({i for i in rule_ids if rule_ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"rules: duplicate rule id(s) {', '.join(duplicates)}")
    if set(spec.recommended_responses) != set(CHILD_LEVELS):
        raise ValueError(f"recommended_responses: give one for each of {', '.join(CHILD_LEVELS)}")
    for level, response in spec.recommended_responses.items():
        if response not in RECOMMENDED_RESPONSES:
            raise ValueError(
                f"recommended_responses.{level}: unknown response {response!r}; expected one "
                f"of {', '.join(RECOMMENDED_RESPONSES)}"
            )
    by_plan: dict[tuple[int, str], str] = {}
    for level, plans in (spec.responses_by_plan or {}).items():
        for plan_name, response in plans.items():
            if plan_name not in EXISTING_PLANS:
                raise ValueError(
                    f"responses_by_plan.{level}: unknown plan {plan_name!r}; expected one of "
                    f"{', '.join(EXISTING_PLANS)}"
                )
            if response not in RECOMMENDED_RESPONSES:
                raise ValueError(
                    f"responses_by_plan.{level}.{plan_name}: unknown response {response!r}; "
                    f"expected one of {', '.join(RECOMMENDED_RESPONSES)}"
                )
            by_plan[(CHILD_RANK[level], plan_name)] = response
    step = spec.vulnerability_step
    uses = Uses()
    rules: list[CompiledChildRule] = []
    for index, rule in enumerate(spec.rules):
        condition = compile_condition(rule.when, f"rules[{index}] ({rule.id}).when")
        uses = uses | condition.uses
        rules.append(
            CompiledChildRule(
                id=rule.id,
                level=rule.level,
                rank=CHILD_RANK[rule.level],
                predicate=condition.predicate,
                words=condition.words,
                fired=Trigger(rule.id, rule.level, condition.words, True, "rule"),
                not_fired=Trigger(rule.id, "none", f"not met: {condition.words}", False, "rule"),
                reads_child=condition.uses.child,
            )
        )
    ref = DefinitionRef(spec.id, spec.version, sha256)
    answers_used = tuple(i for i in DASH_POLICE_ITEMS if i in uses.answers)
    item_table: dict[tuple[str, Any], ChildItem] = {}
    for fact in CHILD_FACTS:
        for value in (True, False, None):
            item_table[(fact, value)] = ChildItem(fact, value, "child")
    for plan in (*EXISTING_PLANS, None):
        item_table[("existing_plan", plan)] = ChildItem("existing_plan", plan, "child")
    for relationship in (*RELATIONSHIPS, None):
        item_table[("relationship_to_perpetrator", relationship)] = ChildItem(
            "relationship_to_perpetrator", relationship, "child"
        )
    for victim_level in VICTIM_LEVELS:
        item_table[("victim_level", victim_level)] = ChildItem(
            "victim_level", victim_level, "victim"
        )
    for item in answers_used:
        for answer in ANSWERS:
            item_table[(item, answer)] = ChildItem(item, answer, "victim_checklist")
        # Rules v2: an answer made yes by what the incident records says so.
        for fact_source in ("observed", "recorded"):
            item_table[(item, fact_source)] = ChildItem(item, "yes", fact_source)
    return ChildRiskDefinition(
        ref=ref,
        title=spec.title,
        start_rank=CHILD_RANK[spec.start_level],
        rules=tuple(rules),
        step=StepConfig(
            enabled=step.enabled,
            levels_up=step.levels_up,
            unborn=step.unborn,
            under_age_years=step.under_age_years,
            disability_or_additional_needs=step.disability_or_additional_needs,
        ),
        responses=tuple(spec.recommended_responses[level] for level in CHILD_LEVELS),
        responses_by_plan=MappingProxyType(by_plan),
        canonical=canonical,
        fact_tables=tuple(
            (fact, {value: item_table[(fact, value)] for value in (True, False, None)})
            for fact in CHILD_FACTS
            if fact != "unborn"
        ),
        answers_used=answers_used,
        uses_victim_level=uses.victim_level,
        uses_prior_incidents=uses.prior_incidents,
        item_table=item_table,
    )
