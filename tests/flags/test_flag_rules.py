"""Flag rules files: the shipped versions, an area's own version, and strict validation."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import rfc8785
import yaml

from app.flags import (
    FLAG_TYPES,
    RULES_DIR,
    FlagRuleRegistry,
    FlagRulesError,
    FlagRuleSet,
    load_rule_set,
    parse_rule_set,
)

DEFAULT_FILE = RULES_DIR / "default-flags@1.yaml"


def default_data() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))


def rule(data: dict[str, Any], rule_id: str) -> dict[str, Any]:
    return next(r for r in data["rules"] if r["id"] == rule_id)


# -- the shipped rules ------------------------------------------------------------------


def test_registry_holds_the_default_and_the_example_area_rules(registry):
    assert registry.keys() == ("default-flags@1", "default-flags@2", "example-area-flags@1")


# The flag types rules version 2 added (docs/rules.md).
V2_FLAG_TYPES = {
    "probation_notification",
    "allocated_worker_notification",
    "complete_risk_assessment",
    "adult_safeguarding",
}


def agencies_by_type(rules: FlagRuleSet) -> dict[str, set[str]]:
    agencies: dict[str, set[str]] = {}
    for r in rules.rules:
        agencies.setdefault(r.type, set()).add(r.agency)
        agencies[r.type].update(choice.agency for choice in r.agency_when)
    return agencies


def test_version_2_rules_cover_every_fixed_flag_type(registry):
    v1 = agencies_by_type(registry.get("default-flags@1"))
    v2 = agencies_by_type(registry.get("default-flags@2"))
    assert set(v2) == set(FLAG_TYPES)
    assert {t: v2[t] for t in V2_FLAG_TYPES} == {
        "probation_notification": {"probation"},
        "allocated_worker_notification": {"csc"},
        "complete_risk_assessment": {"police"},
        "adult_safeguarding": {"adult_social_care"},
    }
    # Every other type keeps its version-1 agencies.
    assert {t: a for t, a in v2.items() if t not in V2_FLAG_TYPES} == v1


def test_default_rules_cover_every_fixed_flag_type_with_its_contract_agency(default_rules):
    agencies = agencies_by_type(default_rules)
    assert set(agencies) == set(FLAG_TYPES) - V2_FLAG_TYPES
    assert agencies == {
        "marac_referral": {"marac"},
        "idva_referral": {"idva"},
        "children_social_care_referral": {"csc"},
        "early_help_offer": {"early_help"},
        "operation_encompass": {"school"},
        "child_not_spoken_to": {"police"},
        "perpetrator_action": {"police", "probation"},
        "serial_perpetrator": {"police"},
        "separation_escalation": {"idva"},
        "strangulation_medical": {"health"},
        "pregnancy_health": {"health"},
        "victim_responsibility_plan": {"csc"},
        "long_term_review": {"idva", "csc"},
        "child_recovery_support": {"health"},
        "classifier_elevated": {"triage"},
    }
    assert all(r.enabled for r in default_rules.rules)


def test_rules_set_hash_is_sha256_of_canonical_json_of_the_file(default_rules):
    expected = __import__("hashlib").sha256(rfc8785.dumps(default_data())).hexdigest()
    assert default_rules.sha256 == expected
    assert re.fullmatch(r"[0-9a-f]{64}", default_rules.sha256)
    assert (default_rules.id, default_rules.version, default_rules.key) == (
        "default-flags",
        "1",
        "default-flags@1",
    )


def test_the_same_rules_as_json_load_with_the_same_hash(tmp_path, default_rules):
    path = tmp_path / "default-flags@1.json"
    path.write_text(json.dumps(default_data(), indent=2, ensure_ascii=False), encoding="utf-8")
    assert load_rule_set(path).sha256 == default_rules.sha256


def test_any_change_to_the_rules_changes_the_hash(default_rules):
    data = default_data()
    rule(data, "idva_referral")["priority"] = 2
    assert parse_rule_set(data).sha256 != default_rules.sha256


# Phrases that would hand the risk to the victim (docs/brief.md: written agreements).
VICTIM_ONUS = re.compile(
    r"victim (must|should|needs? to|agrees?|is to|to (avoid|stop|keep|refuse|not))"
    r"|ask the victim to|victim'?s responsibility to",
    re.IGNORECASE,
)


@pytest.mark.parametrize("key", ["default-flags@1", "example-area-flags@1"])
def test_no_rule_text_makes_the_victim_responsible_for_the_risk(registry, key):
    for r in registry.get(key).rules:
        assert not VICTIM_ONUS.search(r.action), r.id
        assert not VICTIM_ONUS.search(r.title), r.id
        assert r.source.startswith("contract")


def test_perpetrator_directed_actions_are_named_as_such(default_rules):
    actions = {r.id: r.action for r in default_rules.rules}
    assert actions["perpetrator_action_police"].startswith(
        "Consider perpetrator-directed action: arrest, DVPN/DVPO, bail conditions"
    )
    assert "perpetrator-focused safety plan" in actions["victim_responsibility_plan"]
    assert "Replace the written agreement" in actions["victim_responsibility_plan"]


# -- an area's own rules ----------------------------------------------------------------


def test_example_area_rules_load_with_their_own_version_and_hash(registry, default_rules):
    area = registry.get("example-area-flags@1")
    assert area.sha256 != default_rules.sha256
    encompass = next(r for r in area.rules if r.id == "operation_encompass")
    assert encompass.when.all[1].child_age_between.max_years == 17
    assert [r.id for r in area.rules if not r.enabled] == ["classifier_elevated"]


def test_area_override_selects_the_area_rules_and_others_keep_the_default(registry):
    overrides = {"E09000018": {"flag_rules": "example-area-flags@1"}, "E06000001": {}}
    pick = registry.for_area
    assert pick("E09000018", default="default-flags@1", area_overrides=overrides).key == (
        "example-area-flags@1"
    )
    assert pick("E06000001", default="default-flags@1", area_overrides=overrides).key == (
        "default-flags@1"
    )
    assert pick("E09000001", default="default-flags@1").key == "default-flags@1"


def test_example_area_notifies_a_17_year_old_school_and_never_flags_the_classifier(
    case, registry, default_rules
):
    area = registry.get("example-area-flags@1")
    case.child("c1", date_of_birth="2009-06-01", school={"urn": "100123"})
    case.classifier(elevated=True)
    assert {f.type for f in case.flags(area)} == {"operation_encompass"}
    assert {f.type for f in case.flags(default_rules)} == {"classifier_elevated"}
    assert {f.rules_id for f in case.flags(area)} == {"example-area-flags"}


def test_unknown_rules_version_is_an_error(registry):
    with pytest.raises(FlagRulesError, match=r"default-flags@9: no such flag rules version"):
        registry.get("default-flags@9")


def test_two_files_with_one_id_and_version_are_refused(tmp_path):
    text = DEFAULT_FILE.read_text(encoding="utf-8")
    (tmp_path / "default-flags@1.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "default-flags@1.json").write_text(json.dumps(default_data()), encoding="utf-8")
    with pytest.raises(FlagRulesError, match="also defined by"):
        FlagRuleRegistry.from_directory(tmp_path)


# -- invalid files: FlagRulesError naming the file and the problem -----------------------


def mutated(change) -> dict[str, Any]:
    data = copy.deepcopy(default_data())
    change(data)
    return data


INVALID = [
    ("unknown flag type", lambda d: rule(d, "marac_referral").update(type="marac"), "type"),
    ("unknown agency", lambda d: rule(d, "idva_referral").update(agency="ngo"), "agency"),
    ("unknown subject", lambda d: rule(d, "idva_referral").update(subject="family"), "subject"),
    (
        "unknown key in a rule",
        lambda d: rule(d, "idva_referral").update(colour="red"),
        "Extra inputs are not permitted",
    ),
    (
        "unknown condition",
        lambda d: rule(d, "idva_referral").update(when={"victim_is": "high"}),
        "not a known condition",
    ),
    (
        "unknown due policy",
        lambda d: rule(d, "idva_referral").update(due={"policy": "asap"}),
        "policy",
    ),
    (
        "unquoted YAML time (read as an integer)",
        lambda d: rule(d, "idva_referral")["due"].update(at=1020),
        '"HH:MM"',
    ),
    (
        "unquoted YAML yes (read as true)",
        lambda d: rule(d, "strangulation_medical")["when"]["any"][0].update({"is": True}),
        "is",
    ),
    (
        "child condition on a victim rule",
        lambda d: rule(d, "idva_referral").update(when={"child_level_in": ["serious"]}),
        "need a child",
    ),
    (
        "unknown checklist item",
        lambda d: rule(d, "strangulation_medical")["when"]["any"][0].update(answer="choking"),
        "unknown checklist item id",
    ),
    (
        "unknown incident path",
        lambda d: rule(d, "victim_responsibility_plan")["when"].update(
            incident="safety_plan.agreement"
        ),
        "no field 'agreement'",
    ),
    (
        "incident path to free text",
        lambda d: rule(d, "victim_responsibility_plan").update(
            when={"incident": "officer_assessment.rationale", "is": "x"}
        ),
        "never test free text",
    ),
    (
        "impossible value for an incident code",
        lambda d: rule(d, "separation_escalation")["when"]["any"][0].update({"in": ["recnt"]}),
        "not a possible value",
    ),
    (
        "unknown child field",
        lambda d: rule(d, "child_not_spoken_to").update(when={"child": {"seen": True}}),
        "unknown child field",
    ),
    (
        "duplicate rule id",
        lambda d: d["rules"].append(copy.deepcopy(rule(d, "idva_referral"))),
        "duplicate rule id",
    ),
    (
        "same type and subject without a discriminator",
        lambda d: d["rules"].append(
            {**copy.deepcopy(rule(d, "idva_referral")), "id": "idva_referral_again"}
        ),
        "distinct `discriminator`",
    ),
    ("priority out of range", lambda d: rule(d, "idva_referral").update(priority=0), "priority"),
    ("no rules", lambda d: d.update(rules=[]), "rules"),
    ("version not a string", lambda d: d.update(version=1), "version"),
]


@pytest.mark.parametrize(("problem", "change", "message"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_rules_file_is_refused_naming_file_and_problem(tmp_path, problem, change, message):
    path = tmp_path / "default-flags@1.yaml"
    path.write_text(yaml.safe_dump(mutated(change), allow_unicode=True), encoding="utf-8")
    with pytest.raises(FlagRulesError) as caught:
        load_rule_set(path)
    assert str(caught.value).startswith("default-flags@1.yaml: ")
    assert message in str(caught.value)


def test_unquoted_times_and_answers_in_yaml_are_caught(tmp_path):
    text = DEFAULT_FILE.read_text(encoding="utf-8").replace('at: "17:00"', "at: 17:00", 1)
    path = tmp_path / "default-flags@1.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FlagRulesError, match=r"rules\[0\]\.due\.at: .*quoted"):
        load_rule_set(path)


def test_duplicate_yaml_key_is_refused(tmp_path):
    path = tmp_path / "default-flags@1.yaml"
    path.write_text(
        DEFAULT_FILE.read_text(encoding="utf-8").replace(
            "    priority: 1\n", "    priority: 1\n    priority: 2\n", 1
        ),
        encoding="utf-8",
    )
    with pytest.raises(FlagRulesError, match="duplicate key 'priority'"):
        load_rule_set(path)


def test_duplicate_json_key_is_refused(tmp_path):
    path = tmp_path / "tiny@1.json"
    path.write_text('{"id": "tiny", "id": "other"}', encoding="utf-8")
    with pytest.raises(FlagRulesError, match=r"tiny@1\.json: not valid JSON: duplicate key 'id'"):
        load_rule_set(path)


def test_file_name_must_match_id_and_version(tmp_path):
    path = tmp_path / "default-flags@2.yaml"
    path.write_text(DEFAULT_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(FlagRulesError, match=r"default-flags@2.yaml: file name must be"):
        load_rule_set(path)


@pytest.mark.parametrize("text", ["- just\n- a list\n", "id: [unclosed\n", ""])
def test_a_file_that_is_not_a_rules_mapping_is_refused(tmp_path, text):
    path = tmp_path / "broken@1.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FlagRulesError, match=r"^broken@1.yaml: "):
        load_rule_set(path)


def test_a_file_with_another_suffix_is_refused(tmp_path):
    path = tmp_path / "default-flags@1.txt"
    path.write_text("", encoding="utf-8")
    with pytest.raises(FlagRulesError, match="not a rules file"):
        load_rule_set(path)


def test_rules_error_never_quotes_the_rejected_value(tmp_path):
    data = mutated(lambda d: rule(d, "idva_referral").update(title="x" * 81))
    with pytest.raises(FlagRulesError) as caught:
        parse_rule_set(data, origin="area@1.yaml")
    assert "x" * 81 not in str(caught.value)
    assert "rules[1].title" in str(caught.value)


def test_published_document_round_trips_to_the_same_rules_and_hash(default_rules):
    document = default_rules.document()
    assert document == default_data()
    again = parse_rule_set(document)
    assert (again.sha256, again.spec) == (default_rules.sha256, default_rules.spec)
    document["rules"].clear()  # a copy: the registry's rules are untouched
    assert len(default_rules.rules) == 18


def test_shipped_rules_directory_contains_only_valid_rules_files():
    files = sorted(p.name for p in Path(RULES_DIR).iterdir() if p.is_file() and p.suffix != ".py")
    assert files == ["default-flags@1.yaml", "default-flags@2.yaml", "example-area-flags@1.yaml"]
