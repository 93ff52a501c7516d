"""The JSONL training format and its loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.classifier.data import DataFormatError, fairness_groups, parse_line, read_jsonl


def test_nested_and_top_level_lines_are_both_accepted(
    tmp_path: Path, example_incident: dict[str, Any]
) -> None:
    path = tmp_path / "force.jsonl"
    nested = {"incident": example_incident, "outcome": {"repeat_incident_12m": True}}
    flat = dict(example_incident) | {"outcome": {"repeat_incident_12m": False}}
    path.write_text(json.dumps(nested) + "\n\n" + json.dumps(flat) + "\n", encoding="utf-8")
    data = read_jsonl(path)
    assert data.n == 2
    assert [r.outcome.repeat_incident_12m for r in data.records if r.outcome] == [True, False]
    assert not data.synthetic  # a force's own records
    assert len(data.sha256) == 64


def test_invalid_incident_is_rejected_with_line_and_location_not_value(
    example_incident: dict[str, Any],
) -> None:
    bad = dict(example_incident) | {"occurred_at": "2026-11-20T22:15:00"}  # no offset
    with pytest.raises(DataFormatError) as info:
        parse_line(json.dumps({"incident": bad, "outcome": {"repeat_incident_12m": True}}), 7)
    assert "line 7" in str(info.value)
    assert "occurred_at" in str(info.value)
    assert "2026-11-20T22:15:00" not in str(info.value)


def test_outcome_is_required_for_training_but_not_for_monitoring(
    example_incident: dict[str, Any],
) -> None:
    text = json.dumps({"incident": example_incident})
    with pytest.raises(DataFormatError):
        parse_line(text, 1)
    assert parse_line(text, 1, require_outcome=False).outcome is None


def test_outcome_must_be_boolean(example_incident: dict[str, Any]) -> None:
    text = json.dumps({"incident": example_incident, "outcome": {"repeat_incident_12m": 1}})
    with pytest.raises(DataFormatError):
        parse_line(text, 1)


def test_fairness_groups_fall_back_to_victim_ethnicity(
    tmp_path: Path, example_incident: dict[str, Any]
) -> None:
    path = tmp_path / "force.jsonl"
    path.write_text(
        json.dumps({"incident": example_incident, "outcome": {"repeat_incident_12m": True}}),
        encoding="utf-8",
    )
    by, labels = fairness_groups(read_jsonl(path))
    assert by == "victim_ethnicity"
    assert labels == ["W1"]
