"""Pydantic models of the assessment's JSON, for OpenAPI and response validation.

They mirror ``Assessment.to_dict()`` exactly (unknown keys are refused), and the tests
validate many assessments against them. The names the contract marks fixed (docs/contract.md, body
of the 201) are kept; the extra keys are documented here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)

from app.contract.incident import Ref
from app.contract.levels import MarkerId

VictimLevelName = Literal["standard", "medium", "high"]
ChildLevelName = Literal["moderate", "moderate_to_serious", "serious", "severe"]
VICTIM_LEVEL_NAMES: tuple[str, ...] = get_args(VictimLevelName)
CHILD_LEVEL_NAMES: tuple[str, ...] = get_args(ChildLevelName)
AnswerName = Literal["yes", "no", "unknown", "not_asked"]
MaracCriterion = Literal[
    "visible_high_risk",
    "red_flag_high",
    "professional_judgement",
    "potential_escalation",
    "repeat_marac",
]
FactValue = bool | int | str | None


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DefinitionRefOut(_Out):
    id: str = Field(examples=["dash-ric"])
    version: str = Field(examples=["1"])
    sha256: str = Field(description="sha256 of the definition's canonical JSON (RFC 8785).")


class FactOut(_Out):
    path: str = Field(
        description="The incident field looked at, e.g. `circumstances.strangulation`."
    )
    value: bool | str | None


class VictimItemOut(_Out):
    id: str
    answer: AnswerName = Field(description="What the victim answered (`not_asked` if left out).")
    points: Literal[0, 1]
    label: str
    effective_answer: AnswerName | None = Field(
        default=None,
        description="Rules v2: the answer every rule read — `yes` when the victim said yes or "
        "the incident records the fact. Absent from version-1 assessments.",
    )
    source: Literal["answer", "observed", "recorded"] | None = Field(
        default=None,
        description="Rules v2: where the effective answer came from: the victim's `answer`, "
        "the officer's observation at the scene (`observed`) or a structured fact of the "
        "incident (`recorded`). Absent from version-1 assessments.",
    )
    fact: FactOut | None = Field(
        default=None,
        description="Rules v2: for items an incident fact can make yes, the fact looked at.",
    )

    # No return annotation: the schema stays the fields' (pydantic uses an annotation).
    @model_serializer(mode="wrap")
    def _as_stored(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        """Written as the engine wrote it: the rules-v2 keys only where the item has them,
        so a version-1 assessment reads back byte for byte as it was stored."""
        data = handler(self)
        for key in ("effective_answer", "source", "fact"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


class TriggerOut(_Out):
    rule: str
    effect: str = Field(description="The level the rule gives when it fired, else `none`.")
    detail: str = Field(description="Why it fired or not, e.g. `15 of 24 ≥ 14`.")
    fired: bool
    stage: str = Field(
        description="Victim: `score`, `red_flag`, `perception`, `completeness`, `judgement`, "
        "`marac`. Child: `rule`, `step`, `judgement`."
    )


class MaracOut(_Out):
    refer: bool
    criteria: list[MaracCriterion]


class VictimOut(_Out):
    person_ref: str
    level: VictimLevelName
    score_level: VictimLevelName = Field(description="The level from the score alone.")
    score: int
    max_score: int
    unknown_count: int = Field(description="Answers `unknown` or `not_asked` (or left out).")
    checklist: DefinitionRefOut
    items: list[VictimItemOut]
    triggers: list[TriggerOut]
    marac: MaracOut


class ChildItemOut(_Out):
    id: str
    value: FactValue
    source: Literal["child", "victim", "victim_checklist", "observed", "recorded", "stored"] = (
        Field(
            description="Where the value came from; `observed` and `recorded` (rules v2) mark a "
            "checklist answer made yes by what the incident records."
        )
    )
    incident_ids: list[str]


class ChildOut(_Out):
    person_ref: str
    level: ChildLevelName
    rule_level: ChildLevelName = Field(
        description="The level from the rules, before the vulnerability step and judgement."
    )
    recommended_response: Literal[
        "universal_support",
        "early_help",
        "child_in_need_assessment",
        "strategy_discussion",
        "notify_lead_professional",
        "notify_allocated_social_worker",
    ] = Field(
        description="By final level; with rules v2 a child already on a plan goes to whoever "
        "leads it (`notify_lead_professional` for early help, "
        "`notify_allocated_social_worker` for child in need, child protection or looked after)."
    )
    unborn: bool
    age_years: int | None
    triggers: list[TriggerOut]
    items: list[ChildItemOut]


class EvidenceOut(_Out):
    source: Literal["reported", "stored", "checklist", "incident"]
    field: str
    value: FactValue
    incident_ids: list[str]


class MarkerOut(_Out):
    id: MarkerId
    present: bool | None = Field(description="null when no source says either way.")
    evidence: list[EvidenceOut]


class PerpetratorOut(_Out):
    person_ref: str
    markers: list[MarkerOut]
    serial: bool
    serial_reason: str


class FigureOut(_Out):
    subject: str = Field(description="The person ref the figure is about.")
    name: str
    source: Literal["reported", "stored"]
    value: FactValue
    incident_ids: list[str] = Field(description="For stored figures: the incidents counted.")


class DefinitionsOut(_Out):
    victim_checklist: DefinitionRefOut
    child_risk: DefinitionRefOut


class AssessmentResult(_Out):
    """What the scoring engine produces (``Assessment.to_dict()``)."""

    victim: VictimOut
    children: list[ChildOut]
    perpetrator: PerpetratorOut
    classifier: dict[str, Any] | None = Field(
        description="Set by the classifier layer when a model is used; the engine gives null."
    )
    summary: str
    definitions: DefinitionsOut
    history: list[FigureOut]
    judgements_considered: int
    engine_version: str
    inputs_digest: str = Field(description="sha256 of the canonical inputs.")


class AssessmentBody(AssessmentResult):
    """A stored assessment: the engine's result plus what persistence adds."""

    id: str
    version: int
    created_at: AwareDatetime


class JudgementIn(_Out):
    """A professional judgement recorded after intake (raises, never lowers)."""

    level: VictimLevelName | ChildLevelName = Field(
        description="The victim's level, or with `subject_ref` the child's level."
    )
    rationale: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)
    ] = Field(description="Required: a judgement without reasons is refused (422).")
    subject_ref: Ref | None = Field(
        default=None,
        description="Rules v2: a child's ref in the incident (`c1`) to judge that child's "
        "level; absent for the victim.",
    )

    @model_validator(mode="after")
    def _level_fits_the_subject(self) -> JudgementIn:
        if self.subject_ref is None and self.level not in VICTIM_LEVEL_NAMES:
            raise ValueError("a judgement of the victim is standard, medium or high")
        if self.subject_ref is not None and self.level not in CHILD_LEVEL_NAMES:
            raise ValueError(
                "a judgement of a child is moderate, moderate_to_serious, serious or severe"
            )
        return self
