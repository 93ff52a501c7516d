"""Discrimination, calibration and error-rate metrics, overall and per group.

- AUC: area under the ROC curve (ties count one half).
- Brier score: mean squared error of the probability.
- ECE (expected calibration error): the share-weighted mean of |observed rate - mean predicted
  probability| over 10 bins. The headline uses **equal-width** bins on [0, 1] (Naeini et al.
  2015; Guo et al. 2017), the usual definition; ``ece_equal_mass`` (deciles of the predicted
  probability) is reported beside it because with a base rate near 16% most predictions fall
  in the lowest few equal-width bins.
- At an operating point (flag when score >= threshold): the share of repeat cases not
  flagged (false-negative rate), the false-positive rate, and the flag rate.

Per-group figures never use the group as an input; they report what the model does to each
group (docs/ml-research.md section 6: calibration within groups and FNR parity are prioritised;
all fairness criteria cannot hold at once when base rates differ).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import brier_score_loss, roc_auc_score

FloatArray = NDArray[np.float64]
SMALL_GROUP = 200


def auc(y: ArrayLike, score: ArrayLike) -> float | None:
    """ROC AUC, or None when only one class is present."""
    y_arr = np.asarray(y, dtype=int)
    if y_arr.min(initial=0) == y_arr.max(initial=0) or len(np.unique(y_arr)) < 2:
        return None
    return float(roc_auc_score(y_arr, np.asarray(score, dtype=float)))


def brier(y: ArrayLike, p: ArrayLike) -> float:
    return float(brier_score_loss(np.asarray(y, dtype=int), np.asarray(p, dtype=float)))


def ece(y: ArrayLike, p: ArrayLike, n_bins: int = 10, strategy: str = "uniform") -> float:
    """Expected calibration error with ``n_bins`` bins.

    ``strategy="uniform"``: equal-width bins [0, 0.1), ..., [0.9, 1.0] (1.0 falls in the last).
    ``strategy="quantile"``: equal-mass bins (ties kept together).
    """
    y_arr = np.asarray(y, dtype=float)
    p_arr = np.asarray(p, dtype=float)
    if y_arr.size == 0:
        raise ValueError("no predictions")
    if strategy == "uniform":
        bins = np.minimum((p_arr * n_bins).astype(int), n_bins - 1)
    elif strategy == "quantile":
        edges = np.quantile(p_arr, np.linspace(0, 1, n_bins + 1)[1:-1])
        bins = np.searchsorted(edges, p_arr, side="right")
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    total = 0.0
    for b in np.unique(bins):
        mask = bins == b
        total += mask.sum() * abs(y_arr[mask].mean() - p_arr[mask].mean())
    return float(total / y_arr.size)


def ece_equal_mass(y: ArrayLike, p: ArrayLike, n_bins: int = 10) -> float:
    return ece(y, p, n_bins, strategy="quantile")


def threshold_for_flag_rate(score: ArrayLike, flag_rate: float) -> float:
    """The threshold at which ``score >= t`` flags ``flag_rate`` of the scores."""
    s = np.sort(np.asarray(score, dtype=float))[::-1]
    if not 0.0 < flag_rate < 1.0:
        raise ValueError("flag_rate must be in (0, 1)")
    k = max(1, int(np.floor(flag_rate * s.size)))
    # Ties at the k-th score are all flagged, so the realised rate can be slightly higher.
    return float(s[k - 1])


def error_rates(y: ArrayLike, flagged: ArrayLike) -> dict[str, float | None]:
    y_arr = np.asarray(y, dtype=bool)
    f = np.asarray(flagged, dtype=bool)
    pos, neg = y_arr.sum(), (~y_arr).sum()
    return {
        "flag_rate": float(f.mean()) if f.size else None,
        "missed_repeat_share": float((y_arr & ~f).sum() / pos) if pos else None,
        "false_positive_rate": float((~y_arr & f).sum() / neg) if neg else None,
        "ppv": float((y_arr & f).sum() / f.sum()) if f.sum() else None,
    }


def score_summary(
    y: ArrayLike,
    score: ArrayLike,
    flagged: ArrayLike,
    probability: ArrayLike | None = None,
) -> dict[str, Any]:
    """AUC of the score, error rates at the flag, and calibration where a probability exists."""
    y_arr = np.asarray(y, dtype=float)
    out: dict[str, Any] = {"n": int(y_arr.size), "base_rate": float(y_arr.mean())}
    out["auc"] = auc(y, score)
    if probability is not None:
        out["brier"] = brier(y, probability)
        out["ece"] = ece(y, probability)
        out["ece_equal_mass"] = ece_equal_mass(y, probability)
        out["mean_probability"] = float(np.asarray(probability, dtype=float).mean())
    out.update(error_rates(y, flagged))
    return out


def per_group(
    y: ArrayLike,
    score: ArrayLike,
    flagged: ArrayLike,
    groups: Sequence[str],
    probability: ArrayLike | None = None,
) -> dict[str, dict[str, Any]]:
    """``score_summary`` for each group; groups under 200 incidents are marked small."""
    y_arr = np.asarray(y)
    s = np.asarray(score, dtype=float)
    f = np.asarray(flagged, dtype=bool)
    g = np.asarray(groups)
    p = None if probability is None else np.asarray(probability, dtype=float)
    result: dict[str, dict[str, Any]] = {}
    for label in sorted(set(g.tolist())):
        mask = g == label
        summary = score_summary(y_arr[mask], s[mask], f[mask], None if p is None else p[mask])
        summary["small_group"] = bool(mask.sum() < SMALL_GROUP)
        result[str(label)] = summary
    return result


def rate_table(values: ArrayLike, y: ArrayLike) -> dict[str, float]:
    """Observed repeat rate per distinct value (keys as strings), for baseline probabilities."""
    v = np.asarray(values)
    y_arr = np.asarray(y, dtype=float)
    return {str(k): float(y_arr[v == k].mean()) for k in np.unique(v)}


def apply_rate_table(values: ArrayLike, table: dict[str, float], default: float) -> FloatArray:
    return np.array([table.get(str(v), default) for v in np.asarray(values)], dtype=float)
