"""The training data format: JSON Lines, one incident per line, plus its outcome.

Each line is a JSON object::

    {"incident": {...},            # exactly the API's incident schema (POST /v1/incidents)
     "outcome": {"repeat_incident_12m": true, "serious_harm_12m": false},
     "synthetic": false,           # optional; true on every line ``triage synth`` writes
     "protected_group": "A"}       # optional; a group label used only for fairness reports

``outcome.repeat_incident_12m`` (a further DA incident for the same victim within 12 months) is
required for training and evaluation; ``serious_harm_12m`` is optional. ``triage synth`` also
writes ``outcome.true_probability`` (the generator's own probability, for the oracle AUC); a
force's records never have it. Other outcome keys are ignored.

For convenience the loader also accepts the incident's fields at the top level of the line
(beside ``outcome`` / ``synthetic`` / ``protected_group``). Other top-level keys are line
metadata and are ignored (never stored, never model inputs); ``group`` and
``protected_attribute`` are read as aliases of ``protected_group``, and
``oracle_probability`` as an alias of ``outcome.true_probability``. Lines without an ``outcome`` are
accepted where outcomes are not needed (``triage monitor``). Every incident is validated with
the API's own ``Incident`` model: a line that the API would reject is rejected here too, with
its line number and the locations of the problems (never the values).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.contract.incident import Incident, stored_incident
from app.progress import track

GROUP_KEYS = ("protected_group", "group", "protected_attribute")
PROBABILITY_KEYS = ("true_probability", "oracle_probability")
INCIDENT_FIELDS = frozenset(Incident.model_fields)
SYNTHETIC_SYSTEM = "synthetic-generator"


class DataFormatError(ValueError):
    """A training or monitoring data file that does not follow the format."""


@dataclass(frozen=True)
class Outcome:
    repeat_incident_12m: bool
    serious_harm_12m: bool | None = None
    true_probability: float | None = None


@dataclass(frozen=True)
class LabelledIncident:
    incident: Incident
    outcome: Outcome | None
    synthetic: bool
    protected_group: str | None


@dataclass(frozen=True)
class Dataset:
    records: list[LabelledIncident]
    sha256: str
    path: str

    @property
    def n(self) -> int:
        return len(self.records)

    @property
    def synthetic(self) -> bool:
        """True when any line is marked synthetic (one synthetic line taints the set)."""
        return any(r.synthetic for r in self.records)

    @property
    def has_outcomes(self) -> bool:
        return all(r.outcome is not None for r in self.records)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _parse_outcome(raw: Any, where: str) -> Outcome:
    if not isinstance(raw, dict) or not isinstance(raw.get("repeat_incident_12m"), bool):
        raise DataFormatError(f"{where}: outcome.repeat_incident_12m must be true or false")
    harm = raw.get("serious_harm_12m")
    if harm is not None and not isinstance(harm, bool):
        raise DataFormatError(f"{where}: outcome.serious_harm_12m must be true, false or null")
    prob = next((raw[k] for k in PROBABILITY_KEYS if raw.get(k) is not None), None)
    if prob is not None and not (isinstance(prob, int | float) and 0.0 <= prob <= 1.0):
        raise DataFormatError(f"{where}: outcome.true_probability must be in [0, 1]")
    return Outcome(
        repeat_incident_12m=raw["repeat_incident_12m"],
        serious_harm_12m=harm,
        true_probability=None if prob is None else float(prob),
    )


def parse_line(text: str, line_no: int, *, require_outcome: bool = True) -> LabelledIncident:
    where = f"line {line_no}"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise DataFormatError(f"{where}: each line must be a JSON object")
    if "incident" in obj:
        raw_incident = obj["incident"]
    else:
        raw_incident = {k: v for k, v in obj.items() if k in INCIDENT_FIELDS}
    try:
        incident = stored_incident(raw_incident)
    except ValidationError as exc:
        locs = "; ".join(
            ".".join(str(p) for p in err["loc"]) + f": {err['msg']}" for err in exc.errors()[:5]
        )
        raise DataFormatError(f"{where}: not a valid incident ({locs})") from None
    outcome: Outcome | None = None
    if "outcome" in obj and obj["outcome"] is not None:
        outcome = _parse_outcome(obj["outcome"], where)
    elif require_outcome:
        raise DataFormatError(f"{where}: missing outcome")
    # Any truthy marker (true, or a description of the generator) means synthetic.
    synthetic = bool(obj.get("synthetic", False))
    group = next((obj[k] for k in GROUP_KEYS if obj.get(k) is not None), None)
    if group is not None and not isinstance(group, str):
        if isinstance(group, bool | int):
            group = str(group)
        else:
            raise DataFormatError(f"{where}: protected_group must be a string")
    synthetic = synthetic or incident.source.system == SYNTHETIC_SYSTEM
    return LabelledIncident(incident, outcome, synthetic, group)


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as fh:
        for line_no, text in enumerate(fh, start=1):
            if text.strip():
                yield line_no, text


def read_jsonl(
    path: str | Path, *, require_outcome: bool = True, progress: bool = False
) -> Dataset:
    """Load and validate a JSON Lines file (see the module docstring for the format)."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"no such data file: {p}")
    records = [
        parse_line(text, line_no, require_outcome=require_outcome)
        for line_no, text in track(
            iter_lines(p), "reading incidents", unit="lines", enabled=progress
        )
    ]
    if not records:
        raise DataFormatError(f"{p}: no incidents")
    return Dataset(records=records, sha256=file_sha256(p), path=str(p))


def fairness_groups(dataset: Dataset, by: str = "auto") -> tuple[str, list[str]]:
    """Group labels for fairness reports, never model inputs.

    ``by``: ``protected_group`` (the line's field), ``victim_ethnicity`` (the incident's
    self-defined code), ``victim_sex``, or ``auto`` (the first of these that is present).
    Missing labels become ``"not recorded"``.
    """
    choices = ("protected_group", "victim_ethnicity", "victim_sex")
    if by == "auto":
        for choice in choices:
            labels = _group_labels(dataset, choice)
            if any(label != "not recorded" for label in labels):
                return choice, labels
        return "none", ["all"] * dataset.n
    if by not in choices:
        raise ValueError(f"unknown grouping {by!r}; choose one of {', '.join(choices)}")
    return by, _group_labels(dataset, by)


def _group_labels(dataset: Dataset, by: str) -> list[str]:
    labels: list[str] = []
    for r in dataset.records:
        value: str | None
        if by == "protected_group":
            value = r.protected_group
        elif by == "victim_ethnicity":
            value = r.incident.victim.ethnicity
        else:
            value = r.incident.victim.sex
        labels.append(value if value else "not recorded")
    return labels
