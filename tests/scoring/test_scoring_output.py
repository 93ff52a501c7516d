"""The assessment's dict: the contract's fixed names, exact schema, summary, reproduction."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from app.contract.incident import Incident
from app.scoring import (
    DefinitionRegistry,
    DefinitionSet,
    History,
    Judgement,
    assess,
    compare,
    load_registry,
    reproduce,
)
from app.scoring.registry import DEFAULT_DEFINITIONS_DIR
from app.scoring.schemas import AssessmentBody, AssessmentResult
from tests.scoring.factories import (
    PLAIN_ITEMS_RIC,
    at,
    child,
    example_incident_dict,
    make_incident,
)


@pytest.fixture
def example() -> Incident:
    return Incident.model_validate(example_incident_dict())


def as_dict(incident: Incident, definitions: DefinitionSet, **kwargs: Any) -> dict[str, Any]:
    return assess(incident, History.reported(incident), definitions, **kwargs).to_dict()


def test_dict_has_the_contracts_fixed_names(
    example: Incident, definitions_v1: DefinitionSet
) -> None:
    body = as_dict(example, definitions_v1)
    assert {"victim", "children", "perpetrator", "classifier", "summary"} <= set(body)
    # Set by persistence, never by the engine.
    assert not {"id", "version", "created_at"} & set(body)
    victim = body["victim"]
    assert {
        "person_ref",
        "level",
        "score",
        "max_score",
        "unknown_count",
        "checklist",
        "items",
        "triggers",
        "marac",
    } <= set(victim)
    assert set(victim["checklist"]) == {"id", "version", "sha256"}
    assert set(victim["items"][0]) == {"id", "answer", "points", "label"}
    assert {"rule", "effect", "detail", "fired"} <= set(victim["triggers"][0])
    assert set(victim["marac"]) == {"refer", "criteria"}
    assert {"person_ref", "level", "recommended_response", "triggers", "items"} <= set(
        body["children"][0]
    )
    assert {"person_ref", "markers", "serial"} <= set(body["perpetrator"])
    assert body["classifier"] is None
    assert body["definitions"]["child_risk"]["id"] == "child-risk"
    json.dumps(body)  # plain JSON all the way down


def test_contract_example_explains_every_figure(
    example: Incident, definitions_v1: DefinitionSet
) -> None:
    body = as_dict(example, definitions_v1)
    assert body["victim"]["marac"] == {
        "refer": True,
        "criteria": ["visible_high_risk", "potential_escalation"],
    }
    assert [(c["person_ref"], c["level"]) for c in body["children"]] == [
        ("c1", "severe"),
        ("c2", "severe"),
    ]
    assert {(f["subject"], f["name"], f["source"], f["value"]) for f in body["history"]} == {
        ("v1", "prior_da_incidents_12m", "reported", 2),
        ("p1", "prior_da_incidents", "reported", 4),
        ("p1", "prior_da_victims", "reported", 1),
    }


def test_summary_reads_aloud_without_names(
    example: Incident, definitions_v1: DefinitionSet
) -> None:
    summary = as_dict(example, definitions_v1)["summary"]
    assert summary == (
        "High risk: 15 of 24 risk factors, including non-fatal strangulation or suffocation, "
        "threats to kill, separation in the last year, stalking or harassment and 4 more "
        "red-flag factors; 2 answers unknown or not asked; meets MARAC on visible high risk "
        "and potential escalation. Two children: c1 (aged 7) severe — present, witnessed, "
        "intervened, not spoken to; c2 (unborn) severe (raised for age or vulnerability). "
        "Perpetrator linked to other victims (serial)."
    )
    for person in example.persons:
        if person.name is not None:
            assert person.name.given not in summary
            assert person.name.family not in summary
    assert "1994" not in summary
    assert "2019-05-11" not in summary


def varied_incidents() -> list[Incident]:
    """Many shapes of incident: instruments, unknowns, judgements, children, histories."""
    cases = []
    for instrument in ("dash-ric", "dash-police"):
        for yes_count in (0, 5, 10, 14):
            for crit in ((), ("strangulation",), ("weapons_used", "threat_to_kill")):
                cases.append(
                    make_incident(
                        instrument=instrument,
                        yes=(*PLAIN_ITEMS_RIC[:yes_count], *crit),
                        unknown=("separation_past_year",) if yes_count == 5 else (),
                        children=[
                            child("c1", present=True, injured=bool(crit)),
                            child("c2", unborn=True),
                            child("c3", date_of_birth=None, existing_plan="child_protection"),
                        ],
                        victim_history={"prior_da_incidents_12m": yes_count % 3},
                        perpetrator_history={"prior_da_victims": yes_count % 2},
                        officer={"professional_judgement": "medium", "rationale": "Reasons."}
                        if yes_count == 0
                        else None,
                    )
                )
    cases.append(make_incident(answer_map={}))
    cases.append(Incident.model_validate(example_incident_dict()))
    return cases


def test_every_dict_validates_exactly_against_the_response_schema(
    definitions: DefinitionSet,
) -> None:
    for incident in varied_incidents():
        body = as_dict(incident, definitions)
        model = AssessmentResult.model_validate(body)
        # Exactly: nothing dropped, nothing added, nothing coerced (a version-1 item has no
        # rules-v2 keys, and reads back without them).
        assert model.model_dump(mode="json") == body
        stored = {**body, "id": "a-1", "version": 1, "created_at": "2026-11-20T22:31:00Z"}
        AssessmentBody.model_validate(stored)


def test_schema_refuses_unknown_keys(example: Incident, definitions: DefinitionSet) -> None:
    body = as_dict(example, definitions)
    body["victim"]["extra"] = 1
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        AssessmentResult.model_validate(body)


def test_same_inputs_give_an_identical_dict(example: Incident, definitions: DefinitionSet) -> None:
    assert as_dict(example, definitions) == as_dict(
        Incident.model_validate(example_incident_dict()), definitions
    )


# --- Reproduction -----------------------------------------------------------------------


def stored_inputs(incident: Incident) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    history = History.reported(incident).with_stored(victim_incidents=[])
    judgements = [Judgement("high", "Escalating threats.", "triage-3", at("2026-11-21T10:00:00Z"))]
    return incident.model_dump(mode="json"), history.to_dict(), [j.to_dict() for j in judgements]


def test_reproducing_stored_inputs_is_identical(
    example: Incident, registry: DefinitionRegistry, definitions: DefinitionSet
) -> None:
    incident_json, history_json, judgements_json = stored_inputs(example)
    original = assess(
        example,
        History.from_dict(history_json),
        definitions,
        [Judgement.from_dict(j) for j in judgements_json],
    ).to_dict()
    # What the persistence layer stores: JSON, plus its own keys.
    stored = json.loads(json.dumps(original)) | {"id": "a-1", "version": 2, "flag_rules": {}}
    result = reproduce(stored, incident_json, history_json, judgements_json, registry)
    assert result.identical
    assert result.differences == ()
    assert result.to_dict() == {"identical": True, "differences": []}


def test_altered_stored_inputs_are_detected(
    example: Incident, registry: DefinitionRegistry, definitions: DefinitionSet
) -> None:
    incident_json, history_json, judgements_json = stored_inputs(example)
    original = assess(
        example,
        History.from_dict(history_json),
        definitions,
        [Judgement.from_dict(j) for j in judgements_json],
    ).to_dict()
    tampered = copy.deepcopy(incident_json)
    tampered["victim_checklist"]["answers"]["isolated"] = "yes"
    result = reproduce(original, tampered, history_json, judgements_json, registry)
    assert not result.identical
    paths = {d.path: d for d in result.differences}
    assert paths["/victim/score"].stored == 15
    assert paths["/victim/score"].recomputed == 16
    assert paths["/victim/items/3/answer"].recomputed == "yes"
    assert "/inputs_digest" in paths


def test_a_changed_definition_file_is_detected_by_its_hash(
    example: Incident, definitions_v1: DefinitionSet, tmp_path: Path
) -> None:
    incident_json, history_json, judgements_json = stored_inputs(example)
    original = assess(
        example,
        History.from_dict(history_json),
        definitions_v1,
        [Judgement.from_dict(j) for j in judgements_json],
    ).to_dict()
    changed = tmp_path / "definitions"
    shutil.copytree(DEFAULT_DEFINITIONS_DIR, changed)
    path = changed / "dash-ric@1.yaml"
    path.write_text(path.read_text().replace("Sexual abuse", "Sexual violence"))
    result = reproduce(
        original, incident_json, history_json, judgements_json, load_registry(changed)
    )
    paths = [d.path for d in result.differences]
    assert "/victim/checklist/sha256" in paths
    assert "/definitions/victim_checklist/sha256" in paths
    assert "/victim/items/15/label" in paths


def test_a_definition_no_longer_loaded_cannot_be_reproduced(
    example: Incident, registry: DefinitionRegistry, definitions: DefinitionSet
) -> None:
    incident_json, history_json, judgements_json = stored_inputs(example)
    original = as_dict(example, definitions)
    original["definitions"]["victim_checklist"]["version"] = "retired"
    result = reproduce(original, incident_json, history_json, judgements_json, registry)
    assert not result.identical
    assert result.differences[0].path == "/definitions"
    assert "cannot re-run" in result.differences[0].recomputed


def test_compare_gives_json_pointer_paths() -> None:
    stored = {"a": {"b/c": [1, 2]}, "id": "x", "same": True}
    recomputed = {"a": {"b/c": [1, 3, 4]}, "same": 1}
    assert [(d.path, d.stored, d.recomputed) for d in compare(stored, recomputed)] == [
        ("/a/b~1c/1", 2, 3),
        ("/a/b~1c/2", "<absent>", 4),
        ("/same", True, 1),  # True == 1 in Python, not in JSON
    ]
