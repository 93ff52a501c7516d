"""The explanation screen with the optional classifier (the shipped demo model, trained on
synthetic data): its output and every reason's contribution, laid out for reading."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from app.config import ROOT, Settings
from app.db import Database
from tests.ui.conftest import SignIn

DEMO = ROOT / "models" / "demo-synthetic" / "1"


@pytest.fixture
def settings(migrated_database: Database) -> Settings:
    return Settings(
        environment="test", database_url=migrated_database.url, classifier_path=str(DEMO)
    )


def test_the_classifiers_contributions_are_shown_and_the_score_reproduces(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], sign_in: SignIn
) -> None:
    created = client.post("/v1/incidents", json=incident, headers=submitter)
    assert created.status_code == 201, created.text
    assessment = created.json()["assessment"]
    classifier = assessment["classifier"]
    token = sign_in("auditor", purpose="audit")
    html = client.get(f"/ui/assessments/{assessment['id']}").text
    assert 'id="classifier-summary"' in html
    assert classifier["sha256"] in html
    assert f"<code>{classifier['name']}</code>" in html
    table = html.split('id="classifier-contributions"')[1].split("</table>")[0]
    contributions = classifier["explanation"]["contributions"]
    assert contributions
    assert table.count("<tr>") == len(contributions) + 1  # the header row
    for factor in contributions:
        assert str(escape(factor["label"])) in table
        assert f"{factor['contribution']:+.4f}" in table
    assert "Trained on synthetic data</dt><dd>Yes" in html
    reproduced = client.post(
        f"/ui/assessments/{assessment['id']}/reproduce", data={"csrf_token": token}
    )
    assert 'data-identical="true"' in reproduced.text
