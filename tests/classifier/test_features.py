"""The feature pipeline: deterministic rows, unknown kept distinct, nothing learned outside fit."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from app.classifier.data import Dataset
from app.classifier.features import (
    FEATURE_INDEX,
    FEATURE_NAMES,
    NUMERIC_FEATURES,
    ClassifierHistory,
    build_preprocessor,
    feature_matrix,
    incident_features,
    preprocessor_columns,
)
from app.contract.incident import Incident

# The shared data sets and model (conftest.py) are built by one worker only.
pytestmark = pytest.mark.xdist_group("classifier")


def _incident(body: dict[str, Any]) -> Incident:
    return Incident.model_validate(body)


def test_row_has_every_feature_and_is_deterministic(example_incident: dict[str, Any]) -> None:
    inc = _incident(example_incident)
    a, b = incident_features(inc), incident_features(inc)
    assert list(a) == list(FEATURE_NAMES)
    assert a == b or all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in FEATURE_NAMES
    )


def test_unknown_answer_is_not_no(example_incident: dict[str, Any]) -> None:
    body = copy.deepcopy(example_incident)
    body["victim_checklist"]["answers"]["isolated"] = "no"
    no_row = incident_features(_incident(body))
    body["victim_checklist"]["answers"]["isolated"] = "unknown"
    unknown_row = incident_features(_incident(body))
    del body["victim_checklist"]["answers"]["isolated"]
    missing_row = incident_features(_incident(body))
    assert (no_row["ans_isolated_yes"], no_row["ans_isolated_unknown"]) == (0.0, 0.0)
    assert unknown_row["ans_isolated_unknown"] == 1.0
    assert unknown_row["ans_isolated_yes"] == 0.0
    assert missing_row["ans_isolated_not_asked"] == 1.0
    assert no_row != unknown_row


def test_history_and_days_since_last_incident(example_incident: dict[str, Any]) -> None:
    inc = _incident(example_incident)
    hist = ClassifierHistory.from_incident(inc)
    # occurred 2026-11-20T22:15Z, last incident 2026-10-02T19:40Z
    assert hist.days_since_victim_last_incident is not None
    assert 49.0 < hist.days_since_victim_last_incident < 49.2
    row = incident_features(inc, hist)
    assert row["victim_prior_da_12m_ge2"] == 1.0
    assert row["victim_prior_da_12m_ge3"] == 0.0
    assert row["perp_last_within_90d"] == 1.0
    assert row["perp_last_within_30d"] == 0.0
    assert row["perp_prior_da_log"] == math.log1p(4)


def test_missing_history_becomes_nan_plus_indicator(example_incident: dict[str, Any]) -> None:
    body = copy.deepcopy(example_incident)
    body["victim_history"] = {}
    body["perpetrator_history"] = {}
    row = incident_features(_incident(body))
    assert math.isnan(row["victim_prior_da_12m_log"])
    assert row["victim_prior_da_12m_unknown"] == 1.0
    assert row["victim_no_last_incident"] == 1.0
    assert row["prior_custody_unknown"] == 1.0


def test_history_merge_takes_larger_counts_and_more_recent_events() -> None:
    given = ClassifierHistory(victim_prior_da_incidents_12m=1, days_since_victim_last_incident=40)
    stored = ClassifierHistory(
        victim_prior_da_incidents_12m=3, days_since_victim_last_incident=90, source="stored"
    )
    merged = given.merge(stored)
    assert merged.victim_prior_da_incidents_12m == 3
    assert merged.days_since_victim_last_incident == 40
    assert merged.source == "incident+stored"


def test_ethnicity_and_sex_are_not_inputs(example_incident: dict[str, Any]) -> None:
    body = copy.deepcopy(example_incident)
    base = incident_features(_incident(body))
    for person in body["persons"]:
        if person["role"] != "child":
            person["ethnicity"] = "B1"
            person["sex"] = "other"
    changed = incident_features(_incident(body))
    same = all(
        (math.isnan(base[k]) and math.isnan(changed[k])) or base[k] == changed[k]
        for k in FEATURE_NAMES
    )
    assert same


def test_preprocessor_learns_only_in_fit(dataset_small: Dataset) -> None:
    x = feature_matrix((r.incident, None) for r in dataset_small.records)
    train, unseen = x[:3000], x[3000:].copy()
    # Make the unseen data very different: its statistics must not leak into the transform.
    age = FEATURE_INDEX["victim_age"]
    unseen[:, age] = unseen[:, age] + 40.0
    unseen[::2, age] = np.nan
    pipe = Pipeline([("features", build_preprocessor()), ("scale", StandardScaler())])
    pipe.fit(train)
    imputer = pipe.named_steps["features"].named_transformers_["numeric"]
    train_median = np.nanmedian(train[:, age])
    col = preprocessor_columns().index("victim_age")
    assert imputer.statistics_[NUMERIC_FEATURES.index("victim_age")] == train_median
    before = pipe.named_steps["scale"].mean_.copy()
    out_batch = pipe.transform(unseen)
    out_single = pipe.transform(unseen[:1])
    assert np.array_equal(pipe.named_steps["scale"].mean_, before)  # transform changed nothing
    assert np.allclose(out_batch[:1], out_single)  # a row's output is independent of its batch
    # The imputed unseen ages take the *training* median.
    expected = (train_median - before[col]) / pipe.named_steps["scale"].scale_[col]
    assert np.allclose(out_batch[::2, col], expected)
