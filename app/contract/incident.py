"""The incident as police systems submit it: pydantic models mirroring the contract.

Every model forbids unknown fields (OWASP API3: nothing is silently dropped or stored),
every string is length-capped (API4/API10), and every time must carry an offset.
Cross-field rules (refs that exist, one victim and one perpetrator, child details only on
children, a judgement needs its rationale, answers keyed by known item ids) are checked
here so that a bad incident is rejected whole, with a location for each problem and
never a quotation of the rejected value.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.contract.bounds import (
    STORED,
    BoundedDate,
    BoundedTime,
    Count,
    ExpectedDate,
    NotBlank,
    PastDate,
    WholeNumber,
    YesNo,
)
from app.contract.items import INSTRUMENT_ITEMS

Ref = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:/-]{1,64}$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200), NotBlank]
LongText = Annotated[str, StringConstraints(max_length=4000)]

Answer = Literal["yes", "no", "unknown", "not_asked"]
_KNOWN_ITEMS = {instrument: frozenset(ids) for instrument, ids in INSTRUMENT_ITEMS.items()}
RiskLevel = Literal["standard", "medium", "high"]
Role = Literal["victim", "perpetrator", "child", "other_adult"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    system: Code = Field(description="The submitting records system (fixed per API key).")
    reference: Code = Field(description="The system's own reference for this incident.")
    submitted_by: ShortText | None = Field(
        default=None, description="Officer or system user who submitted (pseudonymous id)."
    )


class PersonName(Strict):
    given: ShortText | None = None
    family: ShortText | None = None


class Identifier(Strict):
    scheme: Literal["pnc", "nhs", "source"] = Field(
        description="`pnc` Police National Computer id, `nhs` NHS number, "
        "`source` the submitting system's own person id."
    )
    value: Annotated[str, StringConstraints(min_length=1, max_length=64), NotBlank]


class School(Strict):
    name: ShortText | None = None
    urn: Annotated[str, StringConstraints(pattern=r"^[0-9]{6,8}$")] | None = Field(
        default=None, description="Unique Reference Number of the school (DfE)."
    )
    phase: Literal["nursery", "primary", "secondary", "college", "special"] | None = Field(
        default=None,
        description="The setting's phase, nursery to college (rules v2: every setting is "
        "told through Operation Encompass, whatever the child's age).",
    )


class ChildDetails(Strict):
    relationship_to_perpetrator: (
        Literal["child", "stepchild", "other_relative", "unrelated", "unknown"] | None
    ) = None
    lives_at_address: YesNo | None = None
    present: YesNo | None = None
    witnessed: YesNo | None = None
    injured: YesNo | None = None
    intervened: YesNo | None = None
    spoken_to_by_officer: YesNo | None = None
    school: School | None = None
    existing_plan: (
        Literal[
            "none", "early_help", "child_in_need", "child_protection", "looked_after", "unknown"
        ]
        | None
    ) = Field(
        default=None,
        description="A plan the child is already on. `early_help` was added in rules v2: the "
        "lead professional is told instead of offering early help again.",
    )
    disability_or_additional_needs: YesNo | None = None
    account: LongText | None = Field(
        default=None,
        description="What the child said or showed, in their words. Sensitive free text: "
        "shown only to those entitled, never logged.",
    )


class Person(Strict):
    ref: Ref = Field(description="Reference of this person within the incident (`v1`, `c2`).")
    role: Role
    name: PersonName | None = None
    date_of_birth: PastDate | None = None
    sex: Literal["female", "male", "other", "unknown"] | None = None
    identifiers: Annotated[list[Identifier], Field(max_length=10)] = []
    interpreter_needed: YesNo | None = None
    ethnicity: Annotated[str, StringConstraints(pattern=r"^[A-Z][0-9]{1,2}$|^NS$")] | None = Field(
        default=None,
        description="Self-defined ethnicity code (18+1). Used only for fairness reporting "
        "of models, never as a scoring input.",
    )
    unborn: YesNo = False
    expected_date: ExpectedDate | None = None
    child: ChildDetails | None = None
    care_and_support_needs: YesNo | None = Field(
        default=None,
        description="The adult has care and support needs (Care Act 2014 s.42). Read for the "
        "victim: with rules v2 it raises `adult_safeguarding` for adult social care.",
    )

    @model_validator(mode="after")
    def _child_fields_only_on_children(self) -> Person:
        if self.role != "child" and (self.child is not None or self.unborn):
            raise ValueError("child details and `unborn` are only allowed on role `child`")
        if self.role == "child" and self.care_and_support_needs is not None:
            raise ValueError(
                "`care_and_support_needs` is for adults; a child's needs are in `child`"
            )
        if self.unborn and self.date_of_birth is not None:
            raise ValueError("an unborn child has an `expected_date`, not a `date_of_birth`")
        if self.expected_date is not None and not self.unborn:
            raise ValueError("`expected_date` is only allowed for an unborn child")
        return self


class Separation(Strict):
    status: Literal["none", "recent", "planned", "perceived", "historic"] = "none"
    date: BoundedDate | None = None  # a planned separation is ahead


class Relationship(Strict):
    victim: Ref
    perpetrator: Ref
    type: Literal["intimate_partner", "ex_intimate_partner", "family_member", "other"] = (
        "intimate_partner"
    )
    cohabiting: YesNo | None = None
    separation: Separation | None = None


class Circumstances(Strict):
    physical_violence: YesNo | None = None
    sexual_violence: YesNo | None = None
    coercive_control: YesNo | None = None
    weapon_used: YesNo | None = None
    strangulation: YesNo | None = None
    injury_to_victim: YesNo | None = None
    alcohol_involved: YesNo | None = None
    drugs_involved: YesNo | None = None
    arrest_made: YesNo | None = None
    crime_recorded: YesNo | None = None


class VictimChecklist(Strict):
    instrument: Literal["dash-ric", "dash-police"] = "dash-ric"
    answered_by: Literal["victim", "officer", "third_party", "not_completed"] | None = None
    mode: Literal["in_person", "phone", "video", "other"] | None = None
    answers: dict[str, Answer] = Field(
        default_factory=dict,
        description="Answers keyed by item id. Items left out are recorded as `not_asked`.",
    )
    comments: dict[str, LongText] = Field(
        default_factory=dict,
        description="Free-text comments keyed by item id. Sensitive; never logged.",
    )

    @model_validator(mode="after")
    def _known_items(self) -> VictimChecklist:
        known = _KNOWN_ITEMS[self.instrument]
        if known.issuperset(self.answers) and known.issuperset(self.comments):
            return self  # the usual case, without building sets (stored inputs load in bulk)
        unknown = sorted((set(self.answers) | set(self.comments)) - known)
        if unknown:
            # The keys are the client's: count them, never quote them.
            raise ValueError(
                f"{len(unknown)} key(s) in answers or comments are not item ids of "
                f"{self.instrument} (GET /v1/checklists lists them)"
            )
        return self


class ActiveOrder(Strict):
    type: Literal[
        "dvpn", "dvpo", "non_molestation", "restraining", "bail_conditions", "occupation", "other"
    ]
    expires: BoundedDate | None = None


WarningMarker = Literal[
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
]


class PerpetratorHistory(Strict):
    prior_da_incidents_total: Count | None = None
    prior_da_victims: Annotated[WholeNumber, Field(ge=0, le=1_000)] | None = Field(
        default=None, description="Distinct earlier victims known to the submitting system."
    )
    last_incident_at: BoundedTime | None = None
    prior_non_da_violence: YesNo | None = None
    prior_custody: YesNo | None = None
    breach_of_conditional_release: YesNo | None = None
    under_probation_supervision: YesNo | None = Field(
        default=None,
        description="On licence, a community order or a suspended sentence with supervision "
        "(rules v2: raises `probation_notification`).",
    )
    warning_markers: Annotated[list[WarningMarker], Field(max_length=20)] = []
    active_orders: Annotated[list[ActiveOrder], Field(max_length=20)] = []


class VictimHistory(Strict):
    prior_da_incidents_12m: Count | None = Field(
        default=None, description="DA incidents for this victim in the 12 months before this one."
    )
    last_incident_at: BoundedTime | None = None
    last_marac_referral: PastDate | None = None


class OfficerAssessment(Strict):
    professional_judgement: RiskLevel | None = None
    rationale: LongText | None = None
    victim_perception: RiskLevel | None = None

    @model_validator(mode="after")
    def _judgement_needs_rationale(self) -> OfficerAssessment:
        if self.professional_judgement is not None and not (self.rationale or "").strip():
            raise ValueError("a professional judgement needs a rationale")
        return self


class SafetyPlan(Strict):
    written_agreement_with_victim: YesNo | None = Field(
        default=None,
        description="A written agreement that puts the onus on the victim to manage the risk "
        "(e.g. not to let the perpetrator in). Raises `victim_responsibility_plan`.",
    )


class Consent(Strict):
    victim_consents_to_share: Literal["yes", "no", "not_sought"] | None = None


class Incident(Strict):
    """A domestic-abuse incident as submitted by a police system."""

    source: Source
    area: Code = Field(description="Local-authority area code (e.g. ONS `E09000018`).")
    occurred_at: BoundedTime
    reported_at: BoundedTime | None = None
    persons: Annotated[list[Person], Field(min_length=2, max_length=50)]
    relationship: Relationship
    circumstances: Circumstances = Circumstances()
    victim_checklist: VictimChecklist = VictimChecklist()
    perpetrator_history: PerpetratorHistory = PerpetratorHistory()
    victim_history: VictimHistory = VictimHistory()
    officer_assessment: OfficerAssessment = OfficerAssessment()
    safety_plan: SafetyPlan = SafetyPlan()
    consent: Consent = Consent()

    @model_validator(mode="after")
    def _persons_consistent(self) -> Incident:
        # Messages name positions and field names, never a ref: a client may have put a
        # name in one.
        by_ref: dict[str, Person] = {}
        for i, p in enumerate(self.persons):
            if p.ref in by_ref:
                raise ValueError(f"persons[{i}].ref repeats the ref of an earlier person")
            by_ref[p.ref] = p
        rel = self.relationship
        for field, ref, role in (
            ("victim", rel.victim, "victim"),
            ("perpetrator", rel.perpetrator, "perpetrator"),
        ):
            person = by_ref.get(ref)
            if person is None:
                raise ValueError(f"relationship.{field} names no person in `persons`")
            if person.role != role:
                raise ValueError(f"relationship.{field} must name the person with role {role}")
        roles: list[str] = [p.role for p in self.persons]
        for role in ("victim", "perpetrator"):
            if roles.count(role) > 1:
                raise ValueError(f"at most one person with role {role}")
        if self.reported_at is not None and self.reported_at < self.occurred_at:
            raise ValueError("reported_at is earlier than occurred_at")
        return self

    # Convenience accessors used by scoring and flags.
    def person(self, ref: str) -> Person:
        return next(p for p in self.persons if p.ref == ref)

    @property
    def victim(self) -> Person:
        return self.person(self.relationship.victim)

    @property
    def perpetrator(self) -> Person:
        return self.person(self.relationship.perpetrator)

    @property
    def children(self) -> list[Person]:
        return [p for p in self.persons if p.role == "child"]


class IncidentRevision(Incident):
    """Amended or completed data for an existing incident (same source and reference)."""


def stored_incident(data: object) -> Incident:
    """An incident the service stored earlier, read again: loaded as it was accepted, without
    the plausibility checks of intake (app/contract/bounds.py, ``STORED``), so that every
    stored assessment still reproduces."""
    return Incident.model_validate(data, context=STORED)
