"""Everything scoring needs that is loaded once at start-up: definitions, rules, calendar.

Loading validates every checklist and rules file; an invalid one stops the service at
start-up with a message naming the file (``DefinitionError`` / ``FlagRulesError``).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.assessments.pipeline import ClassifierPolicy
from app.classifier.artifact import LoadedModel, load_configured
from app.config import Settings
from app.flags.calendar import Calendar
from app.flags.ruleset import FlagRuleRegistry, FlagRuleSet
from app.scoring.registry import DefinitionRegistry, DefinitionSet, load_registry

# Keys of an area's entry in TRIAGE_AREA_OVERRIDES.
AREA_KEYS = (
    "dash-ric",
    "dash-police",
    "child-risk",
    "flags",
    "classifier_threshold",
    "classifier_may_raise_level",
)


class ConfigurationError(ValueError):
    """The configured definitions do not exist or do not fit together."""


@dataclass(frozen=True)
class ScoringContext:
    settings: Settings
    definitions: DefinitionRegistry
    flag_rules: FlagRuleRegistry
    calendar: Calendar
    classifier: LoadedModel | None = None

    @classmethod
    def load(cls, settings: Settings) -> ScoringContext:
        context = cls(
            settings=settings,
            definitions=load_registry(),
            flag_rules=FlagRuleRegistry.from_directory(),
            calendar=Calendar.from_iso_dates(settings.non_school_days, settings.non_working_days),
            # Refuses to start on a tampered or mismatched artifact (ArtifactError);
            # no path configured means no classifier.
            classifier=load_configured(settings.classifier_path),
        )
        context.check()
        return context

    def check(self) -> None:
        """Resolve the defaults and every area override now, not on the first request."""
        for name, choice in self.settings.area_overrides.items():
            unknown = sorted(set(choice) - set(AREA_KEYS))
            if unknown:
                raise ConfigurationError(
                    f"area {name}: unknown override key(s) {unknown}; allowed: {list(AREA_KEYS)}"
                )
        areas: list[str | None] = [None, *self.settings.area_overrides]
        for area in areas:
            try:
                self.definition_set(area)
                self.rules(area)
            except Exception as exc:
                where = f"area {area}" if area else "defaults"
                raise ConfigurationError(f"{where}: {exc}") from exc

    def _choice(self, area: str | None, key: str, default: str) -> str:
        if area is None:
            return default
        return self.settings.area_overrides.get(area, {}).get(key, default)

    def definition_set(self, area: str | None) -> DefinitionSet:
        s = self.settings
        return self.definitions.definition_set(
            victim_checklists=(
                self._choice(area, "dash-ric", s.victim_checklist),
                self._choice(area, "dash-police", s.police_checklist),
            ),
            child_risk=self._choice(area, "child-risk", s.child_checklist),
        )

    def classifier_policy(self, area: str | None) -> ClassifierPolicy:
        s = self.settings
        threshold = self._choice(area, "classifier_threshold", "")
        may_raise = self._choice(area, "classifier_may_raise_level", "")
        return ClassifierPolicy(
            model=self.classifier,
            threshold=float(threshold) if threshold else s.classifier_threshold,
            may_raise_level=(may_raise == "true") if may_raise else s.classifier_may_raise_level,
        )

    def rules(self, area: str | None) -> FlagRuleSet:
        return self.flag_rules.get(self._choice(area, "flags", self.settings.flag_rules))
