"""What-if: stored incidents re-scored under a draft, checked against re-scoring by hand.

The incidents are posted through the API (so their stored inputs are what intake stores);
the expected changes are computed with the engine directly on those stored inputs. All
data is invented test data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.assessments.models import Assessment
from app.audit.models import AuditEvent
from app.auth.keys import create_key
from app.cli import main as cli_main
from app.config import Settings, get_settings
from app.contract.incident import stored_incident
from app.db import Base, Database
from app.flags.calendar import Calendar
from app.flags.engine import AssessmentView, evaluate_flags, evaluate_view, parts_read
from app.flags.ruleset import FlagRuleRegistry
from app.intake.context import ScoringContext
from app.reports.suppression import HIDDEN
from app.reports.whatif import (
    NOT_SCORED,
    DraftError,
    EngineView,
    ScenarioSpec,
    Tally,
    _sharing,
    affected_scores,
    parse_draft,
    parse_inputs,
    partial_view,
    parts_changed,
    rescore_rows,
    run,
    same_victim_view,
    victim_view,
)
from app.reports.whatif_repository import Scope, stream_rows
from app.scoring.engine import assess, assess_victim_pair
from app.scoring.history import (
    ChildHistory,
    History,
    LinkedVictim,
    PerpetratorHistory,
    StoredIncident,
    StoredMaracReferral,
    VictimHistory,
)
from app.scoring.judgement import Judgement
from app.scoring.registry import (
    DefinitionSet,
    VictimChecklistDefinition,
    definition_from_document,
    load_registry,
)
from tests.conftest import TempDatabase, build_app, example_incident
from tests.scoring.test_scoring_properties import scenario

AREA = "E09000018"
CRITICAL = ("strangulation", "threat_to_kill", "weapons_used")
# Yes answers per incident: around the shipped high band (14+) and the draft's (16+).
YES_COUNTS = (11, 12, 13, 14, 14, 14, 15, 15, 15, 16, 17, 14, 15)
CURRENT = ("dash-ric@2", "dash-police@2")


def body_with_yes(n: int) -> dict[str, Any]:
    """The example incident with ``n`` yes answers, none critical, no reported history."""
    body = example_incident()
    body["source"]["reference"] = f"PPN-W-{uuid.uuid4().hex[:12]}"
    body["area"] = AREA
    for person in body["persons"]:
        person.pop("identifiers", None)
        if "name" in person:
            person["name"]["family"] = f"Family{uuid.uuid4().hex[:8]}"
    answers = body["victim_checklist"]["answers"]
    items = [i for i in answers if i not in CRITICAL]
    for i, item in enumerate(items):
        answers[item] = "yes" if i < n else "no"
    for item in CRITICAL:
        answers[item] = "no"
    body["victim_checklist"]["comments"] = {}
    # Recorded facts would make critical items yes (rules v2 effective answers).
    body["circumstances"].update(strangulation=False, weapon_used=False, injury_to_victim=False)
    body["victim_history"] = {"prior_da_incidents_12m": 0, "last_marac_referral": None}
    return body


def draft_document(high_from: int = 16) -> dict[str, Any]:
    document = load_registry().get_ref("dash-ric@2").document()
    document["version"] = "draft-w"
    document["thresholds"]["high_from"] = high_from
    document["marac"]["visible_high_risk"]["score_from"] = high_from
    return document


class Env:
    def __init__(self, db: Database, client: TestClient, keys: dict[str, dict[str, str]]):
        self.db = db
        self.client = client
        self.keys = keys

    def what_if(self, body: dict[str, Any], who: str = "auditor") -> Any:
        return self.client.post("/v1/reports/what-if", json=body, headers=self.keys[who])

    def stored_inputs(self) -> list[dict[str, Any]]:
        with self.db.unit(read_only=True) as s:
            return [a.inputs for a in s.scalars(select(Assessment)) if a.inputs]

    def row_counts(self) -> dict[str, int]:
        with self.db.unit(read_only=True) as s:
            return {
                t.name: int(s.execute(select(func.count()).select_from(t)).scalar_one())
                for t in Base.metadata.sorted_tables
            }


@pytest.fixture(scope="module")
def env(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """One database for the module, seeded once: the tests only read it (and append audit
    events, which no test counts across tests)."""
    temp = TempDatabase(backend, tmp_path_factory.mktemp("whatif"), prefix="whatif_test")
    database = Database(temp.url)
    settings = Settings(environment="test", database_url=database.url)
    keys = {role: _key(database, role) for role in ("submitter", "auditor", "triage")}
    app = build_app(settings, database, None)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            for n in YES_COUNTS:
                r = client.post("/v1/incidents", json=body_with_yes(n), headers=keys["submitter"])
                assert r.status_code == 201, r.text
            yield Env(database, client, keys)
    finally:
        database.dispose()
        temp.drop()


def _key(database: Database, role: str) -> dict[str, str]:
    extra: dict[str, Any] = {}
    if role == "submitter":
        extra["source_system"] = "force-a-records"
    if role == "triage":
        extra["areas"] = [AREA]
    with database.session() as s:
        issued = create_key(s, role=role, **extra)  # type: ignore[arg-type]
        s.commit()
    return {"Authorization": f"Bearer {issued.secret}", "X-Purpose": "audit"}


def by_hand(inputs: list[dict[str, Any]], draft: dict[str, Any]) -> tuple[Tally, Counter[int]]:
    """The expected tally, from the engine called directly, and the scores (with how many
    victims of each) whose level changed."""
    registry = load_registry()
    current = registry.definition_set(CURRENT)
    assert parse_draft(draft).kind == "victim_checklist"
    proposed = dataclasses.replace(
        current,
        victim_checklists={
            **current.victim_checklists,
            "dash-ric": definition_from_document(draft, "draft"),
        },
    )
    rules = FlagRuleRegistry.from_directory().get("default-flags@2")
    tally = Tally()
    changed_scores: Counter[int] = Counter()
    for stored in inputs:
        incident = stored_incident(stored["incident"])
        history = History.from_dict(stored["history"])
        judgements = [Judgement.from_dict(j) for j in stored["judgements"]]
        before = assess(incident, history, current, judgements).to_dict()
        after = assess(incident, history, proposed, judgements).to_dict()
        tally.incidents += 1
        tally.victims[(before["victim"]["level"], after["victim"]["level"])] += 1
        if before["victim"]["level"] != after["victim"]["level"]:
            changed_scores[before["victim"]["score"]] += 1
        for b, a in zip(before["children"], after["children"], strict=True):
            tally.children[(b["level"], a["level"])] += 1
        cb, ca = (
            set(before["victim"]["marac"]["criteria"]),
            set(after["victim"]["marac"]["criteria"]),
        )
        tally.marac_appearing.update(ca - cb)
        tally.marac_disappearing.update(cb - ca)
        fb = {p.dedupe_key: p.type for p in evaluate_flags(incident, before, rules, Calendar())}
        fa = {p.dedupe_key: p.type for p in evaluate_flags(incident, after, rules, Calendar())}
        tally.flags_appearing.update(t for k, t in fa.items() if k not in fb)
        tally.flags_disappearing.update(t for k, t in fb.items() if k not in fa)
    return tally, changed_scores


def _tally(env: Env, draft: dict[str, Any], workers: int, *, use_stored: bool = True) -> Tally:
    context = ScoringContext.load(Settings(environment="test", database_url=env.db.url))
    spec = ScenarioSpec.for_area(context, AREA, parse_draft(draft), use_stored=use_stored)
    with env.db.engine.connect() as connection:
        rows = stream_rows(connection, Scope(AREA), 4, spec.stored_keys())
        return run(spec, rows, workers=workers)


def test_a_raised_threshold_changes_exactly_the_victims_between_old_and_new_threshold(
    env: Env,
) -> None:
    draft = draft_document(high_from=16)
    expected, changed_scores = by_hand(env.stored_inputs(), draft)
    assert set(changed_scores) == {14, 15}  # exactly those between the old and new bands
    changed = changed_scores.total()
    assert changed >= 5  # enough to be shown after suppression
    assert expected.victims[("high", "medium")] == changed
    for workers in (1, 2):
        for use_stored in (True, False):
            got = _tally(env, draft, workers, use_stored=use_stored)
            assert got == expected, (workers, use_stored)
            # Rows whose victim part the draft leaves as stored are counted from their
            # stored result; the others are scored on both sides.
            assert got.stored == (len(YES_COUNTS) - changed if use_stored else 0)
    assert expected.marac_disappearing == Counter({"visible_high_risk": changed})
    assert expected.flags_disappearing["idva_referral"] == changed


def test_the_api_answers_suppressed_aggregates_and_stores_nothing_but_an_audit_event(
    env: Env,
) -> None:
    expected, _ = by_hand(env.stored_inputs(), draft_document())
    down = expected.victims[("high", "medium")]
    before = env.row_counts()
    r = env.what_if({"area": AREA, "definition": draft_document()})
    assert r.status_code == 200, r.text
    body = r.json()
    after = env.row_counts()
    assert after.pop("audit_events") == before.pop("audit_events") + 1
    assert after == before
    victims = body["victims"]["before_after"]
    assert victims["high"]["medium"] == down
    assert victims["standard"]["high"] == HIDDEN  # zero is hidden too
    assert body["victims"]["changed"]["down"] == down
    assert body["incidents"] == len(YES_COUNTS)

    def counts(value: Any) -> Iterator[Any]:
        if isinstance(value, dict):
            for v in value.values():
                yield from counts(v)
        elif isinstance(value, int) and not isinstance(value, bool):
            yield value

    shown = [v for k, v in body.items() if k not in ("seconds", "draft") for v in counts(v)]
    assert all(v >= 5 for v in shown)
    with env.db.unit(read_only=True) as s:
        event = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert event is not None
    assert event.operation == "consult"
    assert event.detail["draft_sha256"] == body["draft"]["sha256"]
    assert event.detail["victims_changed"] == down


def test_a_yaml_draft_text_is_accepted_like_the_object(env: Env) -> None:
    text = yaml.safe_dump(draft_document())
    r = env.what_if({"area": AREA, "definition": text})
    assert r.status_code == 200, r.text
    assert (
        r.json()["victims"]["changed"]["down"]
        == by_hand(env.stored_inputs(), draft_document())[0].victims[("high", "medium")]
    )


@pytest.mark.parametrize(
    "definition",
    [
        "kind: victim_checklist\nid: dash-ric\n  title: [SECRET-VALUE",  # not YAML
        {"kind": "SECRET-VALUE"},  # unknown kind
        {**draft_document(), "thresholds": {"medium_from": 10, "high_from": "SECRET-VALUE"}},
        {**draft_document(), "extra": "SECRET-VALUE"},
    ],
)
def test_a_bad_draft_is_refused_without_echoing_it(env: Env, definition: Any) -> None:
    r = env.what_if({"area": AREA, "definition": definition})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "SECRET-VALUE" not in r.text
    assert r.json()["errors"]


def test_only_an_auditor_may_ask(env: Env) -> None:
    r = env.what_if({"area": AREA, "definition": draft_document()}, who="triage")
    assert r.status_code == 403
    r = env.what_if({"area": AREA, "definition": draft_document()}, who="submitter")
    assert r.status_code == 403


def test_the_command_line_rescores_with_workers_and_prints_the_same_report(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "dash-ric@draft-w.yaml"
    path.write_text(json.dumps(draft_document()), "utf-8")
    monkeypatch.setenv("TRIAGE_DATABASE_URL", env.db.url)
    monkeypatch.setenv("TRIAGE_ENVIRONMENT", "test")
    get_settings.cache_clear()
    try:
        code = cli_main(
            ["rescore", "--definition", str(path), "--area", AREA, "--json", "--workers", "2"]
        )
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr()
    assert code == 0, out.err
    body = json.loads(out.out)
    expected, _ = by_hand(env.stored_inputs(), draft_document())
    assert body["victims"]["changed"]["down"] == expected.victims[("high", "medium")]
    assert "rescored 13/13" in out.err  # plain progress when not on a terminal


def test_the_command_line_refuses_a_bad_draft(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "draft.yaml"
    path.write_text("kind: nothing-we-know\nsecret: SECRET-VALUE\n", "utf-8")
    assert cli_main(["rescore", "--definition", str(path), "--area", AREA]) == 2
    err = capsys.readouterr().err
    assert "kind" in err
    assert "SECRET-VALUE" not in err


def test_parse_draft_refuses_a_rules_file_with_problems() -> None:
    with pytest.raises(DraftError):
        parse_draft({"id": "x", "version": "1", "rules": [{"id": "SECRET-VALUE"}]})


def child_risk_draft(without: str = "serious") -> dict[str, Any]:
    document = load_registry().get_ref("child-risk@2").document()
    document["version"] = "draft-c"
    document["rules"] = [r for r in document["rules"] if r["level"] != without]
    return document


def victim_high_child_risk_draft() -> dict[str, Any]:
    """Without the rule that makes a child serious when the victim is high risk: changes
    the children of the incidents with a high-risk victim, not the others'."""
    document = child_risk_draft(without="")
    document["rules"] = [r for r in document["rules"] if r["id"] != "victim_high"]
    return document


def flag_rules_draft(without: str = "idva_referral") -> dict[str, Any]:
    document = FlagRuleRegistry.from_directory().get("default-flags@2").document()
    document["version"] = "99"
    document["rules"] = [r for r in document["rules"] if r["id"] != without]
    return document


def idva_widened_draft() -> dict[str, Any]:
    """The IDVA referral for medium risk too: reads the victim's part alone."""
    document = flag_rules_draft(without="")
    for rule in document["rules"]:
        if rule["id"] == "idva_referral":
            rule["when"] = {"victim_level_in": ["medium", "high"]}
    return document


def child_flag_rules_draft() -> dict[str, Any]:
    """Without the severe children's social care referral: reads each child's level (the
    whole assessment is scored)."""
    return flag_rules_draft(without="children_social_care_referral_severe")


def incident_flag_rules_draft() -> dict[str, Any]:
    """Without Operation Encompass: reads the incident alone (nothing is scored)."""
    return flag_rules_draft(without="operation_encompass")


def perpetrator_flag_rules_draft() -> dict[str, Any]:
    """Without the serial-perpetrator flag: reads the perpetrator's part."""
    return flag_rules_draft(without="serial_perpetrator")


def police_draft() -> dict[str, Any]:
    document = load_registry().get_ref("dash-police@2").document()
    document["version"] = "draft-p"
    document["thresholds"]["high_from"] = 16
    return document


def effective_answers_draft() -> dict[str, Any]:
    """A dash-ric draft that derives one effective answer differently (the officer's
    observed strangulation no longer counts), with the high band raised too."""
    document = draft_document(high_from=15)
    document["effective_answers"] = [
        rule for rule in document["effective_answers"] if rule["item"] != "strangulation"
    ]
    return document


def visible_off_draft() -> dict[str, Any]:
    """A dash-ric draft that turns the visible-high-risk MARAC criterion off (not only a
    threshold): its incidents are scored on the victim's part, under both definitions;
    those at 14 or more change."""
    document = draft_document(high_from=14)
    document["marac"]["visible_high_risk"]["enabled"] = False
    return document


@pytest.mark.parametrize(
    ("make", "stored"),
    [
        (draft_document, 5),
        (visible_off_draft, None),
        (effective_answers_draft, 0),
        (police_draft, 13),
        (child_risk_draft, 0),
        (victim_high_child_risk_draft, 3),
        (flag_rules_draft, len(YES_COUNTS)),
        (idva_widened_draft, len(YES_COUNTS)),
        (child_flag_rules_draft, len(YES_COUNTS)),
        (incident_flag_rules_draft, len(YES_COUNTS)),
        (perpetrator_flag_rules_draft, len(YES_COUNTS)),
    ],
    ids=[
        "dash-ric",
        "dash-ric-visible-off",
        "dash-ric-effective-answers",
        "dash-police",
        "child-risk",
        "child-risk-victim-high",
        "flag-rules",
        "flag-rules-victim-widened",
        "flag-rules-child",
        "flag-rules-incident",
        "flag-rules-perpetrator",
    ],
)
def test_counting_stored_results_answers_as_scoring_every_row(
    env: Env, make: Any, stored: int | None
) -> None:
    """The test incidents are all dash-ric: a dash-police draft cannot change them, so each
    is counted from its stored result. A dash-ric draft that moves only thresholds leaves
    the incidents at other scores (all but the 8 between the bands) to be counted from their
    stored result, without reading their inputs; one that turns a MARAC criterion off (and
    derives effective answers as the current checklist does) is scored on the victim's part
    alone, and the incidents whose victim part it leaves as it was are counted from their
    stored result. A flag-rules draft changes no level: every row is counted from its
    stored levels, with the changed rules' flags evaluated on the parts of the assessment
    they read. A child-risk draft scores the children's part of every row under both
    definitions, and the incidents whose children it leaves as they were are counted from
    their stored result."""
    draft = make()
    slow = _tally(env, draft, 1, use_stored=False)
    fast = _tally(env, draft, 2, use_stored=True)
    assert slow.stored == 0
    if stored is None:
        assert 0 < fast.stored < fast.incidents
    else:
        assert fast.stored == stored
    assert fast == slow
    assert slow.incidents == len(YES_COUNTS)
    assert slow.failed == 0
    if parse_draft(draft).kind == "flag_rules":
        # Not vacuous: each of these drafts moves some flags of the test incidents.
        assert slow.flags_appearing or slow.flags_disappearing


def _rows(env: Env, connection: Any) -> list[Any]:
    context = ScoringContext.load(Settings(environment="test", database_url=env.db.url))
    keys = ScenarioSpec.for_area(context, AREA, parse_draft(police_draft())).stored_keys()
    return [r for batch in stream_rows(connection, Scope(AREA), 100, keys) for r in batch]


@pytest.mark.parametrize(
    "change",
    [
        {"victim_checklist_sha256": "0" * 64},
        {"child_checklist_sha256": "0" * 64},
        {"engine": "0"},
        {"classifier": True},
    ],
    ids=["victim-sha", "child-sha", "engine-version", "classifier-raised"],
)
def test_a_stored_result_is_counted_as_it_is_only_when_it_is_the_current_result(
    env: Env, change: dict[str, Any]
) -> None:
    with env.db.engine.connect() as connection:
        rows = _rows(env, connection)
        assert all(r[3] is None for r in rows)  # every row counted from its stored levels
        assert {r[1] for r in rows} == {"high", "medium"}
        target = connection.execute(select(Assessment).limit(1)).first()
        assert target is not None
        values: dict[str, Any] = {}
        if "engine" in change:
            values["engine_version"] = change["engine"]
        elif "classifier" in change:
            values["classifier_raised"] = True
            values["classifier_sha256"] = "1" * 64
        else:
            values.update(change)
        # One transaction, rolled back: the module's database stays as seeded.
        connection.execute(
            Assessment.__table__.update()
            .where(Assessment.__table__.c.id == target.id)
            .values(**values)
        )
        changed = _rows(env, connection)
        connection.rollback()
    scored = [r for r in changed if r[3] is not None]
    assert len(scored) == 1
    assert scored[0][1] is None
    assert json.loads(scored[0][3]) == target.inputs


def test_a_classifier_that_did_not_raise_the_level_does_not_stop_counting(env: Env) -> None:
    with env.db.engine.connect() as connection:
        connection.execute(Assessment.__table__.update().values(classifier_sha256="1" * 64))
        rows = _rows(env, connection)
        connection.rollback()
    assert all(r[3] is None for r in rows)


def test_inputs_parse_as_stored_and_flags_read_the_engine_objects(env: Env) -> None:
    registry = FlagRuleRegistry.from_directory()
    for stored in env.stored_inputs():
        incident, history, judgements = parse_inputs(json.dumps(stored))
        assert incident == stored_incident(stored["incident"])
        assert history == History.from_dict(stored["history"])
        assert judgements == [Judgement.from_dict(j) for j in stored["judgements"]]
        a = assess(incident, history, load_registry().definition_set(CURRENT), judgements)
        # The engine's objects read as the validated view of the assessment's JSON does.
        view = EngineView.of(a)
        assert AssessmentView.model_validate(view, from_attributes=True) == AssessmentView.read(
            a.to_dict(), incident
        )
        for key in ("default-flags@1", "default-flags@2", "example-area-flags@1"):
            rules = registry.get(key)
            assert evaluate_view(incident, view, rules, Calendar()) == evaluate_flags(
                incident, a.to_dict(), rules, Calendar()
            )


def _one_rule_sets() -> list[Any]:
    registry = FlagRuleRegistry.from_directory()
    out = []
    for key in ("default-flags@1", "default-flags@2", "example-area-flags@1"):
        rules = registry.get(key)
        for rule in rules.spec.rules:
            spec = rules.spec.model_copy(update={"rules": [rule]})
            out.append(dataclasses.replace(rules, spec=spec))
    return out


def test_each_rule_gives_the_same_flags_on_the_parts_it_reads_alone(env: Env) -> None:
    """For every shipped rule on its own: the flags on a view with only the parts of the
    assessment it reads (the others not scored) are the flags on the whole assessment.
    Between them the rules read every part (none, the victim's alone, and more)."""
    definitions = load_registry().definition_set(CURRENT)
    seen: set[frozenset[str]] = set()
    for stored in env.stored_inputs():
        incident, history, judgements = parse_inputs(json.dumps(stored))
        whole = EngineView.of(assess(incident, history, definitions, judgements))
        for rules in _one_rule_sets():
            parts = parts_read(rules)
            seen.add(parts)
            expected = evaluate_view(incident, whole, rules, Calendar())
            # The victim's level scored again, or given (the stored one, in the what-if).
            for level in (None, whole.victim.level):
                view = partial_view(parts, incident, history, definitions, judgements, level)
                assert evaluate_view(incident, view, rules, Calendar()) == expected, (
                    rules.spec.rules[0].id
                )
    assert {frozenset(), frozenset({"victim"})} <= seen
    assert any("children" in p for p in seen)
    assert any("perpetrator" in p for p in seen)


def test_a_part_not_scored_fails_when_read_rather_than_passing_for_empty(env: Env) -> None:
    definitions = load_registry().definition_set(CURRENT)
    incident, history, judgements = parse_inputs(json.dumps(env.stored_inputs()[0]))
    rules = FlagRuleRegistry.from_directory().get("default-flags@2")
    view = partial_view(frozenset(), incident, history, definitions, judgements)
    with pytest.raises(AttributeError, match="not scored"):
        evaluate_view(incident, view, rules, Calendar())


def _keys(incident: Any, a: Any, rules: Any) -> set[str]:
    return {p.dedupe_key for p in evaluate_view(incident, EngineView.of(a), rules, Calendar())}


@pytest.mark.parametrize(
    "make",
    [draft_document, visible_off_draft, effective_answers_draft, child_risk_draft],
    ids=["dash-ric", "dash-ric-visible-off", "dash-ric-effective-answers", "child-risk"],
)
def test_flags_that_differ_come_only_from_rules_reading_a_part_that_differs(
    env: Env, make: Any
) -> None:
    """Between an incident's current and draft assessments, the flags of the whole rule
    set differ exactly as those of the rules reading a part that differs
    (``parts_changed``, ``Scenario.rules_reading``), and equal parts give equal flags."""
    context = ScoringContext.load(Settings(environment="test", database_url="sqlite://"))
    scenario = ScenarioSpec.for_area(context, AREA, parse_draft(make())).build()
    moved = 0
    for stored in env.stored_inputs():
        incident, history, judgements = parse_inputs(json.dumps(stored))
        before = assess(incident, history, scenario.current, judgements)
        after = assess(incident, history, scenario.draft, judgements)
        changed = parts_changed(before, after)

        whole = _keys(incident, before, scenario.rules) ^ _keys(incident, after, scenario.rules)
        if not changed:
            assert not whole
            continue
        cut = scenario.rules_reading(changed)
        assert _keys(incident, before, cut) ^ _keys(incident, after, cut) == whole
        moved += bool(whole)
    assert moved  # each draft moves some flags of the test incidents


@pytest.mark.parametrize("use_stored", [True, False], ids=["stored-levels", "scored"])
def test_a_row_whose_flags_fail_is_counted_as_failed_and_as_nothing_else(
    env: Env, use_stored: bool
) -> None:
    """The changed rules read the victim's part; told they read nothing, the view has no
    victim and reading it fails: the row is failed, not also an incident of the tally."""
    context = ScoringContext.load(Settings(environment="test", database_url="sqlite://"))
    spec = ScenarioSpec.for_area(context, AREA, parse_draft(flag_rules_draft()))
    scenario = dataclasses.replace(spec.build(), flag_parts=frozenset())
    stored = json.dumps(env.stored_inputs()[0])
    if use_stored:
        row: Any = ("dash-ric", "high", (0, 0, 1, 0), stored)
        tally = rescore_rows(scenario, [row])
    else:
        # Scored in full: the flags read a view of an assessment without its victim.
        incident, history, judgements = parse_inputs(stored)
        whole = assess(incident, history, scenario.current, judgements)
        broken = dataclasses.replace(whole, victim=NOT_SCORED)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("app.reports.whatif.assess", lambda *_: broken)
            tally = rescore_rows(scenario, [(None, None, None, stored)])
    assert tally == Tally(failed=1)


def test_a_flag_rules_draft_scores_only_what_its_changed_rules_read() -> None:
    context = ScoringContext.load(Settings(environment="test", database_url="sqlite://"))

    def parts(make: Any) -> frozenset[str]:
        return ScenarioSpec.for_area(context, AREA, parse_draft(make())).build().flag_parts

    assert parts(flag_rules_draft) == {"victim"}
    assert parts(idva_widened_draft) == {"victim"}
    assert parts(incident_flag_rules_draft) == frozenset()
    assert parts(child_flag_rules_draft) == {"children"}
    assert parts(perpetrator_flag_rules_draft) == {"perpetrator"}


def test_a_history_with_every_field_set_parses_as_from_dict(env: Env) -> None:
    """The stored history is built by pydantic in ``parse_inputs``'s one pass: every field
    as ``History.from_dict`` builds it (invented ids and dates)."""
    stored = env.stored_inputs()[0]
    victim_ref = stored["history"]["victim"]["person_ref"]
    perpetrator_ref = stored["history"]["perpetrator"]["person_ref"]
    history = History(
        victim=VictimHistory(
            victim_ref,
            "person-v",
            (StoredIncident("i-1", dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)),),
            StoredMaracReferral("i-1", dt.date(2026, 3, 2)),
            2,
            dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC),
            dt.date(2025, 12, 1),
        ),
        perpetrator=PerpetratorHistory(
            perpetrator_ref,
            "person-p",
            (LinkedVictim("person-x", ("i-0", "i-1")),),
            ("i-0", "i-1"),
            3,
            2,
            dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC),
            True,
            False,
            None,
            ("weapons",),
        ),
        children=(ChildHistory("c1", "person-c", ("i-1",)),),
        stored_consulted=True,
    )
    text = json.dumps({**stored, "history": history.to_dict()})
    assert parse_inputs(text)[1] == History.from_dict(history.to_dict()) == history


def test_a_draft_that_moves_only_thresholds_names_the_scores_it_can_change() -> None:
    registry = load_registry()
    current = registry.get_ref("dash-ric@2")
    current_definition = definition_from_document(current.document(), "current")
    assert isinstance(current_definition, VictimChecklistDefinition)

    def scores(document: dict[str, Any]) -> frozenset[int] | None:
        draft = definition_from_document(document, "draft")
        assert isinstance(draft, VictimChecklistDefinition)
        return affected_scores(current_definition, draft)

    assert scores(draft_document(high_from=16)) == {14, 15}
    same = current.document()
    same["version"] = "draft-same"
    assert scores(same) == frozenset()
    relabelled = draft_document(high_from=16)
    relabelled["items"][0]["label"] = "another wording"
    assert scores(relabelled) is None
    assert scores(effective_answers_draft()) is None
    red_flags = draft_document(high_from=16)
    red_flags["red_flag"]["criticals_needed"] = 1
    assert scores(red_flags) is None


def _dash_ric(document: dict[str, Any]) -> VictimChecklistDefinition:
    definition = definition_from_document(document, "draft")
    assert isinstance(definition, VictimChecklistDefinition)
    return definition


def _relabelled() -> dict[str, Any]:
    document = draft_document(high_from=14)
    document["items"][0]["label"] = "Another wording of the first question"
    return document


def _red_flag() -> dict[str, Any]:
    document = draft_document(high_from=15)
    document["red_flag"]["aggravating_needed"] = 1
    return document


def _draft_sets() -> list[DefinitionSet]:
    """The shipped set with dash-ric replaced by drafts of several kinds, each as compiled
    and with the parts equal to the current ones shared (as the what-if builds it)."""
    current = load_registry().definition_set(CURRENT)
    sets = []
    for make in (
        draft_document,
        _red_flag,
        _relabelled,
        visible_off_draft,
        effective_answers_draft,
    ):
        draft = _dash_ric(make())
        shared = _sharing(draft, current.victim_checklist("dash-ric"))
        assert shared == draft
        for victim in (draft, shared):
            sets.append(
                dataclasses.replace(
                    current, victim_checklists={**current.victim_checklists, "dash-ric": victim}
                )
            )
    return sets


DRAFT_SETS = _draft_sets()


def test_a_draft_shares_the_parts_equal_to_the_current_checklist() -> None:
    current = load_registry().definition_set(CURRENT).victim_checklist("dash-ric")
    red_flag = _sharing(_dash_ric(_red_flag()), current)
    assert red_flag.effective_answers is current.effective_answers
    assert red_flag.item_tables is current.item_tables
    relabelled = _sharing(_dash_ric(_relabelled()), current)
    assert relabelled.item_tables is not current.item_tables
    other_rules = _sharing(_dash_ric(effective_answers_draft()), current)
    assert other_rules.effective_answers != current.effective_answers


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scenario(), draft=st.sampled_from(DRAFT_SETS))
def test_the_quick_comparison_of_victim_parts_is_the_comparison_of_their_views(
    case: tuple[Any, tuple[Judgement, ...], DefinitionSet], draft: DefinitionSet
) -> None:
    """``same_victim_view`` compares whole parts first and views only where those differ:
    the answer is ``victim_view``'s, whatever the draft changed."""
    incident, judgements, current = case
    history = History.reported(incident)
    (before, _), (after, _) = assess_victim_pair(incident, history, current, draft, judgements)
    assert same_victim_view(before, after) == (victim_view(before) == victim_view(after))
