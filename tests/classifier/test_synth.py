"""The synthetic generator: deterministic, schema-valid, honestly labelled, realistic rates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.classifier.data import SYNTHETIC_SYSTEM, parse_line
from app.classifier.synth import SynthResult, generate
from app.contract.incident import Incident

# The shared data sets and model (conftest.py) are built by one worker only.
pytestmark = pytest.mark.xdist_group("classifier")


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    generate(300, 11, a)
    generate(300, 11, b)
    generate(300, 12, c)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_every_line_is_a_valid_api_incident_marked_synthetic(
    synth_small: tuple[Path, SynthResult],
) -> None:
    path, _ = synth_small
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5000
    for n, text in enumerate(lines, start=1):
        obj = json.loads(text)
        Incident.model_validate(obj["incident"])  # the API's own model, strict
        assert obj["synthetic"] is True
        assert obj["incident"]["source"]["system"] == SYNTHETIC_SYSTEM
        assert obj["incident"]["source"]["reference"].startswith("SYN-")
        assert obj["protected_group"] in ("A", "B")
        assert isinstance(obj["outcome"]["repeat_incident_12m"], bool)
        record = parse_line(text, n)
        assert record.synthetic
        assert record.incident.victim.name is not None
        assert record.incident.victim.name.given == "Synthetic"


def test_sidecar_metadata_says_synthetic(synth_small: tuple[Path, SynthResult]) -> None:
    path, result = synth_small
    meta = json.loads(Path(str(path) + ".meta.json").read_text(encoding="utf-8"))
    assert meta["synthetic"] is True
    assert "SYNTHETIC" in meta["notice"]
    assert meta["oracle_auc"] == round(result.oracle_auc, 4)
    assert meta["parameters"]["base_rate"] == 0.16


def test_base_rate_is_in_the_published_band(synth_small: tuple[Path, SynthResult]) -> None:
    _, result = synth_small
    assert 0.14 <= result.base_rate <= 0.19


def test_oracle_auc_is_in_the_literature_band(synth_small: tuple[Path, SynthResult]) -> None:
    _, result = synth_small
    assert 0.70 <= result.oracle_auc <= 0.80


def test_protected_groups_have_different_base_rates(
    synth_small: tuple[Path, SynthResult],
) -> None:
    _, result = synth_small
    assert result.group_base_rates["B"] > result.group_base_rates["A"]


def test_checklist_is_weaker_than_the_oracle(synth_small: tuple[Path, SynthResult]) -> None:
    _, result = synth_small
    assert result.dash_count_auc < result.oracle_auc - 0.05


def test_unknown_answers_occur_and_are_not_no(synth_small: tuple[Path, SynthResult]) -> None:
    path, _ = synth_small
    answers = [
        a
        for text in path.read_text(encoding="utf-8").splitlines()[:1000]
        for a in json.loads(text)["incident"]["victim_checklist"]["answers"].values()
    ]
    unknown_share = answers.count("unknown") / len(answers)
    assert 0.02 < unknown_share < 0.3
