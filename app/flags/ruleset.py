"""Flag rules as versioned data: the file model, the strict loader and the registry.

docs/contract.md "Flags (who must do what, by when)": flags are "created with the assessment from
versioned rules"; CONTRIBUTING.md: "a new local version is a new file, not a code change. Every
stored assessment names the version and its hash". A rules file is named ``{id}@{version}``
(``default-flags@1.yaml``) and is self-contained, so that its hash covers everything the
engine used. The hash is the sha256 of the file's canonical JSON form (RFC 8785: sorted
keys, compact), so anyone can recompute it from the published file.

Loading is strict: unknown keys, unknown flag types, agencies, subjects, due policies or
conditions, child conditions without a child, duplicate rule ids, a file name that does not
match its id and version, and duplicate YAML/JSON keys are all a :class:`FlagRulesError`
that names the file and the problem.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import rfc8785
import yaml
from pydantic import Field, StringConstraints, ValidationError, model_validator

from app.canonical import canonical_json
from app.flags.conditions import (
    CONDITION_KEYS,
    Condition,
    Name,
    StrictModel,
    child_conditions_outside_child,
)
from app.flags.due import DUE_POLICIES, DuePolicy
from app.flags.vocabulary import Agency, FlagType, RuleSubject
from app.yamlfiles import DirectorySignature, directory_signature, load_yaml

RULES_DIR = Path(__file__).resolve().parent / "rules"
RULE_FILE_SUFFIXES = (".yaml", ".yml", ".json")

Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class FlagRulesError(ValueError):
    """A flag rules file (or set) is invalid; the message names the file and the problem."""

    def __init__(self, origin: str, problems: Iterable[str]) -> None:
        self.origin = origin
        self.problems = tuple(problems)
        super().__init__(f"{origin}: " + "; ".join(self.problems))


class AgencyChoice(StrictModel):
    """Address the flag to ``agency`` instead of the rule's default when ``when`` holds."""

    when: Condition
    agency: Agency


class PriorityChoice(StrictModel):
    """Give the flag ``priority`` instead of the rule's default when ``when`` holds."""

    when: Condition
    priority: Annotated[int, Field(ge=1, le=9)]


class FlagRule(StrictModel):
    """One rule: when ``when`` holds for a subject, raise a ``type`` flag for ``agency``."""

    id: Name
    type: FlagType
    agency: Agency
    agency_when: list[AgencyChoice] = Field(default_factory=list)
    subject: RuleSubject
    when: Condition
    priority: Annotated[int, Field(ge=1, le=9)]  # 1 = most urgent
    # The first choice that holds sets the priority (rules v2: perpetrator_action).
    priority_when: list[PriorityChoice] = Field(default_factory=list)
    due: DuePolicy
    title: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    action: Text
    source: Text  # where the rule comes from (contract section, docs/research.md section)
    # Distinguishes flags of one type for one subject (e.g. the 3- and 12-month reviews) in
    # the dedupe key. Deliberately not the rules version: a new version must not re-raise.
    discriminator: (
        Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+(=[a-z0-9_]+)?$", max_length=40)]
        | None
    ) = None
    enabled: bool = True

    @model_validator(mode="after")
    def _child_conditions_have_a_child(self) -> FlagRule:
        in_child = self.subject == "each_child"
        misplaced = child_conditions_outside_child(self.when, in_child=in_child)
        choices: list[Condition] = [c.when for c in self.agency_when]
        choices += [c.when for c in self.priority_when]
        for when in choices:
            misplaced += child_conditions_outside_child(when, in_child=in_child)
        if misplaced:
            raise ValueError(
                f"rule {self.id!r}: {', '.join(sorted(set(misplaced)))} need a child: use "
                "subject `each_child` or wrap them in `any_child`"
            )
        return self


class FlagRulesFile(StrictModel):
    """The content of one rules file."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
    version: Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=32)]
    description: Text
    rules: Annotated[list[FlagRule], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> FlagRulesFile:
        ids = [rule.id for rule in self.rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate rule id(s): {', '.join(dupes)}")
        keys = [(r.type, r.subject, r.discriminator) for r in self.rules]
        clashes = sorted({f"{t}/{s}" for (t, s, d) in keys if keys.count((t, s, d)) > 1})
        if clashes:
            raise ValueError(
                "rules of the same type and subject need distinct `discriminator`s "
                f"(their flags would share a dedupe key): {', '.join(clashes)}"
            )
        return self


@dataclass(frozen=True, slots=True)
class FlagRuleSet:
    """A validated rules version, with its canonical JSON form and that form's sha256."""

    spec: FlagRulesFile
    canonical: bytes  # RFC 8785 canonical JSON of the file as published
    sha256: str
    origin: str  # the file name, for messages
    # What readers derive from ``spec`` and keep for the next call (the flag engine's
    # compiled rules), keyed by the reader's module. Held by this object, so it lives and
    # dies with this version and is never served to another rule set, not even to a copy
    # made with ``dataclasses.replace`` (a fresh one, as ``init=False``). Not compared.
    derived: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __getstate__(self) -> tuple[FlagRulesFile, bytes, str, str]:
        # Pickled and copied without ``derived``: it may hold compiled closures, which do
        # not pickle, and a copy derives them again on first use.
        return (self.spec, self.canonical, self.sha256, self.origin)

    def __setstate__(self, state: tuple[FlagRulesFile, bytes, str, str]) -> None:
        for name, value in zip(("spec", "canonical", "sha256", "origin"), state, strict=True):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "derived", {})

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def key(self) -> str:
        """``id@version``, as configured (``TRIAGE_FLAG_RULES=default-flags@1``)."""
        return f"{self.spec.id}@{self.spec.version}"

    @property
    def rules(self) -> tuple[FlagRule, ...]:
        return tuple(self.spec.rules)

    @property
    def enabled_rules(self) -> tuple[FlagRule, ...]:
        return tuple(rule for rule in self.spec.rules if rule.enabled)

    def document(self) -> dict[str, Any]:
        """The published rules (a fresh copy), e.g. for a definition snapshot.

        ``parse_rule_set(rule_set.document())`` gives the same rules and the same hash.
        """
        result: dict[str, Any] = json.loads(self.canonical)
        return result


# Pydantic puts the chosen union member's tag into an error's location ("when.answer.is");
# leave it out where it only repeats the key the reader already sees ("when.is").
_UNION_TAGS = frozenset(CONDITION_KEYS) | frozenset(DUE_POLICIES)


def _format_loc(loc: tuple[str | int, ...]) -> str:
    text, kept, skipped = "", list[str | int](), False
    for part in loc:
        holds_union = kept[-1:] in (["when"], ["any_child"], ["due"]) or (
            len(kept) >= 2 and isinstance(kept[-1], int) and kept[-2] in ("any", "all")
        )
        # A tag follows its holder directly; the part after a skipped tag is a field.
        skipped = part in _UNION_TAGS and holds_union and not skipped
        if skipped:
            continue
        kept.append(part)
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(file)"


def parse_rule_set(data: Any, *, origin: str = "<memory>") -> FlagRuleSet:
    """Validate a parsed rules document (a mapping, as from YAML or JSON) into a rule set."""
    try:
        spec = FlagRulesFile.model_validate(data)
    except ValidationError as exc:
        # Locations and messages only: never echo input values.
        problems = [f"{_format_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise FlagRulesError(origin, problems) from None
    try:
        canonical = canonical_json(data)
    except rfc8785.CanonicalizationError as exc:
        raise FlagRulesError(origin, [f"not representable as canonical JSON: {exc}"]) from None
    return FlagRuleSet(
        spec=spec,
        canonical=canonical,
        sha256=hashlib.sha256(canonical).hexdigest(),
        origin=origin,
    )


def _json_unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def load_rule_set(path: Path) -> FlagRuleSet:
    """Load and validate one rules file named ``{id}@{version}.yaml`` (or ``.yml``/``.json``)."""
    origin = path.name
    if path.suffix not in RULE_FILE_SUFFIXES:
        raise FlagRulesError(origin, [f"not a rules file (expected {RULE_FILE_SUFFIXES})"])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlagRulesError(origin, [f"cannot read: {exc.__class__.__name__}"]) from None
    try:
        if path.suffix == ".json":
            data = json.loads(text, object_pairs_hook=_json_unique_pairs)
        else:
            data = load_yaml(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise FlagRulesError(origin, [f"not valid {path.suffix[1:].upper()}: {exc}"]) from None
    rule_set = parse_rule_set(data, origin=origin)
    if path.stem != rule_set.key:
        raise FlagRulesError(
            origin, [f"file name must be {rule_set.key}{path.suffix} (its id@version)"]
        )
    return rule_set


@dataclass(frozen=True, slots=True)
class FlagRuleRegistry:
    """The rules versions available to a deployment, by ``id@version``. Immutable."""

    by_key: Mapping[str, FlagRuleSet] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, rule_sets: Iterable[FlagRuleSet]) -> FlagRuleRegistry:
        by_key: dict[str, FlagRuleSet] = {}
        for rule_set in rule_sets:
            if rule_set.key in by_key:
                raise FlagRulesError(
                    rule_set.origin,
                    [f"{rule_set.key} is also defined by {by_key[rule_set.key].origin}"],
                )
            by_key[rule_set.key] = rule_set
        return cls(by_key=MappingProxyType(dict(sorted(by_key.items()))))

    @classmethod
    def from_directory(cls, directory: Path = RULES_DIR) -> FlagRuleRegistry:
        """Load every rules file in ``directory`` (the shipped ``app/flags/rules`` by default).

        Immutable, so the same files give the same registry, built once per process."""
        return _rules_in(directory.resolve(), directory_signature(directory, RULE_FILE_SUFFIXES))

    def keys(self) -> tuple[str, ...]:
        return tuple(self.by_key)

    def get(self, key: str) -> FlagRuleSet:
        try:
            return self.by_key[key]
        except KeyError:
            raise FlagRulesError(key, ["no such flag rules version"]) from None

    def for_area(
        self,
        area: str,
        *,
        default: str,
        area_overrides: Mapping[str, Mapping[str, str]] | None = None,
    ) -> FlagRuleSet:
        """The rules an area uses: its ``flag_rules`` override, else the default.

        ``area_overrides`` has the shape of ``Settings.area_overrides``
        (``{"E09000018": {"flag_rules": "example-area-flags@1"}}``).
        """
        override = (area_overrides or {}).get(area, {}).get("flag_rules")
        return self.get(override or default)


@functools.lru_cache(maxsize=32)
def _rules_in(directory: Path, signature: DirectorySignature) -> FlagRuleRegistry:  # noqa: ARG001 - the cache key
    paths = sorted(p for p in directory.iterdir() if p.suffix in RULE_FILE_SUFFIXES)
    return FlagRuleRegistry.of(load_rule_set(path) for path in paths)
