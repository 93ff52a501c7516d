"""Side-by-side evaluation: the classifier, the learned scorecard, the DASH count and the
checklist levels, on the same incidents, overall and per group (``triage evaluate``).

Operating points compared:

- classifier and scorecard: flag when the probability reaches the model's operating threshold
  (chosen at training time to flag the same share of incidents as the checklist's "high"
  level on the training data: the same workload, so the missed-repeat shares are comparable);
- DASH count: flag at 14 or more "yes" (visible high risk);
- checklist levels: flag at "high" (count bands plus the red-flag rule).

Brier score and ECE of the DASH count and the levels use, as their probability, the repeat
rate observed for each count or level on the model's training data (stored in the manifest),
so that every row of the table is scored the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.classifier.baselines import HIGH_FROM, checklist_level, dash_count, level_rank
from app.classifier.data import Dataset
from app.classifier.metrics import apply_rate_table, auc, per_group, score_summary

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Baselines:
    """DASH count and checklist level for each incident."""

    counts: NDArray[np.int64]
    levels: list[str]

    @property
    def level_ranks(self) -> NDArray[np.int64]:
        return np.array([level_rank(v) for v in self.levels], dtype=np.int64)


def baselines_of(dataset: Dataset) -> Baselines:
    answers = [r.incident.victim_checklist.answers for r in dataset.records]
    return Baselines(
        counts=np.array([dash_count(a) for a in answers], dtype=np.int64),
        levels=[checklist_level(a) for a in answers],
    )


def smoothed_rate_table(
    values: Sequence[Any], y: NDArray[np.int_], prior_weight: float = 5.0
) -> dict[str, float]:
    """Observed repeat rate per value, shrunk towards the base rate for rare values."""
    v = np.asarray([str(x) for x in values])
    base = float(np.mean(y))
    table: dict[str, float] = {}
    for key in sorted(set(v.tolist())):
        mask = v == key
        table[key] = float((y[mask].sum() + prior_weight * base) / (mask.sum() + prior_weight))
    return table


def compare(
    y: NDArray[np.int_],
    probability: FloatArray,
    threshold: float,
    scorecard_probability: FloatArray,
    scorecard_threshold: float,
    baselines: Baselines,
    rate_tables: Mapping[str, Mapping[str, float]],
    groups: Sequence[str],
    base_rate: float,
    true_probability: FloatArray | None = None,
) -> dict[str, Any]:
    """All figures of the evaluation report (JSON-ready)."""
    dash_prob = apply_rate_table(baselines.counts, dict(rate_tables["dash_count"]), base_rate)
    level_prob = apply_rate_table(baselines.levels, dict(rate_tables["checklist_level"]), base_rate)
    flagged = {
        "classifier": probability >= threshold,
        "scorecard": scorecard_probability >= scorecard_threshold,
        "dash_count": baselines.counts >= HIGH_FROM,
        "checklist_level": np.array([lv == "high" for lv in baselines.levels]),
    }
    scores = {
        "classifier": (probability, probability),
        "scorecard": (scorecard_probability, scorecard_probability),
        "dash_count": (baselines.counts.astype(float), dash_prob),
        "checklist_level": (baselines.level_ranks.astype(float), level_prob),
    }
    report: dict[str, Any] = {"n": int(y.size), "base_rate": float(y.mean()), "models": {}}
    for name, (score, prob) in scores.items():
        report["models"][name] = {
            "overall": score_summary(y, score, flagged[name], prob),
            "by_group": per_group(y, score, flagged[name], groups, prob),
        }
    if true_probability is not None:
        report["oracle_auc"] = auc(y, true_probability)
    report["operating_points"] = {
        "classifier": f"probability >= {threshold:.4f}",
        "scorecard": f"probability >= {scorecard_threshold:.4f}",
        "dash_count": f"count >= {HIGH_FROM}",
        "checklist_level": "level high",
    }
    return report


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    if pct:
        return f"{100 * value:5.1f}%"
    return f"{value:.4f}"


def format_report(report: Mapping[str, Any], group_by: str) -> str:
    """A readable table of the report."""
    lines = [
        f"incidents: {report['n']}   repeat within 12 months: {100 * report['base_rate']:.1f}%"
    ]
    if report.get("oracle_auc") is not None:
        lines.append(f"oracle AUC (true probabilities, synthetic data): {report['oracle_auc']:.4f}")
    header = (
        f"{'':18}{'AUC':>8}{'Brier':>8}{'ECE':>8}{'ECEmass':>8}"
        f"{'flagged':>9}{'missed':>9}{'FPR':>8}"
    )
    lines += ["", header, "-" * len(header)]
    for name, body in report["models"].items():
        o = body["overall"]
        lines.append(
            f"{name:18}{_fmt(o['auc']):>8}{_fmt(o.get('brier')):>8}{_fmt(o.get('ece')):>8}"
            f"{_fmt(o.get('ece_equal_mass')):>8}{_fmt(o['flag_rate'], True):>9}"
            f"{_fmt(o['missed_repeat_share'], True):>9}{_fmt(o['false_positive_rate'], True):>8}"
        )
    lines.append("missed = share of repeat cases not flagged at the operating point")
    for name, rule in report["operating_points"].items():
        lines.append(f"  {name}: {rule}")
    lines += ["", f"per group ({group_by}; never a model input):"]
    header = (
        f"{'':18}{'group':>10}{'n':>8}{'base':>8}{'AUC':>8}{'ECE':>8}"
        f"{'flagged':>9}{'missed':>9}{'FPR':>8}"
    )
    lines += [header, "-" * len(header)]
    for name, body in report["models"].items():
        for group, g in body["by_group"].items():
            small = " (small)" if g.get("small_group") else ""
            lines.append(
                f"{name:18}{group[:10]:>10}{g['n']:>8}{_fmt(g['base_rate'], True):>8}"
                f"{_fmt(g['auc']):>8}{_fmt(g.get('ece')):>8}{_fmt(g['flag_rate'], True):>9}"
                f"{_fmt(g['missed_repeat_share'], True):>9}"
                f"{_fmt(g['false_positive_rate'], True):>8}{small}"
            )
    return "\n".join(lines)
