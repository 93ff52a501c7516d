"""Metrics computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from app.classifier.metrics import auc, ece, error_rates, threshold_for_flag_rate
from app.classifier.monitor import psi


def test_ece_equal_width_hand_example() -> None:
    # Bin [0.1, 0.2): p = 0.1, 0.1 (mean 0.1), y = 0, 1 (rate 0.5) -> gap 0.4, weight 2/5
    # Bin [0.8, 0.9): p = 0.8, 0.8, 0.8 (mean 0.8), y = 1, 1, 0 (rate 2/3) -> gap 2/15, w 3/5
    y = [0, 1, 1, 1, 0]
    p = [0.1, 0.1, 0.8, 0.8, 0.8]
    expected = 2 / 5 * 0.4 + 3 / 5 * (0.8 - 2 / 3)
    assert ece(y, p) == pytest.approx(expected, abs=1e-12)


def test_ece_is_zero_when_calibrated_per_bin() -> None:
    p = [0.5] * 4 + [0.75] * 4
    y = [0, 1, 0, 1, 1, 1, 1, 0]
    assert ece(y, p) == pytest.approx(0.0, abs=1e-12)
    assert ece(y, p, strategy="quantile") == pytest.approx(0.0, abs=1e-12)


def test_probability_one_falls_in_the_last_bin() -> None:
    assert ece([1, 1], [1.0, 0.95]) == pytest.approx(0.025)


def test_error_rates_at_a_flag() -> None:
    rates = error_rates([1, 1, 0, 0, 0], [True, False, True, False, False])
    assert rates["missed_repeat_share"] == 0.5
    assert rates["false_positive_rate"] == pytest.approx(1 / 3)
    assert rates["flag_rate"] == 0.4


def test_threshold_for_flag_rate_flags_that_share() -> None:
    scores = np.linspace(0, 1, 101)
    t = threshold_for_flag_rate(scores, 0.2)
    assert np.mean(scores >= t) == pytest.approx(0.2, abs=0.011)


def test_auc_is_none_with_one_class() -> None:
    assert auc([1, 1], [0.2, 0.3]) is None
    assert auc([0, 1], [0.2, 0.3]) == 1.0


def test_psi_zero_for_identical_and_large_for_shifted() -> None:
    shares = np.array([0.1] * 10)
    assert psi(shares, shares, 10_000, 10_000) == pytest.approx(0.0, abs=1e-12)
    shifted = np.array([0.0] * 5 + [0.2] * 5)
    assert psi(shares, shifted, 10_000, 10_000) > 0.25
