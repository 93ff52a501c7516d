"""Synthetic incidents with outcomes, from a documented generative model. SYNTHETIC DATA.

There is no public outcome data for domestic abuse (docs/ml-research.md section 9), so the project
ships this generator. Everything it writes is marked synthetic: ``"synthetic": true`` on every
line, ``source.system = "synthetic-generator"``, references ``SYN-<seed>-<n>``, invented names
("Synthetic Victim-000123"), and a sidecar ``<out>.meta.json`` with the parameters and the
oracle AUC. A model trained on it is labelled not for operational use.

The generative model (docs/ml-research.md section 10 recipe; parameters from published figures
where they exist, otherwise stated as assumptions):

1. A latent dyad propensity ``u ~ N(0, 1)``, shifted by +0.35 in the synthetic protected
   group "B" (30% of incidents), so group B has more recorded history and a higher base rate
   through the features alone (an assumption made to exercise the fairness report; it is not
   a claim about any real group).
2. Checklist items by a Gaussian copula: ``Z_j = 0.2 u + 0.65 F_block + e_j`` (unit
   variance), three blocks (coercive control, physical escalation, perpetrator), item true when
   ``Z_j`` exceeds the quantile of its prevalence. Prevalences are assumptions in the range of
   DASH practice, strangulation 10% (Glass et al. 2008: 10% of abused controls).
3. History: the victim's DA incidents in the last 12 months ~ NegBin(mean exp(-0.9 + 0.75u),
   r = 0.9); the perpetrator's further incidents ~ NegBin(mean exp(-0.4 + 0.8u), r = 0.7);
   time since the last incident ~ exponential (truncated to 365 days for the victim's).
   Criminal history, custody, breach and markers are logistic in ``u``.
4. Recorded answers: 6% of checklists not completed; each officer has an own propensity to
   record "unknown" (Beta(1.2, 14), doubled for the items about the perpetrator) and "not
   asked" (Beta(0.8, 20)) -- officer-dependent missingness. 8% of perpetrators and 5% of
   victims have no history on record (the truth still drives the outcome).
5. Outcome: logit = b0 + 0.40 log1p(victim 12m) + 0.25 log1p(perpetrator total) + 0.8
   exp(-days/60) + 0.35 earlier victims + 0.35 non-DA violence + 0.25 custody + 0.35 breach
   - 0.02 (perpetrator age - 32) + 0.15 alcohol + sum_j beta_j item_j. History carries most
   of the signal (Turner et al. 2022; Grogger et al. 2021); item effects are weak, log-odds
   0.05-0.27 conditional on history (marginal ORs are larger through the shared propensity;
   "at best weakly predictive", Turner et al. 2019), shrunk because published ORs are
   marginal (docs/ml-research.md section 10, pitfall 1). ``b0`` is found by bisection so the
   mean risk is 0.16 (police-recorded repeat DA in 12 months: 14.3% VioGen VPR4.0, 18.7% Devon and
   Cornwall). ``serious_harm_12m`` is a subset of repeats, more likely after strangulation,
   weapons or threats to kill.

The oracle AUC (the true probabilities scored against the drawn outcomes) is reported; it
should sit in the literature band 0.70-0.78 (Turner et al. 2022: 0.748 / 0.763).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from app.classifier.data import SYNTHETIC_SYSTEM
from app.contract.items import DASH_POLICE_ITEMS, DASH_RIC_ITEMS
from app.progress import track

GENERATOR_VERSION = "1"
SYNTHETIC_NOTICE = "SYNTHETIC DATA - invented incidents, not real people; not for operational use"

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# item: (prevalence, block, outcome log-odds). Blocks: 0 coercive control / stalking /
# threats, 1 physical escalation, 2 perpetrator. Log-odds are weak by design (see docstring).
ITEM_MODEL: dict[str, tuple[float, int, float]] = {
    "current_injury": (0.35, 1, 0.06),
    "very_frightened": (0.55, 1, 0.09),
    "afraid_of_further_harm": (0.50, 1, 0.12),
    "isolated": (0.30, 0, 0.06),
    "depressed_or_suicidal": (0.30, 2, 0.06),
    "separation_past_year": (0.40, 0, 0.18),
    "child_contact_conflict": (0.20, 0, 0.12),
    "stalking_harassment": (0.30, 0, 0.21),
    "pregnant_or_recent_birth": (0.10, 1, 0.09),
    "abuse_more_often": (0.35, 0, 0.18),
    "abuse_getting_worse": (0.35, 0, 0.18),
    "controlling_or_jealous": (0.50, 0, 0.12),
    "weapons_used": (0.12, 1, 0.15),
    "threat_to_kill": (0.20, 1, 0.18),
    "strangulation": (0.10, 1, 0.18),
    "sexual_abuse": (0.08, 1, 0.09),
    "other_person_threat": (0.12, 2, 0.06),
    "harmed_others": (0.15, 2, 0.12),
    "animal_abuse": (0.06, 2, 0.06),
    "financial_issues": (0.35, 0, 0.05),
    "substance_or_mental_health": (0.45, 2, 0.12),
    "perpetrator_suicidal": (0.15, 2, 0.09),
    "breach_of_bail_or_order": (0.12, 2, 0.27),
    "criminal_history": (0.40, 2, 0.21),
    "children_not_perpetrators": (0.10, 2, 0.06),
    "harmed_children": (0.05, 1, 0.12),
    "threatened_children": (0.05, 1, 0.12),
}
PERPETRATOR_ITEMS = frozenset(
    {
        "depressed_or_suicidal",
        "other_person_threat",
        "harmed_others",
        "animal_abuse",
        "perpetrator_suicidal",
        "breach_of_bail_or_order",
        "criminal_history",
    }
)
AREAS = ("E09000018", "E08000003", "E06000054", "E10000019", "E07000041")


@dataclass(frozen=True)
class GeneratorParameters:
    """The documented parameters (see the module docstring for their sources)."""

    base_rate: float = 0.16
    group_b_share: float = 0.30
    group_b_shift: float = 0.35
    latent_loading: float = 0.20
    block_loading: float = 0.65
    not_completed_rate: float = 0.06
    perpetrator_history_missing: float = 0.08
    victim_history_missing: float = 0.05
    police_form_share: float = 0.20
    n_officers: int = 250
    beta_victim_12m: float = 0.40
    beta_perp_total: float = 0.25
    beta_recency: float = 0.8
    recency_scale_days: float = 60.0
    beta_prior_victims: float = 0.35
    beta_non_da_violence: float = 0.35
    beta_custody: float = 0.25
    beta_breach: float = 0.35
    beta_perp_age_per_year: float = -0.02
    beta_alcohol: float = 0.15
    drift: float = 0.0  # >0 shifts unknown rates and history (to exercise the monitor)
    items: dict[str, tuple[float, int, float]] = field(default_factory=lambda: dict(ITEM_MODEL))


@dataclass
class SynthResult:
    n: int
    seed: int
    base_rate: float
    oracle_auc: float
    intercept: float
    group_base_rates: dict[str, float]
    dash_count_auc: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "synthetic": True,
            "notice": SYNTHETIC_NOTICE,
            "generator": "app.classifier.synth",
            "generator_version": GENERATOR_VERSION,
            "n": self.n,
            "seed": self.seed,
            "base_rate": round(self.base_rate, 4),
            "oracle_auc": round(self.oracle_auc, 4),
            "dash_count_auc": round(self.dash_count_auc, 4),
            "outcome_intercept": round(self.intercept, 4),
            "group_base_rates": {k: round(v, 4) for k, v in self.group_base_rates.items()},
        }


def _negbin(rng: np.random.Generator, mean: FloatArray, r: float) -> NDArray[np.int64]:
    # Gamma-Poisson mixture: NegBin with the given mean and dispersion r.
    lam = rng.gamma(shape=r, scale=mean / r)
    return rng.poisson(lam).astype(np.int64)


def _truncated_exponential(rng: np.random.Generator, scale: FloatArray, upper: float) -> FloatArray:
    u = rng.random(scale.shape[0])
    return np.asarray(-scale * np.log1p(-u * (1.0 - np.exp(-upper / scale))), dtype=np.float64)


def _solve_intercept(eta: FloatArray, target: float) -> float:
    lo, hi = -15.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2.0
        if float(np.mean(expit(mid + eta))) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


@dataclass
class _Draws:
    """The latent and recorded variables of every incident, as arrays."""

    group_b: BoolArray
    u: FloatArray
    truth: dict[str, BoolArray]
    answers: dict[str, NDArray[np.str_]]
    police_form: BoolArray
    not_completed: BoolArray
    officer: NDArray[np.int64]
    victim_12m: NDArray[np.int64]
    perp_total: NDArray[np.int64]
    prior_victims: NDArray[np.int64]
    days_victim: FloatArray  # NaN: none
    days_perp: FloatArray
    marac_days: FloatArray
    non_da_violence: BoolArray
    custody: BoolArray
    breach: BoolArray
    perp_missing: BoolArray
    victim_missing: BoolArray
    victim_age: FloatArray
    perp_age: FloatArray
    alcohol: BoolArray
    rel_type: NDArray[np.str_]
    probability: FloatArray
    repeat: BoolArray
    serious: BoolArray
    intercept: float


def _draw(n: int, rng: np.random.Generator, params: GeneratorParameters) -> _Draws:
    group_b = rng.random(n) < params.group_b_share
    u = rng.standard_normal(n) + params.group_b_shift * group_b + params.drift

    # Checklist truth via a Gaussian copula with block structure.
    blocks = rng.standard_normal((3, n))
    lam, rho = params.latent_loading, params.block_loading
    noise_sd = float(np.sqrt(1.0 - lam**2 - rho**2))
    truth: dict[str, BoolArray] = {}
    rel_type = rng.choice(
        np.array(["intimate_partner", "ex_intimate_partner", "family_member", "other"]),
        size=n,
        p=[0.55, 0.30, 0.12, 0.03],
    )
    for item, (prev, block, _beta) in params.items.items():
        z = lam * u + rho * blocks[block] + noise_sd * rng.standard_normal(n)
        truth[item] = z > norm.ppf(1.0 - prev)
    # Separation is mostly a fact of the relationship.
    ex = rel_type == "ex_intimate_partner"
    truth["separation_past_year"] = np.where(ex, rng.random(n) < 0.7, truth["separation_past_year"])

    # Officer-dependent missingness.
    n_off = params.n_officers
    officer = rng.integers(0, n_off, size=n)
    unknown_p = rng.beta(1.2, 14.0, size=n_off) * (1.0 + params.drift)
    not_asked_p = rng.beta(0.8, 20.0, size=n_off)
    police_form = rng.random(n) < params.police_form_share
    not_completed = rng.random(n) < params.not_completed_rate + 0.05 * params.drift
    answers: dict[str, NDArray[np.str_]] = {}
    for item in DASH_POLICE_ITEMS:
        p_unk = np.clip(unknown_p[officer] * (2.0 if item in PERPETRATOR_ITEMS else 1.0), 0, 0.9)
        draw = rng.random(n)
        ans = np.where(truth[item], "yes", "no").astype("<U9")
        ans = np.where(draw < p_unk, "unknown", ans)
        ans = np.where((draw >= p_unk) & (draw < p_unk + not_asked_p[officer]), "not_asked", ans)
        ans = np.where(not_completed, "not_asked", ans)
        if item not in DASH_RIC_ITEMS:
            ans = np.where(police_form, ans, "not_asked")
        answers[item] = ans

    # History.
    victim_12m = _negbin(rng, np.exp(-0.9 + 0.75 * u), 0.9)
    perp_extra = _negbin(rng, np.exp(-0.4 + 0.8 * u), 0.7)
    perp_total = victim_12m + perp_extra
    other_victims = (perp_extra > 0) & (rng.random(n) < expit(-0.6 + 0.5 * u))
    prior_victims = np.where(other_victims, 1 + rng.poisson(0.3, size=n), 0).astype(np.int64)
    d_victim = _truncated_exponential(rng, 70.0 * np.exp(-0.25 * u), 365.0)
    days_victim = np.where(victim_12m > 0, d_victim, np.nan)
    d_extra = rng.exponential(300.0 * np.exp(-0.25 * u))
    days_perp = np.where(perp_extra > 0, d_extra, np.nan)
    days_perp = np.where(victim_12m > 0, np.fmin(days_perp, days_victim), days_perp)
    marac = (victim_12m > 0) & (rng.random(n) < 0.08 + 0.04 * np.minimum(victim_12m, 5))
    marac_days = np.where(marac, rng.uniform(10, 365, size=n), np.nan)
    non_da_violence = rng.random(n) < expit(-1.0 + 0.9 * u)
    custody = rng.random(n) < expit(-2.2 + 0.9 * u)
    breach = rng.random(n) < expit(-2.0 + 0.8 * u)
    perp_missing = rng.random(n) < params.perpetrator_history_missing
    victim_missing = rng.random(n) < params.victim_history_missing

    victim_age = 18.0 + rng.gamma(2.5, 6.0, size=n)
    perp_age = np.clip(victim_age + rng.normal(2.0, 5.0, size=n), 16.0, 90.0)
    alcohol = rng.random(n) < expit(-0.8 + 0.3 * u)

    # Outcome: the true probability uses the true (not the recorded) values.
    days_min = np.fmin(days_victim, days_perp)
    recency = np.where(
        np.isnan(days_min), 0.0, np.exp(-np.nan_to_num(days_min) / params.recency_scale_days)
    )
    eta = (
        params.beta_victim_12m * np.log1p(victim_12m)
        + params.beta_perp_total * np.log1p(perp_total)
        + params.beta_recency * recency
        + params.beta_prior_victims * (prior_victims > 0)
        + params.beta_non_da_violence * non_da_violence
        + params.beta_custody * custody
        + params.beta_breach * breach
        + params.beta_perp_age_per_year * (perp_age - 32.0)
        + params.beta_alcohol * alcohol
    )
    for item, (_prev, _block, beta) in params.items.items():
        if item in DASH_RIC_ITEMS or item in POLICE_ONLY_EFFECTIVE:
            eta = eta + beta * truth[item]
    b0 = _solve_intercept(eta, params.base_rate)
    probability = np.asarray(expit(b0 + eta), dtype=np.float64)
    repeat = rng.random(n) < probability
    harm_p = expit(
        -2.2
        + 0.8 * truth["strangulation"]
        + 0.6 * truth["weapons_used"]
        + 0.5 * truth["threat_to_kill"]
        + 0.3 * np.log1p(perp_total)
    )
    serious = repeat & (rng.random(n) < harm_p)
    return _Draws(
        group_b=group_b,
        u=u,
        truth=truth,
        answers=answers,
        police_form=police_form,
        not_completed=not_completed,
        officer=officer,
        victim_12m=victim_12m,
        perp_total=perp_total,
        prior_victims=prior_victims,
        days_victim=days_victim,
        days_perp=days_perp,
        marac_days=marac_days,
        non_da_violence=non_da_violence,
        custody=custody,
        breach=breach,
        perp_missing=perp_missing,
        victim_missing=victim_missing,
        victim_age=victim_age,
        perp_age=perp_age,
        alcohol=alcohol,
        rel_type=rel_type,
        probability=probability,
        repeat=repeat,
        serious=serious,
        intercept=b0,
    )


# The police-only child items affect the outcome only where the child block exists in truth.
POLICE_ONLY_EFFECTIVE = frozenset({"harmed_children", "threatened_children"})

_START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
_SPAN_SECONDS = 2 * 365 * 86400


def _iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _maybe(rng: np.random.Generator, value: bool, missing: float) -> bool | None:
    return None if rng.random() < missing else bool(value)


def _incident(i: int, seed: int, d: _Draws, rng: np.random.Generator) -> dict[str, Any]:
    occurred = _START + dt.timedelta(seconds=int(rng.integers(0, _SPAN_SECONDS)))
    reported = occurred + dt.timedelta(minutes=int(rng.integers(5, 180)))
    truth = {k: bool(v[i]) for k, v in d.truth.items()}
    victim_dob = (occurred - dt.timedelta(days=float(d.victim_age[i]) * 365.25)).date()
    perp_dob = (occurred - dt.timedelta(days=float(d.perp_age[i]) * 365.25)).date()
    victim_sex = "female" if rng.random() < 0.8 else "male"
    persons: list[dict[str, Any]] = [
        {
            "ref": "v1",
            "role": "victim",
            "name": {"given": "Synthetic", "family": f"Victim-{i:07d}"},
            "date_of_birth": victim_dob.isoformat(),
            "sex": victim_sex,
        },
        {
            "ref": "p1",
            "role": "perpetrator",
            "name": {"given": "Synthetic", "family": f"Perpetrator-{i:07d}"},
            "date_of_birth": perp_dob.isoformat() if rng.random() > 0.03 else None,
            "sex": "male" if victim_sex == "female" else str(rng.choice(["female", "male"])),
        },
    ]
    n_children = int(rng.choice([0, 1, 2, 3], p=[0.45, 0.28, 0.17, 0.10]))
    for c in range(n_children):
        age_days = int(rng.integers(30, 16 * 365))
        present = bool(rng.random() < 0.6)
        school_age = age_days > 4 * 365
        child: dict[str, Any] = {
            "relationship_to_perpetrator": str(
                rng.choice(["child", "stepchild", "other_relative"])
            ),
            "lives_at_address": bool(rng.random() < 0.85),
            "present": present,
            "witnessed": present and bool(rng.random() < 0.7),
            "injured": present and bool(rng.random() < 0.03),
            "intervened": present and bool(rng.random() < 0.1),
            "spoken_to_by_officer": present and bool(rng.random() < 0.6),
            "existing_plan": str(
                rng.choice(["none", "child_in_need", "child_protection"], p=[0.88, 0.08, 0.04])
            ),
            "disability_or_additional_needs": bool(rng.random() < 0.08),
        }
        if school_age:
            child["school"] = {"name": f"Synthetic School {int(rng.integers(1, 400))}"}
        persons.append(
            {
                "ref": f"c{c + 1}",
                "role": "child",
                "name": {"given": "Synthetic", "family": f"Child-{i:07d}-{c + 1}"},
                "date_of_birth": (occurred.date() - dt.timedelta(days=age_days)).isoformat(),
                "child": child,
            }
        )
    if truth["pregnant_or_recent_birth"] and rng.random() < 0.5:
        persons.append(
            {
                "ref": f"c{n_children + 1}",
                "role": "child",
                "unborn": True,
                "expected_date": (
                    occurred.date() + dt.timedelta(days=int(rng.integers(20, 250)))
                ).isoformat(),
                "child": {"relationship_to_perpetrator": "child"},
            }
        )
    for p in persons:
        if p.get("date_of_birth", "x") is None:
            del p["date_of_birth"]

    rel_type = str(d.rel_type[i])
    separation: dict[str, Any] = {"status": "none"}
    if truth["separation_past_year"]:
        status = (
            "recent"
            if rel_type == "ex_intimate_partner"
            else str(rng.choice(["planned", "perceived"]))
        )
        separation = {"status": status}
        if status == "recent":
            separation["date"] = (
                occurred.date() - dt.timedelta(days=int(rng.integers(1, 365)))
            ).isoformat()
    elif rel_type == "ex_intimate_partner":
        separation = {"status": "historic"}

    answers = {item: str(d.answers[item][i]) for item in DASH_POLICE_ITEMS}
    instrument = "dash-police" if d.police_form[i] else "dash-ric"
    if instrument == "dash-ric":
        answers = {k: v for k, v in answers.items() if k in DASH_RIC_ITEMS}
    # Items never asked are sometimes omitted rather than sent as "not_asked".
    if rng.random() < 0.5:
        answers = {k: v for k, v in answers.items() if v != "not_asked"}
    answered_by = (
        "not_completed"
        if d.not_completed[i]
        else str(rng.choice(["victim", "officer", "third_party"], p=[0.9, 0.08, 0.02]))
    )

    miss = 0.08
    circumstances = {
        "physical_violence": _maybe(rng, truth["current_injury"] or rng.random() < 0.35, miss),
        "sexual_violence": _maybe(rng, truth["sexual_abuse"] and rng.random() < 0.5, miss),
        "coercive_control": _maybe(
            rng, truth["controlling_or_jealous"] and rng.random() < 0.6, miss
        ),
        "weapon_used": _maybe(rng, truth["weapons_used"] and rng.random() < 0.7, miss),
        "strangulation": _maybe(rng, truth["strangulation"] and rng.random() < 0.7, miss),
        "injury_to_victim": _maybe(rng, truth["current_injury"], miss),
        "alcohol_involved": _maybe(rng, bool(d.alcohol[i]), miss),
        "drugs_involved": _maybe(rng, rng.random() < 0.15, miss),
        "arrest_made": _maybe(
            rng, rng.random() < (0.55 if truth["current_injury"] else 0.25), 0.02
        ),
        "crime_recorded": _maybe(rng, rng.random() < 0.6, 0.02),
    }

    perpetrator_history: dict[str, Any] = {}
    if not d.perp_missing[i]:
        markers = []
        if d.non_da_violence[i] and rng.random() < 0.6:
            markers.append("violence")
        if truth["weapons_used"] and rng.random() < 0.3:
            markers.append("weapons")
        if truth["substance_or_mental_health"] and rng.random() < 0.3:
            markers.append(str(rng.choice(["drugs", "alcohol", "mental_health"])))
        perpetrator_history = {
            "prior_da_incidents_total": int(d.perp_total[i]),
            "prior_da_victims": int(d.prior_victims[i]),
            "prior_non_da_violence": bool(d.non_da_violence[i]),
            "prior_custody": bool(d.custody[i]),
            "breach_of_conditional_release": bool(d.breach[i]),
            "warning_markers": markers,
            "active_orders": [{"type": "bail_conditions"}] if rng.random() < 0.05 else [],
        }
        if not np.isnan(d.days_perp[i]):
            last = occurred - dt.timedelta(days=float(d.days_perp[i]))
            perpetrator_history["last_incident_at"] = _iso(last.replace(microsecond=0))
    victim_history: dict[str, Any] = {}
    if not d.victim_missing[i]:
        victim_history = {"prior_da_incidents_12m": int(d.victim_12m[i])}
        if not np.isnan(d.days_victim[i]):
            last = occurred - dt.timedelta(days=float(d.days_victim[i]))
            victim_history["last_incident_at"] = _iso(last.replace(microsecond=0))
        if not np.isnan(d.marac_days[i]):
            victim_history["last_marac_referral"] = (
                occurred.date() - dt.timedelta(days=int(d.marac_days[i]))
            ).isoformat()

    frightened = truth["very_frightened"] + truth["afraid_of_further_harm"]
    perception = ["standard", "medium", "high"][frightened] if rng.random() < 0.7 else None
    return {
        "source": {
            "system": SYNTHETIC_SYSTEM,
            "reference": f"SYN-{seed}-{i:07d}",
            "submitted_by": f"synthetic-officer-{int(d.officer[i]):03d}",
        },
        "area": AREAS[i % len(AREAS)],
        "occurred_at": _iso(occurred),
        "reported_at": _iso(reported),
        "persons": persons,
        "relationship": {
            "victim": "v1",
            "perpetrator": "p1",
            "type": rel_type,
            "cohabiting": None
            if rng.random() < 0.1
            else bool(rel_type == "intimate_partner" and rng.random() < 0.7),
            "separation": separation,
        },
        "circumstances": circumstances,
        "victim_checklist": {
            "instrument": instrument,
            "answered_by": answered_by,
            "mode": "in_person",
            "answers": answers,
        },
        "perpetrator_history": perpetrator_history,
        "victim_history": victim_history,
        "officer_assessment": {"victim_perception": perception},
    }


def generate(
    n: int,
    seed: int,
    out: Path,
    params: GeneratorParameters | None = None,
    *,
    progress: bool = False,
) -> SynthResult:
    """Write ``n`` synthetic incidents with outcomes to ``out`` (JSON Lines) and a sidecar
    ``out.meta.json``; return the summary with the oracle AUC."""
    if n < 10:
        raise ValueError("n must be at least 10")
    p = params or GeneratorParameters()
    rng = np.random.default_rng(seed)
    draws = _draw(n, rng, p)
    detail_rng = np.random.default_rng([seed, 1])
    groups = np.where(draws.group_b, "B", "A")
    dash_counts = np.zeros(n)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for i in track(range(n), "generating", unit="incidents", enabled=progress):
            incident = _incident(i, seed, draws, detail_rng)
            answers = incident["victim_checklist"]["answers"]
            dash_counts[i] = sum(1 for item in DASH_RIC_ITEMS if answers.get(item) == "yes")
            line = {
                "synthetic": True,
                "protected_group": str(groups[i]),
                "incident": incident,
                "outcome": {
                    "repeat_incident_12m": bool(draws.repeat[i]),
                    "serious_harm_12m": bool(draws.serious[i]),
                    "true_probability": round(float(draws.probability[i]), 6),
                },
            }
            fh.write(json.dumps(line, separators=(",", ":")) + "\n")
    y = draws.repeat.astype(int)
    result = SynthResult(
        n=n,
        seed=seed,
        base_rate=float(y.mean()),
        oracle_auc=float(roc_auc_score(y, draws.probability)),
        intercept=draws.intercept,
        group_base_rates={
            g: float(y[groups == g].mean()) for g in ("A", "B") if (groups == g).any()
        },
        dash_count_auc=float(roc_auc_score(y, dash_counts)),
    )
    meta = result.to_dict() | {"parameters": _params_dict(p), "data_file": out.name}
    Path(str(out) + ".meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return result


def _params_dict(p: GeneratorParameters) -> dict[str, Any]:
    d = {k: v for k, v in p.__dict__.items() if k != "items"}
    d["items"] = {
        k: {"prevalence": v[0], "block": v[1], "log_odds": v[2]} for k, v in p.items.items()
    }
    return d
