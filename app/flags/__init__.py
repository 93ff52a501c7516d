"""Follow-up flags: who must do what, by when (docs/contract.md "Flags").

The pure half: flag rules as versioned data files (:mod:`app.flags.ruleset`, the files in
``app/flags/rules``), the condition vocabulary (:mod:`app.flags.conditions`), due-time
policies (:mod:`app.flags.due`) on a Europe/London calendar (:mod:`app.flags.calendar`),
and the engine that turns an incident and its assessment into flag proposals
(:mod:`app.flags.engine`). No database, no clock, no globals.
"""

from app.flags.calendar import LONDON, Calendar, CalendarError
from app.flags.engine import (
    AssessmentShapeError,
    FlagProposal,
    Pointer,
    dedupe_key,
    evaluate_flags,
)
from app.flags.ruleset import (
    RULES_DIR,
    FlagRule,
    FlagRuleRegistry,
    FlagRulesError,
    FlagRuleSet,
    load_rule_set,
    parse_rule_set,
)
from app.flags.vocabulary import AGENCIES, FLAG_TYPES

__all__ = [
    "AGENCIES",
    "FLAG_TYPES",
    "LONDON",
    "RULES_DIR",
    "AssessmentShapeError",
    "Calendar",
    "CalendarError",
    "FlagProposal",
    "FlagRule",
    "FlagRuleRegistry",
    "FlagRuleSet",
    "FlagRulesError",
    "Pointer",
    "dedupe_key",
    "evaluate_flags",
    "load_rule_set",
    "parse_rule_set",
]
