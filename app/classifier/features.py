"""One feature pipeline, used by training and serving alike.

Two stages, so that nothing is learned outside ``fit``:

1. ``incident_features(incident, history)`` turns an incident plus what the service knows of
   its history into a flat row of numbers. It is a pure, deterministic function: no
   statistics of any data set enter it (fixed thresholds and transforms only), so it can run
   identically at training time and at serving time.
2. ``build_preprocessor()`` returns the scikit-learn transformer that holds every *learned*
   transformation (median imputation of unknown ages and history counts, standardisation). It
   is a step of the model's ``Pipeline`` and is fitted only inside ``Pipeline.fit`` on the
   training split.

Design decisions:

- A checklist answer becomes three indicators, ``yes``, ``unknown`` and ``not_asked``; "no" is
  the reference (all three zero). "Don't know" is therefore never treated as "no" and stays
  visible to the model and to the drift monitor.
- History (Turner et al. 2022; Grogger et al. 2021: criminal and DA history and time since the
  last incident carry most of the signal) enters both as ``log1p`` counts and as fixed
  threshold indicators (>=1, >=2, ...; last incident within 7/30/90/180/365 days). The
  indicators give the linear model a flexible additive shape and are the candidate conditions
  of the learned points scorecard.
- A history figure that is not known is NaN plus an explicit ``*_unknown`` indicator; the
  learned imputer fills the NaN with the training median, so the indicator carries the effect.
- ``ethnicity``, ``sex`` and the synthetic protected attribute are never inputs: they are used
  only for fairness reporting (see the model card).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer

from app.contract.incident import Incident
from app.contract.items import DASH_POLICE_ITEMS, INSTRUMENT_ITEMS

FEATURE_SCHEMA_VERSION = "1"

FeatureKind = Literal["binary", "numeric"]

CIRCUMSTANCES: tuple[str, ...] = (
    "physical_violence",
    "sexual_violence",
    "coercive_control",
    "weapon_used",
    "strangulation",
    "injury_to_victim",
    "alcohol_involved",
    "drugs_involved",
    "arrest_made",
    "crime_recorded",
)
# Police actions, not risk factors: their sign is left to the data (arrest may deter).
CIRCUMSTANCES_NOT_RISK = frozenset({"arrest_made", "crime_recorded"})
WARNING_MARKERS: tuple[str, ...] = (
    "violence",
    "weapons",
    "firearms",
    "self_harm",
    "suicide",
    "mental_health",
    "drugs",
    "alcohol",
    "escaper",
    "other",
)
COUNT_THRESHOLDS_VICTIM: tuple[int, ...] = (1, 2, 3, 5)
COUNT_THRESHOLDS_PERPETRATOR: tuple[int, ...] = (1, 2, 3, 5, 10)
COUNT_THRESHOLDS_VICTIMS: tuple[int, ...] = (1, 2)
RECENCY_DAYS: tuple[int, ...] = (7, 30, 90, 180, 365)
AGE_BANDS: tuple[int, ...] = (25, 35, 50)


@dataclass(frozen=True)
class FeatureSpec:
    """One column of the feature row.

    ``monotone`` is +1 where more (or "yes") must never lower risk (used as a monotonic
    constraint for boosted trees and as a sign bound for the scorecard), -1 where more must
    never raise it, 0 where the data decide. ``reason_id`` groups columns into one stable,
    human-readable reason for explanations.
    """

    name: str
    kind: FeatureKind
    reason_id: str
    label: str
    monotone: int = 0
    group: str = "other"


@dataclass(frozen=True)
class Reason:
    reason_id: str
    label: str


def _item_reason(item: str) -> str:
    return "CLF-DASH-" + item.upper().replace("_", "-")


def _build_specs() -> tuple[tuple[FeatureSpec, ...], dict[str, Reason]]:
    specs: list[FeatureSpec] = []
    reasons: dict[str, Reason] = {}

    def add(spec: FeatureSpec, reason_label: str) -> None:
        specs.append(spec)
        reasons.setdefault(spec.reason_id, Reason(spec.reason_id, reason_label))

    # Checklist answers: yes / unknown / not_asked, "no" is the reference.
    for item in DASH_POLICE_ITEMS:
        words = item.replace("_", " ")
        rid = _item_reason(item)
        add(
            FeatureSpec(
                f"ans_{item}_yes", "binary", rid, f"Checklist: {words} = yes", 1, "checklist"
            ),
            f"Checklist answer: {words}",
        )
    for item in DASH_POLICE_ITEMS:
        words = item.replace("_", " ")
        for state in ("unknown", "not_asked"):
            add(
                FeatureSpec(
                    f"ans_{item}_{state}",
                    "binary",
                    "CLF-DASH-UNANSWERED",
                    f"Checklist: {words} = {state.replace('_', ' ')}",
                    0,
                    "checklist_missing",
                ),
                "Checklist questions not answered (unknown or not asked)",
            )
    add(
        FeatureSpec(
            "checklist_not_completed",
            "binary",
            "CLF-DASH-UNANSWERED",
            "Checklist not completed",
            0,
            "checklist_missing",
        ),
        "Checklist questions not answered (unknown or not asked)",
    )
    add(
        FeatureSpec(
            "checklist_answered_by_officer",
            "binary",
            "CLF-DASH-ANSWERED-BY",
            "Checklist answered by the officer or a third party, not the victim",
            0,
            "checklist_missing",
        ),
        "Who answered the checklist",
    )

    # Victim's DA history in the 12 months before the incident.
    rid = "CLF-HIST-VICTIM-PRIOR-DA"
    rlabel = "Victim's earlier DA incidents in the last 12 months"
    add(
        FeatureSpec(
            "victim_prior_da_12m_log",
            "numeric",
            rid,
            "log(1 + victim's DA incidents, 12 months)",
            1,
            "history",
        ),
        rlabel,
    )
    for k in COUNT_THRESHOLDS_VICTIM:
        add(
            FeatureSpec(
                f"victim_prior_da_12m_ge{k}",
                "binary",
                rid,
                f"Victim: {k} or more DA incidents in 12 months",
                1,
                "history",
            ),
            rlabel,
        )
    add(
        FeatureSpec(
            "victim_prior_da_12m_unknown",
            "binary",
            rid,
            "Victim's DA history unknown",
            0,
            "history",
        ),
        rlabel,
    )

    # Perpetrator's DA history.
    rid = "CLF-HIST-PERP-PRIOR-DA"
    rlabel = "Perpetrator's earlier DA incidents"
    add(
        FeatureSpec(
            "perp_prior_da_log",
            "numeric",
            rid,
            "log(1 + perpetrator's earlier DA incidents)",
            1,
            "history",
        ),
        rlabel,
    )
    for k in COUNT_THRESHOLDS_PERPETRATOR:
        add(
            FeatureSpec(
                f"perp_prior_da_ge{k}",
                "binary",
                rid,
                f"Perpetrator: {k} or more earlier DA incidents",
                1,
                "history",
            ),
            rlabel,
        )
    add(
        FeatureSpec(
            "perp_prior_da_unknown", "binary", rid, "Perpetrator's DA history unknown", 0, "history"
        ),
        rlabel,
    )

    rid = "CLF-HIST-PERP-PRIOR-VICTIMS"
    rlabel = "Perpetrator has abused other victims before"
    add(
        FeatureSpec(
            "perp_prior_victims_log",
            "numeric",
            rid,
            "log(1 + perpetrator's earlier DA victims)",
            1,
            "history",
        ),
        rlabel,
    )
    for k in COUNT_THRESHOLDS_VICTIMS:
        add(
            FeatureSpec(
                f"perp_prior_victims_ge{k}",
                "binary",
                rid,
                f"Perpetrator: {k} or more earlier victims",
                1,
                "history",
            ),
            rlabel,
        )
    add(
        FeatureSpec(
            "perp_prior_victims_unknown",
            "binary",
            rid,
            "Perpetrator's earlier victims unknown",
            0,
            "history",
        ),
        rlabel,
    )

    # Time since the last incident (victim's and perpetrator's).
    rid = "CLF-HIST-RECENT-INCIDENT"
    rlabel = "Time since the last recorded DA incident"
    for who, word in (("victim", "Victim"), ("perp", "Perpetrator")):
        add(
            FeatureSpec(
                f"{who}_days_since_last_log",
                "numeric",
                rid,
                f"{word}: log(1 + days since last incident)",
                -1,
                "history",
            ),
            rlabel,
        )
        for d in RECENCY_DAYS:
            add(
                FeatureSpec(
                    f"{who}_last_within_{d}d",
                    "binary",
                    rid,
                    f"{word}: last DA incident within {d} days",
                    1,
                    "history",
                ),
                rlabel,
            )
        add(
            FeatureSpec(
                f"{who}_no_last_incident",
                "binary",
                rid,
                f"{word}: no earlier incident date known",
                0,
                "history",
            ),
            rlabel,
        )

    add(
        FeatureSpec(
            "marac_referral_12m",
            "binary",
            "CLF-HIST-MARAC-12M",
            "MARAC referral in the 12 months before",
            1,
            "history",
        ),
        "Victim referred to MARAC in the last 12 months",
    )

    for name, rid, text in (
        (
            "prior_non_da_violence",
            "CLF-HIST-NON-DA-VIOLENCE",
            "Perpetrator's earlier non-domestic violence",
        ),
        ("prior_custody", "CLF-HIST-CUSTODY", "Perpetrator has been in custody"),
        (
            "breach_of_conditional_release",
            "CLF-HIST-BREACH",
            "Perpetrator has breached bail, licence or an order",
        ),
    ):
        add(FeatureSpec(f"{name}_true", "binary", rid, text, 1, "history"), text)
        add(FeatureSpec(f"{name}_unknown", "binary", rid, f"{text}: unknown", 0, "history"), text)
    for marker in WARNING_MARKERS:
        add(
            FeatureSpec(
                f"marker_{marker}",
                "binary",
                "CLF-HIST-WARNING-MARKERS",
                f"Warning marker: {marker.replace('_', ' ')}",
                1,
                "history",
            ),
            "Perpetrator's police warning markers",
        )
    add(
        FeatureSpec(
            "active_orders",
            "binary",
            "CLF-HIST-ACTIVE-ORDERS",
            "Perpetrator subject to an active order or bail conditions",
            0,
            "history",
        ),
        "Active orders or bail conditions",
    )

    # Circumstances recorded by the officer.
    for name in CIRCUMSTANCES:
        words = name.replace("_", " ")
        rid = "CLF-CIRC-" + name.upper().replace("_", "-")
        add(
            FeatureSpec(
                f"circ_{name}_true",
                "binary",
                rid,
                f"Circumstances: {words}",
                0 if name in CIRCUMSTANCES_NOT_RISK else 1,
                "circumstances",
            ),
            f"Circumstances: {words}",
        )
        add(
            FeatureSpec(
                f"circ_{name}_unknown",
                "binary",
                "CLF-CIRC-UNRECORDED",
                f"Circumstances: {words} not recorded",
                0,
                "circumstances",
            ),
            "Circumstances not recorded",
        )

    # Relationship and separation.
    for rtype in ("ex_intimate_partner", "family_member", "other"):
        add(
            FeatureSpec(
                f"rel_{rtype}",
                "binary",
                "CLF-REL-TYPE",
                f"Relationship: {rtype.replace('_', ' ')}",
                0,
                "relationship",
            ),
            "Type of relationship",
        )
    add(
        FeatureSpec(
            "rel_cohabiting", "binary", "CLF-REL-COHABITING", "Living together", 0, "relationship"
        ),
        "Living together",
    )
    add(
        FeatureSpec(
            "rel_cohabiting_unknown",
            "binary",
            "CLF-REL-COHABITING",
            "Living together: unknown",
            0,
            "relationship",
        ),
        "Living together",
    )
    for status in ("recent", "planned", "perceived", "historic"):
        add(
            FeatureSpec(
                f"sep_{status}",
                "binary",
                "CLF-REL-SEPARATION",
                f"Separation: {status}",
                0,
                "relationship",
            ),
            "Separation",
        )

    # Children.
    rid = "CLF-CHILDREN"
    rlabel = "Children in the household or present"
    add(
        FeatureSpec(
            "n_children", "numeric", rid, "Number of children recorded (born)", 0, "children"
        ),
        rlabel,
    )
    add(
        FeatureSpec(
            "n_children_present", "numeric", rid, "Number of children present", 1, "children"
        ),
        rlabel,
    )
    add(
        FeatureSpec("any_child_present", "binary", rid, "A child was present", 1, "children"),
        rlabel,
    )
    add(FeatureSpec("any_unborn", "binary", rid, "An unborn child", 1, "children"), rlabel)
    add(FeatureSpec("any_child_under_7", "binary", rid, "A child under 7", 0, "children"), rlabel)
    add(
        FeatureSpec("any_child_injured", "binary", rid, "A child was injured", 1, "children"),
        rlabel,
    )
    add(
        FeatureSpec("any_child_intervened", "binary", rid, "A child intervened", 1, "children"),
        rlabel,
    )
    add(
        FeatureSpec(
            "any_child_on_plan",
            "binary",
            rid,
            "A child on a child-in-need or protection plan",
            1,
            "children",
        ),
        rlabel,
    )

    # Ages (a validated predictor in the literature; documented on the model card).
    for who, word in (("victim", "Victim"), ("perp", "Perpetrator")):
        rid = f"CLF-AGE-{'VICTIM' if who == 'victim' else 'PERPETRATOR'}"
        rlabel = f"{word}'s age"
        add(
            FeatureSpec(f"{who}_age", "numeric", rid, f"{word}'s age in years", 0, "person"), rlabel
        )
        for a in AGE_BANDS:
            add(
                FeatureSpec(
                    f"{who}_age_under_{a}", "binary", rid, f"{word} under {a}", 0, "person"
                ),
                rlabel,
            )
        add(
            FeatureSpec(f"{who}_age_unknown", "binary", rid, f"{word}'s age unknown", 0, "person"),
            rlabel,
        )

    # Officer's record of the victim's own perception, and any professional judgement.
    for level in ("medium", "high"):
        add(
            FeatureSpec(
                f"victim_perception_{level}",
                "binary",
                "CLF-OFFICER-VICTIM-PERCEPTION",
                f"Victim perceives risk as {level}",
                1,
                "officer",
            ),
            "Victim's own perception of risk",
        )
        add(
            FeatureSpec(
                f"judgement_{level}",
                "binary",
                "CLF-OFFICER-JUDGEMENT",
                f"Professional judgement: {level}",
                1,
                "officer",
            ),
            "Officer's professional judgement",
        )
    return tuple(specs), reasons


FEATURE_SPECS, REASONS = _build_specs()
FEATURE_NAMES: tuple[str, ...] = tuple(s.name for s in FEATURE_SPECS)
FEATURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}
NUMERIC_FEATURES: tuple[str, ...] = tuple(s.name for s in FEATURE_SPECS if s.kind == "numeric")
BINARY_FEATURES: tuple[str, ...] = tuple(s.name for s in FEATURE_SPECS if s.kind == "binary")
SPEC_BY_NAME: dict[str, FeatureSpec] = {s.name: s for s in FEATURE_SPECS}


@dataclass(frozen=True)
class ClassifierHistory:
    """What the service knows beyond the incident itself.

    Filled today from the incident's own ``victim_history`` / ``perpetrator_history`` (see
    ``from_incident``); the service can fill it from its stored history and ``merge`` the two
    (the larger count, the more recent incident). ``None`` means not known. ``source`` names
    where the figures came from, for the explanation.
    """

    victim_prior_da_incidents_12m: int | None = None
    perpetrator_prior_da_incidents: int | None = None
    perpetrator_prior_da_victims: int | None = None
    days_since_victim_last_incident: float | None = None
    days_since_perpetrator_last_incident: float | None = None
    days_since_victim_marac_referral: float | None = None
    source: str = "incident"

    @classmethod
    def from_incident(cls, incident: Incident) -> ClassifierHistory:
        """History as given by the submitting system in the incident."""
        vh, ph = incident.victim_history, incident.perpetrator_history
        occurred = incident.occurred_at

        def days_since(when: object) -> float | None:
            if when is None:
                return None
            delta = occurred - when  # type: ignore[operator]
            return max(0.0, float(delta.total_seconds()) / 86400.0)

        marac_days: float | None = None
        if vh.last_marac_referral is not None:
            marac_days = float(max(0, (occurred.date() - vh.last_marac_referral).days))
        return cls(
            victim_prior_da_incidents_12m=vh.prior_da_incidents_12m,
            perpetrator_prior_da_incidents=ph.prior_da_incidents_total,
            perpetrator_prior_da_victims=ph.prior_da_victims,
            days_since_victim_last_incident=days_since(vh.last_incident_at),
            days_since_perpetrator_last_incident=days_since(ph.last_incident_at),
            days_since_victim_marac_referral=marac_days,
            source="incident",
        )

    def merge(self, other: ClassifierHistory) -> ClassifierHistory:
        """Combine two sources: the larger count and the more recent event win."""

        def larger(a: int | None, b: int | None) -> int | None:
            return b if a is None else a if b is None else max(a, b)

        def sooner(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else min(a, b)

        return replace(
            self,
            victim_prior_da_incidents_12m=larger(
                self.victim_prior_da_incidents_12m, other.victim_prior_da_incidents_12m
            ),
            perpetrator_prior_da_incidents=larger(
                self.perpetrator_prior_da_incidents, other.perpetrator_prior_da_incidents
            ),
            perpetrator_prior_da_victims=larger(
                self.perpetrator_prior_da_victims, other.perpetrator_prior_da_victims
            ),
            days_since_victim_last_incident=sooner(
                self.days_since_victim_last_incident, other.days_since_victim_last_incident
            ),
            days_since_perpetrator_last_incident=sooner(
                self.days_since_perpetrator_last_incident,
                other.days_since_perpetrator_last_incident,
            ),
            days_since_victim_marac_referral=sooner(
                self.days_since_victim_marac_referral, other.days_since_victim_marac_referral
            ),
            source=self.source if self.source == other.source else f"{self.source}+{other.source}",
        )


def _age(born: object, occurred: object) -> float | None:
    if born is None:
        return None
    days = (occurred - born).days  # type: ignore[operator]
    return float(days) / 365.25


def incident_features(
    incident: Incident, history: ClassifierHistory | None = None
) -> dict[str, float]:
    """The feature row of one incident, keyed by ``FEATURE_NAMES`` (pure and deterministic).

    ``history`` defaults to ``ClassifierHistory.from_incident(incident)``.
    """
    hist = history if history is not None else ClassifierHistory.from_incident(incident)
    row: dict[str, float] = dict.fromkeys(FEATURE_NAMES, 0.0)

    def flag(name: str, value: bool) -> None:
        row[name] = 1.0 if value else 0.0

    # Checklist.
    checklist = incident.victim_checklist
    asked = set(INSTRUMENT_ITEMS[checklist.instrument])
    answers = checklist.answers
    for item in DASH_POLICE_ITEMS:
        answer = answers.get(item, "not_asked") if item in asked else "not_asked"
        flag(f"ans_{item}_yes", answer == "yes")
        flag(f"ans_{item}_unknown", answer == "unknown")
        flag(f"ans_{item}_not_asked", answer == "not_asked")
    flag(
        "checklist_not_completed",
        checklist.answered_by == "not_completed"
        or not any(a != "not_asked" for a in answers.values()),
    )
    flag("checklist_answered_by_officer", checklist.answered_by in ("officer", "third_party"))

    # Counts: log1p plus fixed thresholds; unknown -> NaN + indicator.
    def count(prefix: str, value: int | None, thresholds: Sequence[int]) -> None:
        if value is None:
            row[f"{prefix}_log"] = math.nan
            row[f"{prefix}_unknown"] = 1.0
            return
        row[f"{prefix}_log"] = math.log1p(value)
        for k in thresholds:
            flag(f"{prefix}_ge{k}", value >= k)

    count("victim_prior_da_12m", hist.victim_prior_da_incidents_12m, COUNT_THRESHOLDS_VICTIM)
    count("perp_prior_da", hist.perpetrator_prior_da_incidents, COUNT_THRESHOLDS_PERPETRATOR)
    count("perp_prior_victims", hist.perpetrator_prior_da_victims, COUNT_THRESHOLDS_VICTIMS)

    for who, days in (
        ("victim", hist.days_since_victim_last_incident),
        ("perp", hist.days_since_perpetrator_last_incident),
    ):
        if days is None:
            row[f"{who}_days_since_last_log"] = math.nan
            row[f"{who}_no_last_incident"] = 1.0
        else:
            row[f"{who}_days_since_last_log"] = math.log1p(days)
            for d in RECENCY_DAYS:
                flag(f"{who}_last_within_{d}d", days <= d)
    flag(
        "marac_referral_12m",
        hist.days_since_victim_marac_referral is not None
        and hist.days_since_victim_marac_referral <= 365,
    )

    ph = incident.perpetrator_history
    for name in ("prior_non_da_violence", "prior_custody", "breach_of_conditional_release"):
        value = getattr(ph, name)
        flag(f"{name}_true", value is True)
        flag(f"{name}_unknown", value is None)
    for marker in WARNING_MARKERS:
        flag(f"marker_{marker}", marker in ph.warning_markers)
    flag("active_orders", bool(ph.active_orders))

    circ = incident.circumstances
    for name in CIRCUMSTANCES:
        value = getattr(circ, name)
        flag(f"circ_{name}_true", value is True)
        flag(f"circ_{name}_unknown", value is None)

    rel = incident.relationship
    for rtype in ("ex_intimate_partner", "family_member", "other"):
        flag(f"rel_{rtype}", rel.type == rtype)
    flag("rel_cohabiting", rel.cohabiting is True)
    flag("rel_cohabiting_unknown", rel.cohabiting is None)
    status = rel.separation.status if rel.separation is not None else "none"
    for s in ("recent", "planned", "perceived", "historic"):
        flag(f"sep_{s}", status == s)

    occurred_date = incident.occurred_at.date()
    children = incident.children
    born = [c for c in children if not c.unborn]
    present = [c for c in born if c.child is not None and c.child.present]
    row["n_children"] = float(len(born))
    row["n_children_present"] = float(len(present))
    flag("any_child_present", bool(present))
    flag("any_unborn", any(c.unborn for c in children))
    ages = [_age(c.date_of_birth, occurred_date) for c in born]
    flag("any_child_under_7", any(a is not None and a < 7 for a in ages))
    details = [c.child for c in born if c.child is not None]
    flag("any_child_injured", any(d.injured for d in details))
    flag("any_child_intervened", any(d.intervened for d in details))
    flag(
        "any_child_on_plan",
        any(d.existing_plan in ("child_in_need", "child_protection") for d in details),
    )

    for who, person in (("victim", incident.victim), ("perp", incident.perpetrator)):
        age = _age(person.date_of_birth, occurred_date)
        if age is None:
            row[f"{who}_age"] = math.nan
            row[f"{who}_age_unknown"] = 1.0
        else:
            row[f"{who}_age"] = age
            for a in AGE_BANDS:
                flag(f"{who}_age_under_{a}", age < a)

    officer = incident.officer_assessment
    for level in ("medium", "high"):
        flag(f"victim_perception_{level}", officer.victim_perception == level)
        flag(f"judgement_{level}", officer.professional_judgement == level)
    return row


def row_vector(row: dict[str, float]) -> NDArray[np.float64]:
    return np.array([row[name] for name in FEATURE_NAMES], dtype=np.float64)


def feature_matrix(
    pairs: Iterable[tuple[Incident, ClassifierHistory | None]],
) -> NDArray[np.float64]:
    """Rows of ``incident_features`` stacked in ``FEATURE_NAMES`` order."""
    rows = [row_vector(incident_features(inc, hist)) for inc, hist in pairs]
    if not rows:
        return np.empty((0, len(FEATURE_NAMES)), dtype=np.float64)
    return np.vstack(rows)


def reference_row(
    victim_age: float | None = None, perpetrator_age: float | None = None
) -> dict[str, float]:
    """The documented reference for explanations: "nothing known to raise risk".

    Every checklist answer "no", no earlier incident, no markers, no children, nothing in the
    circumstances, an intimate partner not separated, and the given ages (the training
    medians, stored in the manifest; unknown when not given). A reason's contribution is the
    change in log-odds when its columns move from this reference to the incident's values.
    """
    row = dict.fromkeys(FEATURE_NAMES, 0.0)
    for prefix in ("victim_prior_da_12m", "perp_prior_da", "perp_prior_victims"):
        row[f"{prefix}_log"] = 0.0
    for who, age in (("victim", victim_age), ("perp", perpetrator_age)):
        row[f"{who}_days_since_last_log"] = math.nan
        row[f"{who}_no_last_incident"] = 1.0
        if age is None:
            row[f"{who}_age"] = math.nan
            row[f"{who}_age_unknown"] = 1.0
        else:
            row[f"{who}_age"] = float(age)
            for a in AGE_BANDS:
                row[f"{who}_age_under_{a}"] = 1.0 if age < a else 0.0
    return row


def preprocessor_columns(exclude: Iterable[str] = ()) -> list[str]:
    """Names of the preprocessor's output columns, in order (numeric, then binary)."""
    skip = set(exclude)
    return [n for n in NUMERIC_FEATURES if n not in skip] + [
        n for n in BINARY_FEATURES if n not in skip
    ]


def build_preprocessor(exclude: Iterable[str] = ()) -> ColumnTransformer:
    """The learned part of the feature pipeline (fitted inside ``Pipeline.fit`` only).

    Numeric columns: median imputation (unknowns have their own indicator columns).
    Binary columns: passed through. Columns named in ``exclude`` are dropped (used to keep a
    linear model monotone, see ``train``). Output order: ``preprocessor_columns(exclude)``.
    """
    skip = set(exclude)
    numeric_idx = [FEATURE_INDEX[n] for n in NUMERIC_FEATURES if n not in skip]
    binary_idx = [FEATURE_INDEX[n] for n in BINARY_FEATURES if n not in skip]
    return ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median", keep_empty_features=True), numeric_idx),
            ("binary", "passthrough", binary_idx),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )


def monotone_constraints(exclude: Iterable[str] = ()) -> list[int]:
    """Monotonic constraints in the preprocessor's output order."""
    return [SPEC_BY_NAME[n].monotone for n in preprocessor_columns(exclude)]


def reason_columns() -> dict[str, list[int]]:
    """Raw-row column indices grouped by reason id (for explanations)."""
    groups: dict[str, list[int]] = {}
    for i, spec in enumerate(FEATURE_SPECS):
        groups.setdefault(spec.reason_id, []).append(i)
    return groups
