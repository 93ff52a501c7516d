"""The small declarative vocabulary in which child-risk rules are written.

An area changes its child rules by editing the definition file, not the code: each rule's
``when`` is a condition built from the forms below, validated and compiled once when the
registry loads, and rendered into the plain words that the explanation shows (so the words
cannot drift from the logic).

Forms (each a mapping with exactly these keys):

- ``{"all": [c, ...]}`` every condition holds; ``{"any": [c, ...]}`` at least one holds;
  ``{"not": c}``.
- ``{"child": fact}`` the child's record says ``true`` for ``fact``, one of ``CHILD_FACTS``
  (unrecorded counts as not true).
- ``{"existing_plan": [plan, ...]}`` the child's existing plan is one of these.
- ``{"relationship_to_perpetrator": [relationship, ...]}``.
- ``{"answer": item_id, "is": answer}`` (or a list of answers): the victim checklist
  answer; an item left out of the answers is ``not_asked``.
- ``{"victim_level": level}`` (or a list): the victim's final level, after red flags,
  judgement and MARAC.
- ``{"age_under": years}`` the child's age is known and below ``years`` (not unborn).
- ``{"prior_incidents_at_least": n}`` stored earlier incidents involving the child.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Protocol

from app.contract.items import DASH_POLICE_ITEMS
from app.contract.levels import VICTIM_LEVELS

CHILD_FACTS: tuple[str, ...] = (
    "present",
    "witnessed",
    "injured",
    "intervened",
    "lives_at_address",
    "spoken_to_by_officer",
    "disability_or_additional_needs",
    "unborn",
)
EXISTING_PLANS: tuple[str, ...] = (
    "none",
    "early_help",  # rules v2
    "child_in_need",
    "child_protection",
    "looked_after",
    "unknown",
)
RELATIONSHIPS: tuple[str, ...] = ("child", "stepchild", "other_relative", "unrelated", "unknown")
ANSWERS: tuple[str, ...] = ("yes", "no", "unknown", "not_asked")

_FACT_WORDS = {
    "present": "child present",
    "witnessed": "child witnessed the abuse",
    "injured": "child injured",
    "intervened": "child intervened",
    "lives_at_address": "child lives at the address",
    "spoken_to_by_officer": "child spoken to by an officer",
    "disability_or_additional_needs": "child has a disability or additional needs",
    "unborn": "child unborn",
}


class ChildDetailsLike(Protocol):
    """What the engine reads from a child's record (``app.contract.incident.ChildDetails``)."""

    @property
    def present(self) -> bool | None: ...
    @property
    def witnessed(self) -> bool | None: ...
    @property
    def injured(self) -> bool | None: ...
    @property
    def intervened(self) -> bool | None: ...
    @property
    def lives_at_address(self) -> bool | None: ...
    @property
    def spoken_to_by_officer(self) -> bool | None: ...
    @property
    def disability_or_additional_needs(self) -> bool | None: ...
    @property
    def existing_plan(self) -> str | None: ...
    @property
    def relationship_to_perpetrator(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class NoChildDetails:
    """Stands in for a child with no ``child`` block: every fact unrecorded."""

    present: bool | None = None
    witnessed: bool | None = None
    injured: bool | None = None
    intervened: bool | None = None
    lives_at_address: bool | None = None
    spoken_to_by_officer: bool | None = None
    disability_or_additional_needs: bool | None = None
    existing_plan: str | None = None
    relationship_to_perpetrator: str | None = None


class ChildContext:
    """What a condition is evaluated against: one child in one incident."""

    __slots__ = ("age_years", "answers", "details", "prior_incidents", "unborn", "victim_level")

    def __init__(
        self,
        details: ChildDetailsLike,
        unborn: bool,
        age_years: int | None,
        victim_level: str,
        answers: Mapping[str, str],
        prior_incidents: int,
    ) -> None:
        self.details = details
        self.unborn = unborn
        self.age_years = age_years
        self.victim_level = victim_level
        self.answers = answers
        self.prior_incidents = prior_incidents


Predicate = Callable[[ChildContext], bool]


class ConditionError(ValueError):
    """A condition outside the vocabulary; the message names where in the rule."""


@dataclass(frozen=True, slots=True)
class Uses:
    """What a condition reads beyond the child's own record (which is always listed), so
    that each child's explanation also lists those values."""

    answers: frozenset[str] = frozenset()
    victim_level: bool = False
    prior_incidents: bool = False
    # Reads anything about the child itself. A rule that does not is the same for every
    # child of an incident, so the engine evaluates it once per incident.
    child: bool = False

    def __or__(self, other: Uses) -> Uses:
        return Uses(
            answers=self.answers | other.answers,
            victim_level=self.victim_level or other.victim_level,
            prior_incidents=self.prior_incidents or other.prior_incidents,
            child=self.child or other.child,
        )


_READS_CHILD = Uses(child=True)


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    predicate: Predicate
    words: str
    uses: Uses = field(default_factory=Uses)
    # True when the words join parts with and/or, so a parent must bracket them.
    compound: bool = False


def compile_condition(raw: Any, where: str = "when") -> CompiledCondition:
    """Validate ``raw`` against the vocabulary and compile it into a predicate."""
    if not isinstance(raw, Mapping) or not raw:
        raise ConditionError(f"{where}: a condition must be a non-empty mapping")
    keys = set(raw)
    if keys == {"all"} or keys == {"any"}:
        (op,) = keys
        parts_raw = raw[op]
        if not isinstance(parts_raw, Sequence) or isinstance(parts_raw, str) or not parts_raw:
            raise ConditionError(f"{where}.{op}: must be a non-empty list of conditions")
        parts = tuple(
            compile_condition(part, f"{where}.{op}[{i}]") for i, part in enumerate(parts_raw)
        )
        if len(parts) == 1:
            return parts[0]
        uses = Uses()
        for part in parts:
            uses = uses | part.uses
        joiner = " and " if op == "all" else " or "
        words = joiner.join(f"({p.words})" if p.compound else p.words for p in parts)
        predicates = tuple(p.predicate for p in parts)
        predicate = _all(predicates) if op == "all" else _any(predicates)
        return CompiledCondition(predicate, words, uses, compound=True)
    if keys == {"not"}:
        inner = compile_condition(raw["not"], f"{where}.not")
        inner_predicate = inner.predicate
        inner_words = f"({inner.words})" if inner.compound else inner.words
        return CompiledCondition(lambda c: not inner_predicate(c), f"not {inner_words}", inner.uses)
    if keys == {"child"}:
        fact = _choice(raw["child"], CHILD_FACTS, f"{where}.child", "child fact")
        fact_predicate = _unborn if fact == "unborn" else _fact(fact)
        return CompiledCondition(fact_predicate, _FACT_WORDS[fact], _READS_CHILD)
    if keys == {"existing_plan"}:
        plans = _choices(raw["existing_plan"], EXISTING_PLANS, f"{where}.existing_plan", "plan")
        plan_set = frozenset(plans)
        return CompiledCondition(
            lambda c: c.details.existing_plan in plan_set,
            f"existing plan is {' or '.join(plans)}",
            _READS_CHILD,
        )
    if keys == {"relationship_to_perpetrator"}:
        where_rel = f"{where}.relationship_to_perpetrator"
        rels = _choices(
            raw["relationship_to_perpetrator"], RELATIONSHIPS, where_rel, "relationship"
        )
        rel_set = frozenset(rels)
        return CompiledCondition(
            lambda c: c.details.relationship_to_perpetrator in rel_set,
            f"relationship to perpetrator is {' or '.join(rels)}",
            _READS_CHILD,
        )
    if keys == {"answer", "is"}:
        item = _choice(raw["answer"], DASH_POLICE_ITEMS, f"{where}.answer", "checklist item")
        answers = _choices(raw["is"], ANSWERS, f"{where}.is", "answer")
        answer_set = frozenset(answers)
        return CompiledCondition(
            lambda c: c.answers.get(item, "not_asked") in answer_set,
            f"{item} = {' or '.join(answers)}",
            Uses(answers=frozenset({item})),
        )
    if keys == {"victim_level"}:
        levels = _choices(raw["victim_level"], VICTIM_LEVELS, f"{where}.victim_level", "level")
        level_set = frozenset(levels)
        return CompiledCondition(
            lambda c: c.victim_level in level_set,
            f"victim level {' or '.join(levels)}",
            Uses(victim_level=True),
        )
    if keys == {"age_under"}:
        years = _count(raw["age_under"], f"{where}.age_under", low=1, high=18)
        return CompiledCondition(
            lambda c: c.age_years is not None and c.age_years < years,
            f"child aged under {years}",
            _READS_CHILD,
        )
    if keys == {"prior_incidents_at_least"}:
        n = _count(raw["prior_incidents_at_least"], f"{where}.prior_incidents_at_least", 1, 1000)
        return CompiledCondition(
            lambda c: c.prior_incidents >= n,
            f"{n} or more stored earlier incidents involving the child",
            Uses(prior_incidents=True, child=True),
        )
    raise ConditionError(
        f"{where}: unknown condition with keys {sorted(keys)}; expected one of all, any, not, "
        "child, existing_plan, relationship_to_perpetrator, answer+is, victim_level, "
        "age_under, prior_incidents_at_least"
    )


def _all(predicates: tuple[Predicate, ...]) -> Predicate:
    # Unrolled for the common small cases: the engine evaluates these for every child of
    # every incident, and a generator inside all() costs several times more.
    if len(predicates) == 2:
        first, second = predicates
        return lambda c: first(c) and second(c)
    if len(predicates) == 3:
        first, second, third = predicates
        return lambda c: first(c) and second(c) and third(c)

    def holds(c: ChildContext) -> bool:
        for predicate in predicates:  # noqa: SIM110 - faster than all(generator)
            if not predicate(c):
                return False
        return True

    return holds


def _any(predicates: tuple[Predicate, ...]) -> Predicate:
    if len(predicates) == 2:
        first, second = predicates
        return lambda c: first(c) or second(c)
    if len(predicates) == 3:
        first, second, third = predicates
        return lambda c: first(c) or second(c) or third(c)

    def holds(c: ChildContext) -> bool:
        for predicate in predicates:  # noqa: SIM110 - faster than any(generator)
            if predicate(c):
                return True
        return False

    return holds


def _fact(fact: str) -> Predicate:
    get = attrgetter(fact)
    # Only an explicit ``true`` counts: an unrecorded fact is not evidence it happened.
    return lambda c: get(c.details) is True


def _unborn(c: ChildContext) -> bool:
    return c.unborn


def _choice(value: Any, allowed: Sequence[str], where: str, what: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ConditionError(
            f"{where}: unknown {what} {value!r}; expected one of {', '.join(allowed)}"
        )
    return value


def _choices(value: Any, allowed: Sequence[str], where: str, what: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise ConditionError(f"{where}: expected one {what} or a non-empty list of them")
    return tuple(_choice(v, allowed, f"{where}[{i}]", what) for i, v in enumerate(values))


def _count(value: Any, where: str, low: int, high: int) -> int:
    # bool is an int in Python; a YAML ``yes`` must not become the number 1.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConditionError(f"{where}: expected a whole number from {low} to {high}")
    return value
