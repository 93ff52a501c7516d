"""Everything scoring needs that is loaded once at start-up: definitions, rules, calendar.

Loading validates every checklist and rules file; an invalid one stops the service at
start-up with a message naming the file (``DefinitionError`` / ``FlagRulesError``).

Every loaded definition is also kept in the database by its hash (``definition_snapshots``)
so that a past score reproduces after its file is gone. They are recorded once per process,
before the first write, in a short transaction of their own: recording them inside each
intake made concurrent first intakes wait on each other's uncommitted snapshot rows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from app.assessments import repository as assessment_repository
from app.assessments.pipeline import ClassifierPolicy
from app.classifier.artifact import LoadedModel, load_configured
from app.config import Settings
from app.db import Database, utcnow
from app.flags.calendar import Calendar
from app.flags.ruleset import FlagRuleRegistry, FlagRuleSet
from app.scoring.registry import (
    DefinitionRegistry,
    DefinitionSet,
    VictimChecklistDefinition,
    load_registry,
)

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
    _snapshots: _SnapshotState = field(default_factory=lambda: _SnapshotState(), compare=False)

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

    def ensure_snapshots(self, database: Database) -> None:
        """Record every loaded definition by its hash, once per process (idempotent)."""
        state = self._snapshots
        if state.done:
            return
        with state.lock:
            if state.done:
                return
            with database.unit() as session:
                assessment_repository.record_snapshots(session, self.snapshot_rows())
            state.done = True

    def snapshot_rows(self) -> list[dict[str, Any]]:
        now = utcnow()
        rows = [
            {
                "sha256": d.ref.sha256,
                "kind": (
                    "victim_checklist" if isinstance(d, VictimChecklistDefinition) else "child_risk"
                ),
                "definition_id": d.ref.id,
                "version": d.ref.version,
                "body": d.document(),
                "first_used_at": now,
            }
            for d in self.definitions
        ]
        for rules in self.flag_rules.by_key.values():
            rows.append(
                {
                    "sha256": rules.sha256,
                    "kind": "flag_rules",
                    "definition_id": rules.id,
                    "version": rules.version,
                    "body": rules.document(),
                    "first_used_at": now,
                }
            )
        return rows


@dataclass
class _SnapshotState:
    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
