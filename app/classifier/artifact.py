"""Model artifacts: verified loading, and serving with explanations.

An artifact is a directory ``models/NAME/VERSION/`` holding:

- ``model.skops``: the calibrated scikit-learn pipeline, in skops format (no pickle);
- ``scorecard.json``: the learned points scorecard (hashed definition, see ``scorecard``);
- ``manifest.json``: sha256 of both files, library versions, the feature list and schema
  version, the training data fingerprint, whether the data were synthetic, metrics, the
  operating threshold and bands, and the training profile used by the drift monitor;
- ``MODEL_CARD.md`` and its plots.

``load_artifact`` refuses (``ArtifactError``) an artifact whose file hash, scikit-learn
version, numpy major version, feature list or scorecard hash does not match, and any skops
file containing a type outside ``ALLOWED_TYPES`` -- a fixed allow-list kept in code, checked
at save time as well. The service starts without a model when none is configured.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import skops
import skops.io as sio
from numpy.typing import NDArray

from app.classifier.features import (
    FEATURE_INDEX,
    FEATURE_NAMES,
    FEATURE_SCHEMA_VERSION,
    REASONS,
    SPEC_BY_NAME,
    ClassifierHistory,
    incident_features,
    reason_columns,
    reference_row,
    row_vector,
)
from app.classifier.scorecard import ScorecardError, score_points, verify_definition
from app.contract.incident import Incident

ARTIFACT_FORMAT = "da-triage-classifier/1"
MODEL_FILE = "model.skops"
SCORECARD_FILE = "scorecard.json"
MANIFEST_FILE = "manifest.json"
CARD_FILE = "MODEL_CARD.md"
MAX_TOP_FACTORS = 4

# Types skops does not trust by default that our pipelines legitimately contain. Anything
# else in a model file is refused, whoever made the file.
ALLOWED_TYPES: frozenset[str] = frozenset(
    {
        "numpy.dtype",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)

FloatArray = NDArray[np.float64]


class ArtifactError(RuntimeError):
    """A model artifact that must not be used (missing, tampered, or incompatible)."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dump_model(model: object, path: Path) -> tuple[str, list[str]]:
    """Write ``model`` in skops format; return its sha256 and the non-default types it needs.

    Refuses to write a model that needs a type outside ``ALLOWED_TYPES``.
    """
    data = sio.dumps(model, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    untrusted = sorted(sio.get_untrusted_types(data=data))
    refused = sorted(set(untrusted) - ALLOWED_TYPES)
    if refused:
        raise ArtifactError(f"model contains types outside the allow-list: {', '.join(refused)}")
    path.write_bytes(data)
    return sha256_bytes(data), untrusted


def load_model_bytes(data: bytes) -> Any:
    """Load skops bytes, trusting only types on the allow-list."""
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # a corrupt archive
        raise ArtifactError(
            f"model file is not a readable skops archive ({type(exc).__name__})"
        ) from None
    refused = sorted(set(untrusted) - ALLOWED_TYPES)
    if refused:
        raise ArtifactError(
            f"model file contains types outside the allow-list: {', '.join(refused)}"
        )
    try:
        return sio.loads(data, trusted=sorted(untrusted))
    except Exception as exc:
        raise ArtifactError(f"model file could not be loaded ({type(exc).__name__})") from None


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, 1e-15, 1 - 1e-15)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float64)


@dataclass(frozen=True)
class Factor:
    """One reason contributing to the classifier's log-odds."""

    reason_id: str
    label: str
    contribution: float  # log-odds relative to the reference
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason_id": self.reason_id,
            "label": self.label,
            "contribution": round(self.contribution, 6),
            "value": self.value,
        }


@dataclass(frozen=True)
class ClassifierResult:
    """The classifier's output for one incident, with its explanation."""

    model_name: str
    model_version: str
    model_sha256: str
    manifest_sha256: str
    model_kind: str
    probability: float
    band: str
    threshold: float
    log_odds: float
    reference_log_odds: float
    contributions: tuple[Factor, ...]  # all non-zero, largest first
    explanation_method: str  # "exact" (additive model) or "approximate"
    history_source: str
    synthetic_training_data: bool
    scorecard: dict[str, Any] | None = None
    notices: tuple[str, ...] = field(default_factory=tuple)

    @property
    def elevated(self) -> bool:
        return self.probability >= self.threshold

    @property
    def top_factors(self) -> tuple[Factor, ...]:
        """At most four factors raising risk, largest first."""
        raising = [f for f in self.contributions if f.contribution > 0]
        return tuple(raising[:MAX_TOP_FACTORS])

    @property
    def more_factors(self) -> int:
        """How many further factors raise risk ("and N more")."""
        return max(0, sum(1 for f in self.contributions if f.contribution > 0) - MAX_TOP_FACTORS)

    def to_dict(self) -> dict[str, Any]:
        """The ``classifier`` object of an assessment (JSON-ready, deterministic)."""
        return {
            "name": self.model_name,
            "version": self.model_version,
            "sha256": self.model_sha256,
            "manifest_sha256": self.manifest_sha256,
            "kind": self.model_kind,
            "probability": round(self.probability, 6),
            "band": self.band,
            "threshold": self.threshold,
            "elevated": self.elevated,
            "top_factors": [f.to_dict() for f in self.top_factors],
            "more_factors": self.more_factors,
            "explanation": {
                "method": self.explanation_method,
                "units": "log-odds",
                "reference": "an incident with nothing known to raise risk: every checklist "
                "answer no, no earlier incidents or markers, no children, median ages",
                "reference_log_odds": round(self.reference_log_odds, 6),
                "log_odds": round(self.log_odds, 6),
                "contributions": [f.to_dict() for f in self.contributions],
                "history_source": self.history_source,
            },
            "scorecard": self.scorecard,
            "synthetic_training_data": self.synthetic_training_data,
            "notices": list(self.notices),
        }


@dataclass
class LoadedModel:
    """A verified artifact, ready to score and explain incidents."""

    path: Path
    manifest: dict[str, Any]
    model: Any
    scorecard: dict[str, Any]
    manifest_sha256: str = ""

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def sha256(self) -> str:
        return str(self.manifest["model"]["sha256"])

    @property
    def kind(self) -> str:
        return str(self.manifest["model"]["kind"])

    @property
    def threshold(self) -> float:
        return float(self.manifest["operating_point"]["threshold"])

    @property
    def synthetic(self) -> bool:
        return bool(self.manifest["training_data"]["synthetic"])

    @property
    def additive(self) -> bool:
        return bool(self.manifest["model"]["additive"])

    @property
    def reference_ages(self) -> tuple[float | None, float | None]:
        ref = self.manifest.get("explanation_reference", {})
        return ref.get("victim_age"), ref.get("perpetrator_age")

    def predict_proba(self, x: FloatArray) -> FloatArray:
        return np.asarray(self.model.predict_proba(x)[:, 1], dtype=np.float64)

    def band(self, probability: float) -> str:
        for band in self.manifest["bands"]:
            upper = band.get("below")
            if upper is None or probability < float(upper):
                return str(band["band"])
        return str(self.manifest["bands"][-1]["band"])

    def explain(
        self, incident: Incident, history: ClassifierHistory | None = None
    ) -> ClassifierResult:
        """Probability, band and per-reason contributions for one incident.

        Contributions: for each reason, the change in log-odds when that reason's columns
        move from the documented reference row to the incident's values. For the logistic
        model (additive in its columns, Platt-calibrated) they sum exactly to
        ``log_odds - reference_log_odds``; for boosted trees they are approximate.
        """
        hist = history if history is not None else ClassifierHistory.from_incident(incident)
        row = incident_features(incident, hist)
        x = row_vector(row)
        ref = row_vector(reference_row(*self.reference_ages))
        groups = [
            (rid, cols)
            for rid, cols in reason_columns().items()
            if not np.array_equal(x[cols], ref[cols], equal_nan=True)
        ]
        batch = np.vstack([x, ref] + [_swap(ref, x, cols) for _rid, cols in groups])
        probs = self.predict_proba(batch)
        logits = _logit(probs)
        log_odds, ref_log_odds = float(logits[0]), float(logits[1])
        factors = [
            Factor(
                rid,
                REASONS[rid].label,
                float(logits[i + 2] - ref_log_odds),
                _describe(rid, row, hist),
            )
            for i, (rid, _cols) in enumerate(groups)
        ]
        factors = [f for f in factors if f.contribution != 0.0]
        factors.sort(key=lambda f: (-f.contribution, f.reason_id))
        probability = float(probs[0])
        scored = score_points(self.scorecard, row)
        notices = []
        if self.synthetic:
            notices.append("Trained on synthetic data: NOT FOR OPERATIONAL USE.")
        if not self.additive:
            notices.append("Contributions are approximate (the model is not additive).")
        return ClassifierResult(
            model_name=self.name,
            model_version=self.version,
            model_sha256=self.sha256,
            manifest_sha256=self.manifest_sha256,
            model_kind=self.kind,
            probability=probability,
            band=self.band(probability),
            threshold=self.threshold,
            log_odds=log_odds,
            reference_log_odds=ref_log_odds,
            contributions=tuple(factors),
            explanation_method="exact" if self.additive else "approximate",
            history_source=hist.source,
            synthetic_training_data=self.synthetic,
            scorecard={
                "id": self.scorecard["id"],
                "version": self.scorecard["version"],
                "sha256": self.scorecard["sha256"],
            }
            | scored.to_dict(),
            notices=tuple(notices),
        )


def _swap(ref: FloatArray, x: FloatArray, cols: Sequence[int]) -> FloatArray:
    out = ref.copy()
    out[list(cols)] = x[list(cols)]
    return out


def _describe(reason_id: str, row: Mapping[str, float], hist: ClassifierHistory) -> str:
    """A short, non-identifying statement of the incident's value for a reason."""
    counts = {
        "CLF-HIST-VICTIM-PRIOR-DA": hist.victim_prior_da_incidents_12m,
        "CLF-HIST-PERP-PRIOR-DA": hist.perpetrator_prior_da_incidents,
        "CLF-HIST-PERP-PRIOR-VICTIMS": hist.perpetrator_prior_da_victims,
    }
    if reason_id in counts:
        value = counts[reason_id]
        return "unknown" if value is None else str(value)
    if reason_id == "CLF-HIST-RECENT-INCIDENT":
        known = [
            d
            for d in (
                hist.days_since_victim_last_incident,
                hist.days_since_perpetrator_last_incident,
            )
            if d is not None
        ]
        return "none known" if not known else f"{math.floor(min(known))} days"
    if reason_id in ("CLF-AGE-VICTIM", "CLF-AGE-PERPETRATOR"):
        age = row["victim_age" if reason_id == "CLF-AGE-VICTIM" else "perp_age"]
        return "unknown" if math.isnan(age) else f"{math.floor(age)} years"
    active = [
        name
        for name in FEATURE_NAMES
        if SPEC_BY_NAME[name].reason_id == reason_id and row[name] == 1.0
    ]
    if active and all(n.endswith("_true") for n in active):
        return "yes"
    if active and all(n.endswith("_unknown") for n in active):
        return "unknown"
    if reason_id.startswith("CLF-DASH-") and reason_id not in (
        "CLF-DASH-UNANSWERED",
        "CLF-DASH-ANSWERED-BY",
    ):
        return "yes" if active else "no"
    if reason_id == "CLF-DASH-UNANSWERED":
        return f"{len(active)} not answered"
    numeric = [
        name
        for name in FEATURE_NAMES
        if SPEC_BY_NAME[name].reason_id == reason_id and name not in active
    ]
    parts = [SPEC_BY_NAME[name].label for name in active]
    parts += [
        f"{SPEC_BY_NAME[name].label}: {row[name]:.0f}"
        for name in numeric
        if SPEC_BY_NAME[name].kind == "numeric" and not math.isnan(row[name])
    ]
    return "; ".join(parts) if parts else "reference"


def read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ArtifactError(f"no {MANIFEST_FILE} in {path}")
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(
            f"{MANIFEST_FILE} is not readable JSON ({type(exc).__name__})"
        ) from None
    if manifest.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"unsupported artifact format {manifest.get('format')!r}")
    return manifest


def load_artifact(path: str | Path) -> LoadedModel:
    """Load and verify ``models/NAME/VERSION``; raise ``ArtifactError`` if anything is off."""
    p = Path(path)
    if not p.is_dir():
        raise ArtifactError(f"no model directory at {p}")
    manifest = read_manifest(p)
    libs = manifest.get("libraries", {})
    if libs.get("scikit-learn") != sklearn.__version__:
        raise ArtifactError(
            f"model was saved with scikit-learn {libs.get('scikit-learn')}, "
            f"this service runs {sklearn.__version__}; retrain or install the matching version"
        )
    if str(libs.get("numpy", "")).split(".")[0] != np.__version__.split(".")[0]:
        raise ArtifactError(
            f"model was saved with numpy {libs.get('numpy')}, this is {np.__version__}"
        )
    if manifest.get("feature_schema_version") != FEATURE_SCHEMA_VERSION or list(
        manifest.get("features", [])
    ) != list(FEATURE_NAMES):
        raise ArtifactError("model feature list does not match this service's feature pipeline")
    model_path = p / MODEL_FILE
    if not model_path.is_file():
        raise ArtifactError(f"no {MODEL_FILE} in {p}")
    data = model_path.read_bytes()
    if sha256_bytes(data) != manifest["model"]["sha256"]:
        raise ArtifactError(f"{MODEL_FILE} does not match the sha256 in the manifest (tampered?)")
    model = load_model_bytes(data)
    if not hasattr(model, "predict_proba"):
        raise ArtifactError("model file does not hold a probabilistic classifier")
    scorecard_path = p / SCORECARD_FILE
    try:
        scorecard_bytes = scorecard_path.read_bytes()
        scorecard: dict[str, Any] = json.loads(scorecard_bytes)
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(
            f"{SCORECARD_FILE} is missing or unreadable ({type(exc).__name__})"
        ) from None
    if sha256_bytes(scorecard_bytes) != manifest["scorecard"]["file_sha256"]:
        raise ArtifactError(
            f"{SCORECARD_FILE} does not match the sha256 in the manifest (tampered?)"
        )
    try:
        verify_definition(scorecard)
    except ScorecardError as exc:
        raise ArtifactError(str(exc)) from None
    unknown = [f["feature"] for f in scorecard["features"] if f["feature"] not in FEATURE_INDEX]
    if unknown:
        raise ArtifactError("scorecard names features this pipeline does not produce")
    return LoadedModel(
        path=p,
        manifest=manifest,
        model=model,
        scorecard=scorecard,
        manifest_sha256=sha256_bytes((p / MANIFEST_FILE).read_bytes()),
    )


def result_differences(stored: Any, fresh: Any, path: str = "classifier") -> list[str]:
    """Paths at which a stored ``ClassifierResult.to_dict()`` differs from a fresh one.

    For ``POST /v1/assessments/{id}/reproduce``: an empty list means identical.
    """
    if isinstance(stored, dict) and isinstance(fresh, dict):
        diffs: list[str] = []
        for key in sorted(set(stored) | set(fresh), key=str):
            if key not in stored or key not in fresh:
                diffs.append(f"{path}.{key}")
            else:
                diffs.extend(result_differences(stored[key], fresh[key], f"{path}.{key}"))
        return diffs
    if isinstance(stored, list) and isinstance(fresh, list):
        if len(stored) != len(fresh):
            return [f"{path} (length {len(stored)} != {len(fresh)})"]
        diffs = []
        for i, (a, b) in enumerate(zip(stored, fresh, strict=True)):
            diffs.extend(result_differences(a, b, f"{path}[{i}]"))
        return diffs
    return [] if stored == fresh else [path]


def library_versions() -> dict[str, str]:
    return {
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "skops": skops.__version__,
    }


def load_configured(path: str | Path | None) -> LoadedModel | None:
    """The model the service is configured with (``TRIAGE_CLASSIFIER_PATH``), or None.

    No path: the service runs without a classifier (``assessment.classifier`` is null). A
    path whose artifact fails verification raises ``ArtifactError``: the service must refuse
    to start rather than silently serve without the model it was told to use.
    """
    if path is None or str(path).strip() == "":
        return None
    return load_artifact(path)
