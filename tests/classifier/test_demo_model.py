"""The shipped demo model loads, is labelled synthetic, and explains the contract example."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.classifier.artifact import load_artifact, load_configured
from app.classifier.scorecard import verify_definition
from app.contract.incident import Incident

DEMO = Path(__file__).resolve().parents[2] / "models" / "demo-synthetic" / "1"


def test_demo_model_loads_and_is_labelled_not_for_operational_use() -> None:
    model = load_artifact(DEMO)
    assert model.synthetic
    assert model.manifest["not_for_operational_use"] is True
    assert "NOT FOR OPERATIONAL USE" in (DEMO / "MODEL_CARD.md").read_text(encoding="utf-8")
    verify_definition(json.loads((DEMO / "scorecard.json").read_text(encoding="utf-8")))
    assert (DEMO / "model.skops").stat().st_size < 2_000_000


def test_demo_model_explains_the_contract_example(example_incident: dict[str, Any]) -> None:
    result = load_artifact(DEMO).explain(Incident.model_validate(example_incident))
    total = sum(f.contribution for f in result.contributions)
    assert total == pytest.approx(result.log_odds - result.reference_log_odds, abs=1e-9)
    body = result.to_dict()
    assert body["synthetic_training_data"] is True
    assert "NOT FOR OPERATIONAL USE" in body["notices"][0]


def test_no_configured_model_means_no_classifier() -> None:
    assert load_configured(None) is None
    assert load_configured("") is None
    assert load_configured(DEMO) is not None
