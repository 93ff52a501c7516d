"""Training and evaluation round trip on small synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.classifier.features import SPEC_BY_NAME

# The shared data sets and model (conftest.py) are built by one worker only.
pytestmark = pytest.mark.xdist_group("classifier")


def test_classifier_beats_the_dash_count_and_is_calibrated(
    trained: tuple[Path, dict[str, Any]],
) -> None:
    _, manifest = trained
    models = manifest["metrics"]["models"]
    clf = models["classifier"]["overall"]
    assert clf["auc"] > models["dash_count"]["overall"]["auc"] + 0.03
    assert clf["auc"] > models["checklist_level"]["overall"]["auc"]
    assert clf["ece"] < 0.05
    assert manifest["metrics"]["oracle_auc"] - clf["auc"] < 0.05


def test_both_candidates_are_compared_and_recorded(trained: tuple[Path, dict[str, Any]]) -> None:
    _, manifest = trained
    assert set(manifest["candidates"]) == {"logistic-regression", "gradient-boosting"}
    for body in manifest["candidates"].values():
        assert 0.5 < body["test"]["auc"] < 1.0


def test_scorecard_is_close_to_the_classifier(trained: tuple[Path, dict[str, Any]]) -> None:
    _, manifest = trained
    models = manifest["metrics"]["models"]
    assert models["scorecard"]["overall"]["auc"] > models["classifier"]["overall"]["auc"] - 0.04


def test_per_group_figures_are_reported(trained: tuple[Path, dict[str, Any]]) -> None:
    _, manifest = trained
    assert manifest["fairness"]["group_by"] == "protected_group"
    groups = manifest["metrics"]["models"]["classifier"]["by_group"]
    assert set(groups) == {"A", "B"}
    for g in groups.values():
        for key in ("auc", "ece", "missed_repeat_share", "false_positive_rate", "base_rate"):
            assert g[key] is not None


def test_yes_answers_never_lower_the_logistic_model(trained: tuple[Path, dict[str, Any]]) -> None:
    from app.classifier.artifact import load_artifact
    from app.classifier.features import preprocessor_columns

    model = load_artifact(trained[0])
    pipeline = model.model.calibrated_classifiers_[0].estimator.estimator
    dropped = model.manifest["candidates"]["logistic-regression"]["excluded_for_monotonicity"]
    coef = pipeline[-1].coef_[0]
    for name, w in zip(preprocessor_columns(dropped), coef, strict=True):
        if SPEC_BY_NAME[name].monotone > 0:
            assert w >= 0, name


def test_manifest_records_provenance(trained: tuple[Path, dict[str, Any]]) -> None:
    _, manifest = trained
    assert len(manifest["training_data"]["sha256"]) == 64
    assert manifest["training_data"]["n"] == 5000
    assert manifest["not_for_operational_use"] is True
    assert manifest["operating_point"]["threshold"] > 0
    assert "training_profile" in manifest
