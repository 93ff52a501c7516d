"""Artifacts: verified loading, refusal of tampered or incompatible files, explanations."""

from __future__ import annotations

import json
import operator
import shutil
from pathlib import Path
from typing import Any

import pytest
import skops.io as sio
from sklearn.preprocessing import FunctionTransformer

from app.classifier.artifact import (
    ALLOWED_TYPES,
    MAX_TOP_FACTORS,
    ArtifactError,
    dump_model,
    load_artifact,
    result_differences,
    sha256_bytes,
)
from app.classifier.features import ClassifierHistory
from app.classifier.policy import assessment_classifier, combine
from app.contract.incident import Incident

# The shared data sets and model (conftest.py) are built by one worker only.
pytestmark = pytest.mark.xdist_group("classifier")


@pytest.fixture
def artifact_copy(trained: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    target = tmp_path / "copy" / "1"
    shutil.copytree(trained[0], target)
    return target


def _rewrite_manifest(path: Path, **changes: Any) -> None:
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        node = manifest
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    (path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_artifact_holds_all_files_and_loads(trained: tuple[Path, dict[str, Any]]) -> None:
    path, manifest = trained
    for name in (
        "model.skops",
        "manifest.json",
        "scorecard.json",
        "MODEL_CARD.md",
        "roc.png",
        "calibration.png",
        "group_error_rates.png",
    ):
        assert (path / name).is_file(), name
    model = load_artifact(path)
    assert model.sha256 == sha256_bytes((path / "model.skops").read_bytes())
    assert manifest["training_data"]["synthetic"] is True
    assert set(manifest["model"]["trusted_types"]) <= ALLOWED_TYPES
    card = (path / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "NOT FOR OPERATIONAL USE" in card


def test_flipped_byte_in_model_file_is_refused(artifact_copy: Path) -> None:
    model_file = artifact_copy / "model.skops"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_file.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        load_artifact(artifact_copy)


def test_other_scikit_learn_version_is_refused(artifact_copy: Path) -> None:
    _rewrite_manifest(artifact_copy, libraries__scikit_learn="0.0.1")
    manifest = json.loads((artifact_copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["libraries"]["scikit-learn"] = "1.2.0"
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ArtifactError, match="scikit-learn"):
        load_artifact(artifact_copy)


def test_tampered_scorecard_is_refused(artifact_copy: Path) -> None:
    path = artifact_copy / "scorecard.json"
    card = json.loads(path.read_text(encoding="utf-8"))
    card["features"][0]["points"] += 1
    path.write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ArtifactError, match="scorecard"):
        load_artifact(artifact_copy)


def test_type_outside_allow_list_is_refused_even_with_matching_hash(artifact_copy: Path) -> None:
    rogue = FunctionTransformer(func=operator.neg)
    data = sio.dumps(rogue)
    assert not set(sio.get_untrusted_types(data=data)) <= ALLOWED_TYPES
    (artifact_copy / "model.skops").write_bytes(data)
    _rewrite_manifest(artifact_copy, model__sha256=sha256_bytes(data))
    with pytest.raises(ArtifactError, match="allow-list"):
        load_artifact(artifact_copy)
    with pytest.raises(ArtifactError, match="allow-list"):
        dump_model(rogue, artifact_copy / "other.skops")


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError):
        load_artifact(tmp_path / "nothing")


def test_explain_contributions_sum_exactly_to_log_odds_minus_reference(
    trained: tuple[Path, dict[str, Any]], example_incident: dict[str, Any]
) -> None:
    model = load_artifact(trained[0])
    assert model.kind == "logistic-regression"
    result = model.explain(Incident.model_validate(example_incident))
    total = sum(f.contribution for f in result.contributions)
    assert total == pytest.approx(result.log_odds - result.reference_log_odds, abs=1e-9)
    assert result.explanation_method == "exact"
    assert len(result.top_factors) <= MAX_TOP_FACTORS
    raising = [f for f in result.contributions if f.contribution > 0]
    assert result.more_factors == max(0, len(raising) - MAX_TOP_FACTORS)
    assert [f.contribution for f in result.top_factors] == sorted(
        (f.contribution for f in result.top_factors), reverse=True
    )
    body = result.to_dict()
    assert body["sha256"] == model.sha256
    assert body["name"] == model.name
    assert body["version"] == model.version
    assert all(f["reason_id"].startswith("CLF-") for f in body["top_factors"])
    assert body["synthetic_training_data"] is True
    assert body["scorecard"]["total"] == sum(p["points"] for p in body["scorecard"]["points"])


def test_explanation_is_reproducible(
    trained: tuple[Path, dict[str, Any]], example_incident: dict[str, Any]
) -> None:
    incident = Incident.model_validate(example_incident)
    first = load_artifact(trained[0]).explain(incident).to_dict()
    again = load_artifact(trained[0]).explain(incident).to_dict()
    assert result_differences(first, again) == []
    changed = json.loads(json.dumps(again))
    changed["probability"] = 0.5
    assert result_differences(first, changed) == ["classifier.probability"]


def test_stored_history_feeds_the_explanation(
    trained: tuple[Path, dict[str, Any]], example_incident: dict[str, Any]
) -> None:
    model = load_artifact(trained[0])
    incident = Incident.model_validate(example_incident)
    stored = ClassifierHistory(victim_prior_da_incidents_12m=6, source="stored")
    merged = ClassifierHistory.from_incident(incident).merge(stored)
    result = model.explain(incident, merged)
    assert result.history_source == "incident+stored"
    assert result.probability >= model.explain(incident).probability


def test_policy_never_lowers_and_raises_only_when_configured(
    trained: tuple[Path, dict[str, Any]], example_incident: dict[str, Any]
) -> None:
    result = load_artifact(trained[0]).explain(Incident.model_validate(example_incident))
    high = combine("high", result, threshold=0.0)
    assert high.level == "high"
    assert high.classifier_elevated
    advisory = combine("standard", result, threshold=0.0)
    assert advisory.level == "standard"
    assert advisory.classifier_elevated
    raised = combine("standard", result, threshold=0.0, may_raise_level=True)
    assert raised.level == "medium"
    assert raised.level_raised
    quiet = combine("medium", result, threshold=1.01, may_raise_level=True)
    assert quiet.level == "medium"
    assert not quiet.classifier_elevated
    body, _ = assessment_classifier("standard", result)
    assert body["policy"]["never_lowers_level"] is True
    assert body["policy"]["threshold_source"] == "model manifest"


def test_boosted_model_explains_approximately(
    trained: tuple[Path, dict[str, Any]],
    dataset_small: Any,
    example_incident: dict[str, Any],
) -> None:
    import copy as copy_module

    import numpy as np
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    from app.classifier.artifact import LoadedModel
    from app.classifier.features import feature_matrix
    from app.classifier.train import fit_boosting

    x = feature_matrix((r.incident, None) for r in dataset_small.records)
    y = np.array([r.outcome.repeat_incident_12m for r in dataset_small.records], dtype=int)
    hgb = fit_boosting(x[:3500], y[:3500], seed=1)
    calibrated = CalibratedClassifierCV(FrozenEstimator(hgb), method="sigmoid").fit(
        x[3500:], y[3500:]
    )
    base = load_artifact(trained[0])
    manifest = copy_module.deepcopy(base.manifest)
    manifest["model"]["kind"] = "gradient-boosting"
    manifest["model"]["additive"] = False
    model = LoadedModel(base.path, manifest, calibrated, base.scorecard, base.manifest_sha256)
    result = model.explain(Incident.model_validate(example_incident))
    assert result.explanation_method == "approximate"
    assert any("approximate" in n for n in result.notices)
    assert 0.0 < result.probability < 1.0
