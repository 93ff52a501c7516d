"""The combination policy never lowers a checklist level, whatever the probability."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.classifier.artifact import ClassifierResult
from app.classifier.policy import LEVELS, combine


def _result(probability: float) -> ClassifierResult:
    return ClassifierResult(
        model_name="m",
        model_version="1",
        model_sha256="0" * 64,
        manifest_sha256="0" * 64,
        model_kind="logistic-regression",
        probability=probability,
        band="elevated",
        threshold=0.3,
        log_odds=0.0,
        reference_log_odds=0.0,
        contributions=(),
        explanation_method="exact",
        history_source="incident",
        synthetic_training_data=True,
    )


@given(
    probability=st.floats(0.0, 1.0),
    threshold=st.floats(0.0, 1.0),
    level=st.sampled_from(LEVELS),
    may_raise=st.booleans(),
    raise_to=st.sampled_from(LEVELS),
)
def test_classifier_never_lowers_and_raises_only_when_allowed(
    probability: float, threshold: float, level: str, may_raise: bool, raise_to: str
) -> None:
    decision = combine(
        level,
        _result(probability),
        threshold=threshold,
        may_raise_level=may_raise,
        raise_to=raise_to,
    )
    assert LEVELS.index(decision.level) >= LEVELS.index(level)
    assert decision.classifier_elevated == (probability >= threshold)
    if not may_raise or not decision.classifier_elevated:
        assert decision.level == level
    assert decision.policy["level_after"] == decision.level
