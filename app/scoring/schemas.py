"""Pydantic models of the assessment's JSON, for OpenAPI and response validation.

They mirror ``Assessment.to_dict()`` exactly (unknown keys are refused), and the tests
validate many assessments against them. The names the contract marks fixed (api.md, body
of the 201) are kept; the extra keys are documented here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

VictimLevelName = Literal["standard", "medium", "high"]
ChildLevelName = Literal["moderate", "moderate_to_serious", "serious", "severe"]
AnswerName = Literal["yes", "no", "unknown", "not_asked"]
MaracCriterion = Literal[
    "visible_high_risk", "professional_judgement", "potential_escalation", "repeat_marac"
]
FactValue = bool | int | str | None


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DefinitionRefOut(_Out):
    id: str = Field(examples=["dash-ric"])
    version: str = Field(examples=["1"])
    sha256: str = Field(description="sha256 of the definition's canonical JSON (RFC 8785).")


class VictimItemOut(_Out):
    id: str
    answer: AnswerName
    points: Literal[0, 1]
    label: str


class TriggerOut(_Out):
    rule: str
    effect: str = Field(description="The level the rule gives when it fired, else `none`.")
    detail: str = Field(description="Why it fired or not, e.g. `15 of 24 ≥ 14`.")
    fired: bool
    stage: str = Field(
        description="Victim: `score`, `red_flag`, `judgement`, `marac`. Child: `rule`, `step`."
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
    source: Literal["child", "victim", "victim_checklist", "stored"]
    incident_ids: list[str]


class ChildOut(_Out):
    person_ref: str
    level: ChildLevelName
    rule_level: ChildLevelName = Field(description="The level before the vulnerability step.")
    recommended_response: Literal[
        "universal_support", "early_help", "child_in_need_assessment", "strategy_discussion"
    ]
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
    id: Literal[
        "prior_da",
        "prior_non_da_violence",
        "prior_custody",
        "breach_of_bail_or_orders",
        "threats_to_kill",
        "weapons",
        "substance_or_mental_health",
        "suicidality",
    ]
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

    level: VictimLevelName
    rationale: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)
    ] = Field(description="Required: a judgement without reasons is refused (422).")
