"""The optional classifier served through the API (the shipped demo model, trained on
synthetic data). Incidents are invented test data."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.classifier.artifact import ArtifactError
from app.config import ROOT, Settings
from app.db import Database
from app.main import create_app
from tests.assessments.test_assessment_api import quiet_incident
from tests.conftest import build_app

DEMO = ROOT / "models" / "demo-synthetic" / "1"


def client_with(db: Database, **settings: Any) -> TestClient:
    base = Settings(environment="test", database_url=db.url, classifier_path=str(DEMO))
    return TestClient(build_app(base.model_copy(update=settings), db, None))


def test_assessment_carries_classifier_output_and_reproduces(
    fresh_database: Database, make_key_fresh: Any, incident: dict[str, Any]
) -> None:
    submitter = make_key_fresh(fresh_database)
    auditor = make_key_fresh(fresh_database, "auditor")
    with client_with(fresh_database) as c:
        r = c.post("/v1/incidents", json=incident, headers=submitter)
        assert r.status_code == 201, r.text
        clf = r.json()["assessment"]["classifier"]
        assert clf["name"] == "demo-synthetic"
        assert len(clf["sha256"]) == 64
        assert 0.0 < clf["probability"] < 1.0
        assert clf["policy"]["never_lowers_level"] is True
        assert clf["synthetic_training_data"] is True
        assert len(clf["top_factors"]) <= 4
        # Exact contributions for the linear model: they add up to the log-odds difference.
        explanation = clf["explanation"]
        total = sum(f["contribution"] for f in explanation["contributions"])
        assert total == pytest.approx(
            explanation["log_odds"] - explanation["reference_log_odds"], abs=1e-4
        )
        assessment_id = r.json()["assessment"]["id"]
        rep = c.post(f"/v1/assessments/{assessment_id}/reproduce", headers=auditor).json()
        assert rep["identical"] is True, rep
    # Without the model loaded, reproduce says it cannot re-run the classifier.
    with TestClient(
        build_app(
            Settings(environment="test", database_url=fresh_database.url), fresh_database, None
        )
    ) as c:
        rep = c.post(f"/v1/assessments/{assessment_id}/reproduce", headers=auditor).json()
        assert rep["identical"] is False
        assert any(d["path"].startswith("/classifier") for d in rep["differences"])


def test_probability_above_threshold_raises_flag_but_never_the_level_by_default(
    fresh_database: Database, make_key_fresh: Any, incident: dict[str, Any]
) -> None:
    submitter = make_key_fresh(fresh_database)
    with client_with(fresh_database, classifier_threshold=0.001) as c:
        body = c.post("/v1/incidents", json=quiet_incident(incident, 0, "CLF-1"), headers=submitter)
    result = body.json()
    assert result["assessment"]["victim"]["level"] == "standard"
    assert result["assessment"]["classifier"]["elevated"] is True
    flags = [f for f in result["flags"] if f["type"] == "classifier_elevated"]
    assert len(flags) == 1
    assert flags[0]["agency"] == "triage"


def test_area_configuration_may_let_the_classifier_raise_the_level(
    fresh_database: Database, make_key_fresh: Any, incident: dict[str, Any]
) -> None:
    submitter = make_key_fresh(fresh_database)
    auditor = make_key_fresh(fresh_database, "auditor")
    overrides = {
        incident["area"]: {"classifier_threshold": "0.001", "classifier_may_raise_level": "true"}
    }
    with client_with(fresh_database, area_overrides=overrides) as c:
        r = c.post("/v1/incidents", json=quiet_incident(incident, 0, "CLF-2"), headers=submitter)
        victim = r.json()["assessment"]["victim"]
        assert victim["level"] == "medium"
        assert victim["score_level"] == "standard"
        assert any(t["rule"] == "classifier" and t["fired"] for t in victim["triggers"])
        rep = c.post(
            f"/v1/assessments/{r.json()['assessment']['id']}/reproduce", headers=auditor
        ).json()
        assert rep["identical"] is True, rep


def test_a_tampered_artifact_stops_the_service_at_start_up(tmp_path: Path) -> None:
    copy = tmp_path / "demo"
    shutil.copytree(DEMO, copy)
    model = copy / "model.skops"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        create_app(
            Settings(environment="test", database_url="sqlite://", classifier_path=str(copy))
        )
