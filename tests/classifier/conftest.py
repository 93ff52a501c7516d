"""Shared small data sets and one trained model for the classifier tests (built once)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.classifier.data import Dataset, read_jsonl
from app.classifier.synth import SynthResult, generate
from app.classifier.train import TrainConfig, train

EXAMPLES = (
    Path(__file__).resolve().parents[1] / "data" / "incident.example.json",
    Path(__file__).resolve().parents[3] / "shared" / "contract" / "incident.example.json",
)


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthResult]:
    out = tmp_path_factory.mktemp("synth") / "small.jsonl"
    result = generate(5000, 7, out)
    return out, result


@pytest.fixture(scope="session")
def dataset_small(synth_small: tuple[Path, SynthResult]) -> Dataset:
    return read_jsonl(synth_small[0])


@pytest.fixture(scope="session")
def trained(
    tmp_path_factory: pytest.TempPathFactory, dataset_small: Dataset
) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("models") / "test-model" / "1"
    manifest = train(
        dataset_small, out, TrainConfig(name="test-model", version="1", seed=3, scorecard_k_max=12)
    )
    return out, manifest


@pytest.fixture
def example_incident() -> dict[str, Any]:
    for path in EXAMPLES:
        if path.is_file():
            body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return body
    pytest.skip("contract example incident not available")
