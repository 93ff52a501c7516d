"""Checklist definitions: loading, lookup, hashing, and refusal of invalid files."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import rfc8785
import yaml

from app.contract.items import DASH_POLICE_ITEMS, DASH_RIC_ITEMS
from app.scoring import (
    DefinitionError,
    DefinitionRegistry,
    UnknownDefinitionError,
    load_registry,
)
from app.scoring.registry import (
    DEFAULT_DEFINITIONS_DIR,
    ChildRiskDefinition,
    VictimChecklistDefinition,
)


def test_registry_loads_every_shipped_definition(registry: DefinitionRegistry) -> None:
    assert sorted((d.ref.id, d.ref.version) for d in registry) == [
        ("child-risk", "1"),
        ("child-risk", "2"),
        ("dash-police", "1"),
        ("dash-police", "2"),
        ("dash-ric", "1"),
        ("dash-ric", "2"),
        ("dash-ric", "local-example"),
    ]
    assert registry.versions("dash-ric") == ["1", "2", "local-example"]


def test_lookup_by_id_and_version_and_by_reference_string(registry: DefinitionRegistry) -> None:
    assert registry.get("dash-ric", "1") is registry.get_ref("dash-ric@1")
    assert isinstance(registry.victim_checklist("dash-police@1"), VictimChecklistDefinition)
    assert isinstance(registry.child_risk("child-risk@1"), ChildRiskDefinition)
    with pytest.raises(UnknownDefinitionError, match="no definition dash-ric@9"):
        registry.get_ref("dash-ric@9")
    with pytest.raises(UnknownDefinitionError, match="not of the form"):
        registry.get_ref("dash-ric")
    with pytest.raises(UnknownDefinitionError, match="not a child-risk definition"):
        registry.child_risk("dash-ric@1")


def test_item_ids_are_the_canonical_ids_of_each_instrument(registry: DefinitionRegistry) -> None:
    assert registry.victim_checklist("dash-ric@1").item_ids == DASH_RIC_ITEMS
    assert registry.victim_checklist("dash-police@1").item_ids == DASH_POLICE_ITEMS
    assert registry.victim_checklist("dash-police@1").max_score == 27


def test_shipped_thresholds_and_rules_are_the_contract_defaults(
    registry: DefinitionRegistry,
) -> None:
    for reference in ("dash-ric@1", "dash-police@1"):
        checklist = registry.victim_checklist(reference)
        assert checklist.thresholds == (10, 14)
        assert checklist.red_flag.enabled
        assert checklist.red_flag.critical_items == (
            "strangulation",
            "threat_to_kill",
            "weapons_used",
        )
        assert (checklist.red_flag.aggravating_needed, checklist.red_flag.criticals_needed) == (
            2,
            2,
        )
        marac = checklist.marac
        assert (marac.visible_high_risk_from, marac.escalation_incidents) == (14, 3)
        assert (marac.escalation_window_months, marac.repeat_window_months) == (12, 12)
    child_risk = registry.child_risk("child-risk@1")
    assert child_risk.responses == (
        "universal_support",
        "early_help",
        "child_in_need_assessment",
        "strategy_discussion",
    )
    assert child_risk.step.under_age_years == 7


def test_sha256_is_taken_over_the_canonical_json(registry: DefinitionRegistry) -> None:
    for definition in registry:
        path = DEFAULT_DEFINITIONS_DIR / f"{definition.ref.key}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        expected = hashlib.sha256(rfc8785.dumps(data)).hexdigest()
        assert definition.ref.sha256 == expected


def test_document_is_a_copy_callers_cannot_change(registry: DefinitionRegistry) -> None:
    checklist = registry.victim_checklist("dash-ric@1")
    document = checklist.document()
    document["thresholds"]["high_from"] = 1
    assert checklist.document()["thresholds"]["high_from"] == 14


def test_choosing_two_versions_of_one_checklist_is_refused(registry: DefinitionRegistry) -> None:
    with pytest.raises(UnknownDefinitionError, match="two versions of dash-ric"):
        registry.definition_set(("dash-ric@1", "dash-ric@local-example"))


# --- Files an area might add -------------------------------------------------------------


@pytest.fixture
def definitions_dir(tmp_path: Path) -> Path:
    target = tmp_path / "definitions"
    shutil.copytree(DEFAULT_DEFINITIONS_DIR, target)
    return target


def edit(
    directory: Path, name: str, change: Callable[[str], str], new_name: str | None = None
) -> None:
    source = directory / name
    text = change(source.read_text(encoding="utf-8"))
    if new_name is not None:
        (directory / new_name).write_text(text, encoding="utf-8")
    else:
        source.write_text(text, encoding="utf-8")


def test_comments_and_layout_do_not_change_the_hash(definitions_dir: Path) -> None:
    edit(
        definitions_dir, "dash-ric@1.yaml", lambda t: "# a new comment\n\n" + t.replace("  ", "  ")
    )
    assert (
        load_registry(definitions_dir).get_ref("dash-ric@1").ref.sha256
        == load_registry().get_ref("dash-ric@1").ref.sha256
    )


def test_an_area_adds_its_own_version_as_a_new_file(definitions_dir: Path) -> None:
    edit(
        definitions_dir,
        "dash-ric@1.yaml",
        lambda t: t.replace('version: "1"', 'version: "2-area-x"').replace(
            "high_from: 14", "high_from: 15"
        ),
        new_name="dash-ric@2-area-x.yaml",
    )
    registry = load_registry(definitions_dir)
    area = registry.victim_checklist("dash-ric@2-area-x")
    assert area.thresholds == (10, 15)
    assert area.ref.sha256 != registry.get_ref("dash-ric@1").ref.sha256


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "dash-ric@1.yaml",
            "- id: animal_abuse",
            "- id: pet_abuse",
            "items: unknown item id(s) for dash-ric: pet_abuse",
        ),
        (
            "dash-ric@1.yaml",
            "- id: animal_abuse",
            "- id: isolated",
            "items: duplicate item id(s) isolated",
        ),
        (
            "dash-police@1.yaml",
            "  - id: threatened_children\n",
            "  - id: harmed_children\n",
            "duplicate item id(s) harmed_children",
        ),
        (
            "dash-ric@1.yaml",
            "medium_from: 10",
            "medium_from: 14",
            "thresholds: need 1 ≤ medium_from < high_from ≤ 24",
        ),
        (
            "dash-ric@1.yaml",
            "high_from: 14",
            "high_from: 25",
            "thresholds: need 1 ≤ medium_from < high_from ≤ 24",
        ),
        (
            "dash-ric@1.yaml",
            "medium_from: 10",
            "medium_from: 0",
            "thresholds.medium_from: Input should be greater than or equal to 1",
        ),
        (
            "dash-ric@1.yaml",
            "medium_from: 10",
            'medium_from: "10"',
            "thresholds.medium_from: Input should be a valid integer",
        ),
        (
            "dash-ric@1.yaml",
            'version: "1"',
            "version: 1",
            "version: Input should be a valid string",
        ),
        (
            "dash-ric@1.yaml",
            "thresholds:",
            "colour: red\nthresholds:",
            "colour: Extra inputs are not permitted",
        ),
        (
            "dash-ric@1.yaml",
            "critical_items: [strangulation, threat_to_kill, weapons_used]",
            "critical_items: [strangulation, harmed_children]",
            "red_flag.critical_items: not items of dash-ric: harmed_children",
        ),
        (
            "dash-ric@1.yaml",
            "critical_items: [strangulation, threat_to_kill, weapons_used]",
            "critical_items: [strangulation, stalking_harassment]",
            "red_flag: items both critical and aggravating: stalking_harassment",
        ),
        (
            "dash-ric@1.yaml",
            "    score_from: 14",
            "    score_from: 30",
            "marac.visible_high_risk.score_from 30 is above the item count 24",
        ),
        (
            "dash-ric@1.yaml",
            "    incidents: 3",
            "    incidents: 1",
            "marac.potential_escalation.incidents: Input should be greater than or equal to 2",
        ),
        (
            "dash-ric@1.yaml",
            "kind: victim_checklist",
            "kind: checklist",
            "kind must be victim_checklist or child_risk, not 'checklist'",
        ),
        (
            "dash-ric@1.yaml",
            "title: Domestic",
            "title: Domestic\ntitle: Domestic",
            "duplicate key 'title'",
        ),
        (
            "child-risk@1.yaml",
            "child: injured",
            "child: bruised",
            "rules[6] (child_injured).when.child: unknown child fact 'bruised'",
        ),
        (
            "child-risk@1.yaml",
            "victim_level: medium",
            "victim_level: very_high",
            "rules[1] (victim_medium).when.victim_level[0]: unknown level 'very_high'",
        ),
        (
            "child-risk@1.yaml",
            '      answer: separation_past_year\n      is: "yes"',
            "      answer: separation_past_year\n      is: yes",
            "rules[4] (separation_past_year).when.is: expected one answer or a non-empty list",
        ),
        (
            "child-risk@1.yaml",
            "      answer: child_contact_conflict",
            "      answer: contact_dispute",
            "unknown checklist item 'contact_dispute'",
        ),
        (
            "child-risk@1.yaml",
            "      victim_level: medium",
            "      victim_score_at_least: 10",
            "rules[1] (victim_medium).when: unknown condition with keys ['victim_score_at_least']",
        ),
        (
            "child-risk@1.yaml",
            "  - id: victim_high\n",
            "  - id: victim_medium\n",
            "rules: duplicate rule id(s) victim_medium",
        ),
        (
            "child-risk@1.yaml",
            "  severe: strategy_discussion",
            "  severe: section_47",
            "recommended_responses.severe: unknown response 'section_47'",
        ),
        (
            "child-risk@1.yaml",
            "levels: [moderate, moderate_to_serious, serious, severe]",
            "levels: [moderate, serious, severe]",
            "levels: must be exactly moderate, moderate_to_serious, serious, severe",
        ),
    ],
)
def test_invalid_definition_is_refused_with_the_file_and_the_problem(
    definitions_dir: Path, file: str, old: str, new: str, message: str
) -> None:
    text = (definitions_dir / file).read_text(encoding="utf-8")
    assert old in text, "the test's edit must apply"
    (definitions_dir / file).write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_registry(definitions_dir)
    assert caught.value.source == file
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{file}: ")


def test_file_name_must_match_id_and_version(definitions_dir: Path) -> None:
    (definitions_dir / "dash-ric@1.yaml").rename(definitions_dir / "dash-ric@one.yaml")
    with pytest.raises(DefinitionError, match=r"dash-ric@one.yaml: file must be named dash-ric@1"):
        load_registry(definitions_dir)


def test_a_missing_default_definition_stops_start_up(definitions_dir: Path) -> None:
    (definitions_dir / "child-risk@1.yaml").unlink()
    with pytest.raises(DefinitionError, match="the default definition child-risk@1 is missing"):
        load_registry(definitions_dir)


def test_a_file_that_is_not_yaml_is_refused(definitions_dir: Path) -> None:
    (definitions_dir / "dash-ric@2.yaml").write_text("items: [unclosed\n", encoding="utf-8")
    with pytest.raises(DefinitionError, match=r"^dash-ric@2.yaml: is not valid YAML"):
        load_registry(definitions_dir)


def test_a_json_definition_file_is_accepted(definitions_dir: Path) -> None:
    import json

    data = yaml.safe_load((definitions_dir / "dash-ric@1.yaml").read_text(encoding="utf-8"))
    data["version"] = "json-1"
    (definitions_dir / "dash-ric@json-1.json").write_text(json.dumps(data), encoding="utf-8")
    registry = load_registry(definitions_dir)
    assert registry.victim_checklist("dash-ric@json-1").thresholds == (10, 14)


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="definitions directory not found"):
        load_registry(tmp_path / "absent")
