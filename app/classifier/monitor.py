"""Drift monitoring: are recent incidents still like the training data? (``triage monitor``)

At training time ``training_profile`` stores, in the manifest, each feature's distribution on
the training split (deciles of numeric columns plus the unknown share; prevalence of binary
columns) and the distribution of the model's probabilities. ``drift_report`` compares recent
incidents with that profile:

- population stability index per feature, PSI = sum (a - e) ln(a / e) over bins, with each
  bin's share smoothed by 0.5 / n so empty bins do not explode. Conventional thresholds
  (practitioner rules, not tests; they depend on sample size): < 0.10 stable, 0.10-0.25 watch,
  >= 0.25 moved;
- checklist answer prevalences (yes / unknown / not asked per item) and the overall unknown
  rate, with their change in percentage points;
- PSI of the model's probabilities.

A feature is listed as moved when its PSI reaches 0.25, or when a binary column's prevalence
changes by 5 percentage points or more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.classifier.features import (
    BINARY_FEATURES,
    FEATURE_INDEX,
    NUMERIC_FEATURES,
)
from app.contract.items import DASH_POLICE_ITEMS, DASH_RIC_ITEMS

FloatArray = NDArray[np.float64]
PSI_WATCH = 0.10
PSI_MOVED = 0.25
PREVALENCE_MOVED = 0.05
N_BINS = 10


def psi(expected: FloatArray, actual: FloatArray, n_expected: float, n_actual: float) -> float:
    """PSI between two vectors of bin shares (each summing to 1), smoothed by 0.5 / n."""
    e = (np.asarray(expected, dtype=float) * n_expected + 0.5) / (n_expected + 0.5 * len(expected))
    a = (np.asarray(actual, dtype=float) * n_actual + 0.5) / (n_actual + 0.5 * len(actual))
    return float(np.sum((a - e) * np.log(a / e)))


def _edges(values: FloatArray) -> list[float]:
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return []
    qs = np.quantile(finite, np.linspace(0, 1, N_BINS + 1)[1:-1])
    return sorted({float(q) for q in qs})


def _shares(values: FloatArray, edges: list[float]) -> list[float]:
    """Shares per bin: NaN first, then the bins cut at ``edges`` (right-closed)."""
    n = max(values.size, 1)
    nan = np.isnan(values)
    finite = values[~nan]
    bins = np.searchsorted(np.asarray(edges, dtype=float), finite, side="left")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return [float(nan.sum() / n)] + [float(c / n) for c in counts]


def training_profile(x: FloatArray, probabilities: FloatArray) -> dict[str, Any]:
    """Distributions of the training split, for the manifest."""
    numeric = {}
    for name in NUMERIC_FEATURES:
        col = x[:, FEATURE_INDEX[name]]
        edges = _edges(col)
        numeric[name] = {"edges": edges, "shares": _shares(col, edges)}
    binary = {name: float(np.mean(x[:, FEATURE_INDEX[name]] == 1.0)) for name in BINARY_FEATURES}
    score_edges = _edges(probabilities)
    return {
        "n": int(x.shape[0]),
        "numeric": numeric,
        "binary": binary,
        "score": {
            "n": int(probabilities.size),
            "edges": score_edges,
            "shares": _shares(probabilities, score_edges),
        },
    }


def answer_profile(binary: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """Yes / unknown / not-asked shares per checklist item, from binary prevalences."""
    return {
        item: {
            state: float(binary[f"ans_{item}_{state}"]) for state in ("yes", "unknown", "not_asked")
        }
        for item in DASH_POLICE_ITEMS
    }


def drift_report(
    profile: Mapping[str, Any], x: FloatArray, probabilities: FloatArray | None = None
) -> dict[str, Any]:
    """Compare recent feature rows (and model probabilities) with the training profile."""
    n_train = float(profile["n"])
    n_recent = float(x.shape[0])
    features: dict[str, dict[str, Any]] = {}
    for name, spec in profile["numeric"].items():
        col = x[:, FEATURE_INDEX[name]]
        shares = _shares(col, list(spec["edges"]))
        features[name] = {
            "kind": "numeric",
            "psi": psi(np.array(spec["shares"]), np.array(shares), n_train, n_recent),
            "unknown_share_training": spec["shares"][0],
            "unknown_share_recent": shares[0],
        }
    recent_binary: dict[str, float] = {}
    for name, prevalence in profile["binary"].items():
        share = float(np.mean(x[:, FEATURE_INDEX[name]] == 1.0)) if x.shape[0] else 0.0
        recent_binary[name] = share
        features[name] = {
            "kind": "binary",
            "psi": psi(
                np.array([1 - prevalence, prevalence]),
                np.array([1 - share, share]),
                n_train,
                n_recent,
            ),
            "prevalence_training": prevalence,
            "prevalence_recent": share,
            "change": share - prevalence,
        }
    for body in features.values():
        body["status"] = (
            "moved"
            if body["psi"] >= PSI_MOVED or abs(body.get("change", 0.0)) >= PREVALENCE_MOVED
            else "watch"
            if body["psi"] >= PSI_WATCH
            else "stable"
        )
    train_answers = answer_profile(profile["binary"])
    recent_answers = answer_profile(recent_binary)
    # Over the 24 items every instrument asks (the police-only items are not asked on dash-ric).
    unknown_train = float(
        np.mean(
            [train_answers[i]["unknown"] + train_answers[i]["not_asked"] for i in DASH_RIC_ITEMS]
        )
    )
    unknown_recent = float(
        np.mean(
            [recent_answers[i]["unknown"] + recent_answers[i]["not_asked"] for i in DASH_RIC_ITEMS]
        )
    )
    report: dict[str, Any] = {
        "n_training": int(n_train),
        "n_recent": int(n_recent),
        "thresholds": {
            "psi_watch": PSI_WATCH,
            "psi_moved": PSI_MOVED,
            "prevalence_moved": PREVALENCE_MOVED,
        },
        "features": features,
        "moved": sorted(
            (name for name, b in features.items() if b["status"] == "moved"),
            key=lambda n: -features[n]["psi"],
        ),
        "watch": sorted(n for n, b in features.items() if b["status"] == "watch"),
        "answers": {
            item: {"training": train_answers[item], "recent": recent_answers[item]}
            for item in DASH_POLICE_ITEMS
        },
        "unknown_rate": {"training": unknown_train, "recent": unknown_recent},
    }
    if probabilities is not None and "score" in profile:
        score = profile["score"]
        shares = _shares(probabilities, list(score["edges"]))
        report["score_psi"] = psi(
            np.array(score["shares"]), np.array(shares), float(score["n"]), n_recent
        )
    return report


def format_drift(report: Mapping[str, Any], limit: int = 25) -> str:
    lines = [
        f"training rows: {report['n_training']}   recent incidents: {report['n_recent']}",
        "checklist unknown or not-asked rate (24 items): "
        f"{100 * report['unknown_rate']['training']:.1f}% in training, "
        f"{100 * report['unknown_rate']['recent']:.1f}% recently",
    ]
    if "score_psi" in report:
        lines.append(f"PSI of the model's probabilities: {report['score_psi']:.3f}")
    moved = report["moved"]
    lines.append("")
    lines.append(
        f"features that moved (PSI >= {PSI_MOVED} or prevalence change >= 5 points): {len(moved)}"
    )
    header = f"  {'feature':44}{'PSI':>8}{'training':>10}{'recent':>10}"
    lines.append(header)
    for name in moved[:limit]:
        f = report["features"][name]
        if f["kind"] == "binary":
            lines.append(
                f"  {name:44}{f['psi']:8.3f}"
                f"{100 * f['prevalence_training']:9.1f}%{100 * f['prevalence_recent']:9.1f}%"
            )
        else:
            lines.append(
                f"  {name:44}{f['psi']:8.3f}{'unknown':>10}{100 * f['unknown_share_recent']:9.1f}%"
            )
    if len(moved) > limit:
        lines.append(f"  ... and {len(moved) - limit} more")
    lines.append(f"features to watch (PSI {PSI_WATCH}-{PSI_MOVED}): {len(report['watch'])}")
    if not moved:
        lines.append("no feature moved beyond the thresholds")
    return "\n".join(lines)
