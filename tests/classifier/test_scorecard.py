"""The learned points scorecard: integer, sign-constrained, near the classifier, hand-checkable."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from app.classifier.scorecard import (
    ScorecardError,
    build_definition,
    learn_scorecards,
    score_points,
    verify_definition,
)


@pytest.fixture(scope="module")
def additive_data() -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(5)
    n, p = 6000, 14
    x = rng.random((n, p)) < rng.uniform(0.1, 0.5, size=p)
    beta = np.array([1.2, 0.9, 0.9, 0.6, 0.6, 0.3, -0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    y = (rng.random(n) < 1 / (1 + np.exp(-(-2.2 + x @ beta)))).astype(int)
    return x, y, [f"c{i}" for i in range(p)]


def test_points_are_bounded_integers_and_non_negative_where_constrained(
    additive_data: tuple[np.ndarray, np.ndarray, list[str]],
) -> None:
    x, y, _ = additive_data
    lower = [0] * 6 + [-5] + [0] * 7  # only c6 may lower risk
    models = learn_scorecards(x[:4000], y[:4000], k_min=3, k_max=8, lower=lower, upper=[5] * 14)
    for model in models.values():
        assert model.points.dtype.kind == "i"
        for j, pts in zip(model.support, model.points, strict=True):
            assert -5 <= pts <= 5
            if lower[j] == 0:
                assert pts >= 0
    best = models[max(models)]
    assert 6 in best.support  # the protective condition is found, with negative points
    assert best.points[list(best.support).index(6)] < 0


def test_scorecard_auc_is_near_logistic_regression_on_additive_data(
    additive_data: tuple[np.ndarray, np.ndarray, list[str]],
) -> None:
    x, y, _ = additive_data
    models = learn_scorecards(x[:4000], y[:4000], k_min=7, k_max=7, lower=[-5] * 14, upper=[5] * 14)
    model = models[7]
    totals = x[4000:][:, list(model.support)] @ model.points
    lr = LogisticRegression().fit(x[:4000], y[:4000])
    lr_auc = roc_auc_score(y[4000:], lr.predict_proba(x[4000:])[:, 1])
    assert roc_auc_score(y[4000:], totals) > lr_auc - 0.015


def test_definition_scores_by_hand_and_detects_tampering(
    additive_data: tuple[np.ndarray, np.ndarray, list[str]],
) -> None:
    x, y, names = additive_data
    model = learn_scorecards(x, y, k_min=5, k_max=5, lower=[0] * 14, upper=[5] * 14)[5]
    definition = build_definition(
        model,
        names,
        {n: f"condition {n}" for n in names},
        {n: f"R-{n}" for n in names},
        scorecard_id="t",
        version="1",
        feature_schema_version="1",
        synthetic=True,
    )
    verify_definition(definition)
    row = {n: float(x[0, i]) for i, n in enumerate(names)}
    scored = score_points(definition, row)
    by_hand = sum(f["points"] for f in definition["features"] if row[f["feature"]] == 1.0)
    assert scored.total == by_hand
    table = {r["total"]: r["probability"] for r in definition["score_table"]}
    assert scored.probability == table[by_hand]
    assert all(isinstance(f["points"], int) for f in definition["features"])
    # Probabilities rise with the total.
    probs = [r["probability"] for r in definition["score_table"]]
    assert probs == sorted(probs)
    tampered = copy.deepcopy(definition)
    tampered["features"][0]["points"] += 1
    with pytest.raises(ScorecardError):
        verify_definition(tampered)
