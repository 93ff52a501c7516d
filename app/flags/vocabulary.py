"""The fixed words of the flag contract.

Flag types and their agencies are named in the external contract
(``docs/contract.md``, "Flags (who must do what, by when)"); the type names are **fixed**:
clients rely on them, so they live here once and every rules file is checked against them.
"""

from __future__ import annotations

from typing import Literal, get_args

FlagType = Literal[
    "marac_referral",
    "idva_referral",
    "children_social_care_referral",
    "early_help_offer",
    "operation_encompass",
    "child_not_spoken_to",
    "perpetrator_action",
    "serial_perpetrator",
    "separation_escalation",
    "strangulation_medical",
    "pregnancy_health",
    "victim_responsibility_plan",
    "long_term_review",
    "child_recovery_support",
    "classifier_elevated",
    # Rules v2 (docs/rules.md); fixed once shipped.
    "probation_notification",
    "allocated_worker_notification",
    "complete_risk_assessment",
    "adult_safeguarding",
]

Agency = Literal[
    "marac",
    "idva",
    "csc",
    "early_help",
    "school",
    "police",
    "probation",
    "health",
    "adult_social_care",
    "triage",
]

# Who a rule is about. `each_child` evaluates the rule once per child in the incident
# (unborn included) and raises one flag per child that matches.
RuleSubject = Literal["victim", "each_child", "perpetrator"]

# The person a raised flag is about.
SubjectKind = Literal["victim", "child", "perpetrator"]

VictimLevel = Literal["standard", "medium", "high"]
ChildLevel = Literal["moderate", "moderate_to_serious", "serious", "severe"]
ChecklistAnswer = Literal["yes", "no", "unknown", "not_asked"]

FLAG_TYPES: tuple[str, ...] = get_args(FlagType)
AGENCIES: tuple[str, ...] = get_args(Agency)
