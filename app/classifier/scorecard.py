"""A learned, transparent points scorecard: sparse integer points over yes/no conditions.

Method (a clean-room implementation of FasterRisk, Liu, Zhong, Li, Seltzer & Rudin, NeurIPS
2022; the ``fasterrisk`` package cannot be a dependency, docs/ml-research.md section 1.1):

1. **Sparse beam search** for logistic models with at most ``k`` conditions: from each of the
   ``beam_width`` best supports, the ``child_size`` most promising new conditions (largest
   one-step Newton decrease of the logistic loss) are added, each child is refitted (box
   constraints: conditions that must never lower risk get a non-negative weight), and the best
   ``beam_width`` children survive. The final beam is a pool of near-optimal, diverse supports.
2. **Star-ray search and sequential rounding**: each continuous solution is scaled so its
   largest weight becomes 1..``max_points`` points (``n_rays`` multipliers); the scaled
   weights are rounded one at a time to the floor or ceiling that gives the lower logistic
   loss, and a local search then tries +/-1 point on each condition.
3. For every integer points vector the scale and intercept of the logistic map
   ``P = 1 / (1 + exp(-(total + intercept) / multiplier))`` are refitted exactly; the integer
   model with the lowest training loss wins.

The binary data are compressed to distinct patterns of the current support with their counts,
so each fit costs at most ``2**k`` rows whatever the data size.

The result is saved as a versioned JSON definition (kind ``points-scorecard``) with plain
labels, the intercept and multiplier, and a full total -> probability table, hashed over its
canonical JSON (RFC 8785). ``score_points`` evaluates it: a human can add up the points by hand
and read the probability off the table.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import rfc8785
from numpy.typing import NDArray
from scipy.special import expit, log1p

from app.progress import track

FloatArray = NDArray[np.float64]
SCORECARD_KIND = "points-scorecard"
SCORECARD_FORMAT = "1"


class ScorecardError(ValueError):
    """A scorecard definition that is malformed or whose hash does not match."""


def _log1pexp(m: FloatArray) -> FloatArray:
    return np.asarray(np.where(m > 0, m + log1p(np.exp(-np.abs(m))), log1p(np.exp(m))))


@dataclass
class _Compressed:
    patterns: FloatArray  # m x k, 0/1
    pos: FloatArray  # positives per pattern
    tot: FloatArray  # rows per pattern


@dataclass
class _Fit:
    support: tuple[int, ...]
    intercept: float
    weights: FloatArray
    loss: float


class _Problem:
    def __init__(
        self,
        x: NDArray[np.bool_],
        y: NDArray[np.int_],
        lower: FloatArray,
        upper: FloatArray,
        ridge: float,
    ) -> None:
        self.x = x
        self.xf = x.astype(np.float32)
        self.y = y.astype(np.float64)
        self.n = float(x.shape[0])
        self.lower = lower
        self.upper = upper
        self.ridge = ridge
        self._cache: dict[tuple[int, ...], _Compressed] = {}
        self._last_scale: tuple[float, float] | None = None

    def compress(self, support: tuple[int, ...]) -> _Compressed:
        cached = self._cache.get(support)
        if cached is not None:
            return cached
        k = len(support)
        if k == 0:
            comp = _Compressed(np.zeros((1, 0)), np.array([self.y.sum()]), np.array([self.n]))
        else:
            bits = self.x[:, list(support)].astype(np.int64) << np.arange(k, dtype=np.int64)
            keys = bits.sum(axis=1)
            uniq, inv = np.unique(keys, return_inverse=True)
            pos = np.bincount(inv, weights=self.y, minlength=uniq.size).astype(np.float64)
            tot = np.bincount(inv, minlength=uniq.size).astype(np.float64)
            patterns = ((uniq[:, None] >> np.arange(k)) & 1).astype(np.float64)
            comp = _Compressed(patterns, pos, tot)
        if len(self._cache) > 20000:
            self._cache.clear()
        self._cache[support] = comp
        return comp

    def fit(self, support: tuple[int, ...], b0: float, w0: FloatArray) -> _Fit:
        """Box-constrained ridge logistic fit on the support by projected Newton steps."""
        comp = self.compress(support)
        cols = list(support)
        design = np.hstack([np.ones((comp.patterns.shape[0], 1)), comp.patterns])
        lo = np.concatenate([[-np.inf], self.lower[cols]])
        hi = np.concatenate([[np.inf], self.upper[cols]])
        penalty = np.concatenate([[0.0], np.full(len(cols), self.ridge)])
        theta = np.clip(np.concatenate([[b0], w0]), lo, hi)
        n = self.n

        def loss_of(t: FloatArray) -> float:
            m = design @ t
            value = float(np.sum(comp.tot * _log1pexp(m) - comp.pos * m)) / n
            return value + 0.5 * float(np.sum(penalty * t * t))

        current = loss_of(theta)
        for _ in range(100):
            m = design @ theta
            p = expit(m)
            grad = design.T @ (comp.tot * p - comp.pos) / n + penalty * theta
            hess = (design.T * (comp.tot * p * (1 - p))) @ design / n + np.diag(penalty)
            hess += np.eye(theta.size) * 1e-10
            blocked = ((theta <= lo) & (grad > 0)) | ((theta >= hi) & (grad < 0))
            free = ~blocked
            if not free.any() or float(np.max(np.abs(grad[free]))) < 1e-9:
                break
            step = np.zeros_like(theta)
            step[free] = np.linalg.solve(hess[np.ix_(free, free)], grad[free])
            size = 1.0
            while True:
                trial = np.clip(theta - size * step, lo, hi)
                value = loss_of(trial)
                if value <= current - 1e-4 * float(grad @ (theta - trial)) or size < 1e-8:
                    break
                size /= 2
            improvement = current - value
            if improvement < 0:
                break
            theta, current = trial, value
            if improvement < 1e-12:
                break
        return _Fit(support, float(theta[0]), theta[1:], current)

    def screen(self, parent: _Fit, child_size: int) -> list[int]:
        """The most promising conditions to add: largest one-step Newton loss decrease."""
        m = parent.intercept + (
            self.xf[:, list(parent.support)] @ parent.weights.astype(np.float32)
            if parent.support
            else np.zeros(int(self.n), dtype=np.float32)
        )
        p = expit(m.astype(np.float64))
        g = (self.xf.T @ (p - self.y).astype(np.float32)) / self.n
        h = (self.xf.T @ (p * (1 - p)).astype(np.float32)) / self.n + self.ridge
        gain = g.astype(np.float64) ** 2 / (2 * h.astype(np.float64))
        gain[list(parent.support)] = -1.0
        gain[(self.lower >= 0) & (g >= 0)] = -1.0  # could only enter with a negative weight
        gain[(self.upper <= 0) & (g <= 0)] = -1.0
        order = np.argsort(-gain, kind="stable")
        return [int(j) for j in order[:child_size] if gain[j] > 0]

    # -- integer models ---------------------------------------------------------------------
    def integer_loss(
        self, support: tuple[int, ...], points: NDArray[np.int64]
    ) -> tuple[float, float, float]:
        """Logistic loss of ``P = expit(a * total + c)`` with (a, c) fitted exactly."""
        comp = self.compress(support)
        totals = comp.patterns @ points.astype(np.float64)
        uniq, inv = np.unique(totals, return_inverse=True)
        pos = np.bincount(inv, weights=comp.pos, minlength=uniq.size).astype(np.float64)
        tot = np.bincount(inv, weights=comp.tot, minlength=uniq.size).astype(np.float64)
        loss, a, c = _fit_scale(uniq, pos, tot, self.n, self._last_scale)
        self._last_scale = (a, c)
        return loss, a, c


def _fit_scale(
    t: FloatArray,
    pos: FloatArray,
    tot: FloatArray,
    n: float,
    start: tuple[float, float] | None = None,
) -> tuple[float, float, float]:
    """Newton's method for the 2-parameter logistic model on grouped totals -> (loss, a, c)."""
    total_pos, total_n = float(pos.sum()), float(tot.sum())
    base = total_pos / total_n
    a, c = (0.0, math.log(base / (1 - base))) if start is None else start

    def loss_of(a_: float, c_: float) -> float:
        m = a_ * t + c_
        return (float(tot @ _log1pexp(m)) - a_ * float(pos @ t) - c_ * total_pos) / n

    if t.size < 2:
        a, c = 0.0, math.log(base / (1 - base))
        return loss_of(a, c), a, c
    current = loss_of(a, c)
    for _ in range(50):
        p = expit(a * t + c)
        r = tot * p - pos
        wgt = tot * p * (1 - p)
        wt = wgt @ t
        g0, g1 = float(r @ t), float(r.sum())
        h00, h01, h11 = float(wgt @ (t * t)) + 1e-12, float(wt), float(wgt.sum()) + 1e-12
        det = h00 * h11 - h01 * h01
        if det <= 0:
            break
        # Newton step for the 2x2 system (the 1/n factors cancel).
        d0 = (h11 * g0 - h01 * g1) / det
        d1 = (h00 * g1 - h01 * g0) / det
        s = 1.0
        while s > 1e-6:
            na, nc = a - s * d0, c - s * d1
            new = loss_of(na, nc)
            if new <= current + 1e-15:
                break
            s /= 2
        else:
            break
        improvement = current - new
        a, c, current = na, nc, new
        if improvement < 1e-13:
            break
    return current, a, c


@dataclass
class IntegerModel:
    support: tuple[int, ...]
    points: NDArray[np.int64]
    scale: float  # a: log-odds per point
    offset: float  # c: log-odds at total 0
    loss: float


def learn_scorecards(
    x: NDArray[np.bool_],
    y: NDArray[np.int_],
    *,
    k_max: int = 14,
    k_min: int = 6,
    lower: Sequence[float],
    upper: Sequence[float],
    max_points: int = 5,
    beam_width: int = 6,
    child_size: int = 6,
    pool_size: int = 3,
    n_rays: int = 8,
    ridge: float = 1e-4,
    progress: bool = False,
    good_enough: Callable[[IntegerModel], bool] | None = None,
) -> dict[int, IntegerModel]:
    """Learn the best integer points model of each size ``k_min..k_max`` in one beam search.

    ``lower``/``upper`` bound each condition's points (e.g. 0..5 for a condition that must
    never lower risk, -5..5 otherwise); the continuous search uses their signs. The beam of
    each size is a pool of diverse supports; its ``pool_size`` best are rounded. The search
    stops early at the first size whose model ``good_enough`` accepts.
    """
    lo_pts = np.asarray(lower, dtype=np.float64)
    hi_pts = np.asarray(upper, dtype=np.float64)
    lo = np.where(lo_pts >= 0, 0.0, -np.inf)
    hi = np.where(hi_pts <= 0, 0.0, np.inf)
    # A ridge of at least one observation's weight keeps rare, separable conditions finite.
    problem = _Problem(x, y, lo, hi, max(ridge, 1.0 / max(1, x.shape[0])))
    base = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    beam = [problem.fit((), math.log(base / (1 - base)), np.zeros(0))]
    models: dict[int, IntegerModel] = {}
    for step in track(range(1, k_max + 1), "scorecard search", unit="steps", enabled=progress):
        children: dict[tuple[int, ...], _Fit] = {}
        for parent in beam:
            for j in problem.screen(parent, child_size):
                support = tuple(sorted((*parent.support, j)))
                if support in children:
                    continue
                w0 = np.array(
                    [
                        parent.weights[parent.support.index(s)] if s in parent.support else 0.0
                        for s in support
                    ]
                )
                children[support] = problem.fit(support, parent.intercept, w0)
        if not children:
            break
        beam = sorted(children.values(), key=lambda f: f.loss)[:beam_width]
        if step < k_min:
            continue
        best: IntegerModel | None = None
        for fit in beam[:pool_size]:
            candidate = _round_fit(problem, fit, lo_pts, hi_pts, max_points, n_rays)
            if best is None or candidate.loss < best.loss:
                best = candidate
        if best is not None:
            keep = best.points != 0
            models[step] = IntegerModel(
                tuple(s for s, kp in zip(best.support, keep, strict=True) if kp),
                best.points[keep],
                best.scale,
                best.offset,
                best.loss,
            )
            if good_enough is not None and good_enough(models[step]):
                break
    if not models:
        raise ScorecardError("no condition improves on the base rate; nothing to learn")
    return models


def _round_fit(
    problem: _Problem,
    fit: _Fit,
    lo_pts: FloatArray,
    hi_pts: FloatArray,
    max_points: int,
    n_rays: int,
) -> IntegerModel:
    support = fit.support
    lo = lo_pts[list(support)]
    hi = hi_pts[list(support)]
    largest = float(np.max(np.abs(fit.weights))) if support else 0.0
    best: IntegerModel | None = None
    if largest <= 0:
        loss, a, c = problem.integer_loss(support, np.zeros(len(support), dtype=np.int64))
        return IntegerModel(support, np.zeros(len(support), dtype=np.int64), a, c, loss)
    for target in np.linspace(1.0, float(max_points), n_rays):
        v = fit.weights * (target / largest)
        q = np.clip(np.round(v), lo, hi).astype(np.int64)
        # Sequential rounding: most ambiguous coordinates first, floor or ceiling.
        order = np.argsort(np.abs(v - np.floor(v) - 0.5), kind="stable")
        for j in order:
            options = {
                int(np.clip(np.floor(v[j]), lo[j], hi[j])),
                int(np.clip(np.ceil(v[j]), lo[j], hi[j])),
            }
            best_val, best_loss = int(q[j]), math.inf
            for val in sorted(options):
                q[j] = val
                loss = problem.integer_loss(support, q)[0]
                if loss < best_loss:
                    best_val, best_loss = val, loss
            q[j] = best_val
        q, loss = _local_search(problem, support, q, lo, hi)
        _, a, c = problem.integer_loss(support, q)
        if best is None or loss < best.loss:
            best = IntegerModel(support, q.copy(), a, c, loss)
    if best is None:
        raise ScorecardError("no integer model was found")
    return best


def _local_search(
    problem: _Problem,
    support: tuple[int, ...],
    q: NDArray[np.int64],
    lo: FloatArray,
    hi: FloatArray,
) -> tuple[NDArray[np.int64], float]:
    current = problem.integer_loss(support, q)[0]
    for _ in range(3):
        improved = False
        for j in range(q.size):
            for delta in (-1, 1):
                val = q[j] + delta
                if val < lo[j] or val > hi[j]:
                    continue
                trial = q.copy()
                trial[j] = val
                loss = problem.integer_loss(support, trial)[0]
                if loss < current - 1e-12:
                    q, current, improved = trial, loss, True
        if not improved:
            break
    return q, current


# -- the definition and its evaluation ---------------------------------------------------------


def canonical_sha256(obj: Mapping[str, Any]) -> str:
    body = {k: v for k, v in obj.items() if k != "sha256"}
    return hashlib.sha256(rfc8785.dumps(body)).hexdigest()


def build_definition(
    model: IntegerModel,
    feature_names: Sequence[str],
    labels: Mapping[str, str],
    reason_ids: Mapping[str, str],
    *,
    scorecard_id: str,
    version: str,
    feature_schema_version: str,
    synthetic: bool,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The versioned, hashed JSON definition of a learned scorecard."""
    if model.scale <= 0:
        raise ScorecardError("the learned points do not rank risk upwards")
    features: list[dict[str, Any]] = [
        {
            "feature": feature_names[j],
            "label": labels[feature_names[j]],
            "reason_id": reason_ids[feature_names[j]],
            "points": int(p),
        }
        for j, p in sorted(
            zip(model.support, model.points, strict=True),
            key=lambda t: (-int(t[1]), feature_names[t[0]]),
        )
    ]
    lo_total = sum(min(0, f["points"]) for f in features)
    hi_total = sum(max(0, f["points"]) for f in features)
    multiplier = 1.0 / model.scale
    intercept = model.offset / model.scale
    table = [
        {"total": t, "probability": round(float(expit((t + intercept) / multiplier)), 4)}
        for t in range(lo_total, hi_total + 1)
    ]
    definition: dict[str, Any] = {
        "kind": SCORECARD_KIND,
        "format": SCORECARD_FORMAT,
        "id": scorecard_id,
        "version": version,
        "outcome": "repeat_incident_12m",
        "feature_schema_version": feature_schema_version,
        "synthetic": synthetic,
        "how_to_score": "Add the points of every condition that holds (each is a yes/no fact "
        "about the incident or its history); read the probability of a repeat incident "
        "within 12 months for that total from score_table.",
        "features": features,
        "intercept": round(intercept, 6),
        "multiplier": round(multiplier, 6),
        "probability_formula": "1 / (1 + exp(-(total + intercept) / multiplier))",
        "score_table": table,
    }
    if extra:
        definition.update(extra)
    definition["sha256"] = canonical_sha256(definition)
    return definition


def verify_definition(definition: Mapping[str, Any]) -> None:
    """Raise ``ScorecardError`` unless the definition is well formed and its hash matches."""
    if definition.get("kind") != SCORECARD_KIND:
        raise ScorecardError("not a points-scorecard definition")
    for key in ("id", "version", "features", "score_table", "sha256"):
        if key not in definition:
            raise ScorecardError(f"scorecard definition lacks {key!r}")
    if canonical_sha256(definition) != definition["sha256"]:
        raise ScorecardError("scorecard definition hash does not match its content")
    for f in definition["features"]:
        if not isinstance(f.get("points"), int) or isinstance(f.get("points"), bool):
            raise ScorecardError("scorecard points must be integers")


@dataclass(frozen=True)
class PointsScore:
    total: int
    probability: float
    points: tuple[tuple[str, str, str, int], ...]  # (feature, label, reason_id, points) that hold

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "probability": self.probability,
            "points": [
                {"feature": f, "label": label, "reason_id": rid, "points": p}
                for f, label, rid, p in self.points
            ],
        }


def score_points(definition: Mapping[str, Any], features: Mapping[str, float]) -> PointsScore:
    """Evaluate a points scorecard on a feature row (``features.incident_features``).

    A condition holds when its feature equals 1. The probability is read from the table.
    """
    held: list[tuple[str, str, str, int]] = []
    total = 0
    for f in definition["features"]:
        value = features[f["feature"]]
        if value == 1.0:
            held.append((f["feature"], f["label"], f["reason_id"], int(f["points"])))
            total += int(f["points"])
    table = {int(row["total"]): float(row["probability"]) for row in definition["score_table"]}
    return PointsScore(total=total, probability=table[total], points=tuple(held))


def score_points_matrix(
    definition: Mapping[str, Any], x: FloatArray, feature_index: Mapping[str, int]
) -> tuple[NDArray[np.int64], FloatArray]:
    """Totals and probabilities for many rows at once (same rule as ``score_points``)."""
    totals = np.zeros(x.shape[0], dtype=np.int64)
    for f in definition["features"]:
        totals += (x[:, feature_index[f["feature"]]] == 1.0).astype(np.int64) * int(f["points"])
    table = {int(row["total"]): float(row["probability"]) for row in definition["score_table"]}
    probs = np.array([table[int(t)] for t in totals], dtype=np.float64)
    return totals, probs
