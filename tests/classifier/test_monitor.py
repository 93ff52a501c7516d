"""Drift monitoring against the training profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.classifier.artifact import load_artifact
from app.classifier.data import Dataset, read_jsonl
from app.classifier.features import feature_matrix
from app.classifier.monitor import drift_report, format_drift
from app.classifier.synth import GeneratorParameters, generate

# The shared data sets and model (conftest.py) are built by one worker only.
pytestmark = pytest.mark.xdist_group("classifier")


def test_same_population_is_stable_and_shifted_population_moves(
    trained: tuple[Path, dict[str, Any]], dataset_small: Dataset, tmp_path: Path
) -> None:
    model = load_artifact(trained[0])
    profile = model.manifest["training_profile"]
    same = feature_matrix((r.incident, None) for r in dataset_small.records[:2000])
    stable = drift_report(profile, same, model.predict_proba(same))
    assert stable["moved"] == []
    assert stable["score_psi"] < 0.1

    drifted_path = tmp_path / "drifted.jsonl"
    generate(2000, 99, drifted_path, GeneratorParameters(drift=1.5))
    drifted = read_jsonl(drifted_path)
    x = feature_matrix((r.incident, None) for r in drifted.records)
    report = drift_report(profile, x, model.predict_proba(x))
    assert report["moved"]
    assert report["unknown_rate"]["recent"] > report["unknown_rate"]["training"]
    assert "features that moved" in format_drift(report)
