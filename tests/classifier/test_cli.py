"""Smoke test of ``triage synth | train | evaluate | monitor`` on tiny data."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from app.cli import main

# The shared data sets and model (conftest.py) are built by one worker only.
pytestmark = pytest.mark.xdist_group("classifier")


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "tiny.jsonl"
    model = tmp_path / "models" / "tiny" / "1"
    assert main(["synth", "--n", "800", "--seed", "3", "--out", str(data)]) == 0
    assert "oracle AUC" in capsys.readouterr().out
    train_args = ["--data", str(data), "--out", str(model), "--scorecard-max-conditions", "8"]
    assert main(["train", *train_args, "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "NOT FOR OPERATIONAL USE" in out
    report = tmp_path / "report.json"
    assert (
        main(["evaluate", "--model", str(model), "--data", str(data), "--json", str(report)]) == 0
    )
    out = capsys.readouterr().out
    assert "dash_count" in out
    assert "checklist_level" in out
    body = json.loads(report.read_text(encoding="utf-8"))
    assert set(body["models"]) == {"classifier", "scorecard", "dash_count", "checklist_level"}
    assert main(["monitor", "--model", str(model), "--data", str(data)]) == 0
    assert "features that moved" in capsys.readouterr().out


def test_cli_refuses_tampered_model(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    trained: tuple[Path, dict[str, Any]],
    synth_small: tuple[Path, Any],
) -> None:
    model = tmp_path / "models" / "copy" / "1"
    shutil.copytree(trained[0], model)
    blob = bytearray((model / "model.skops").read_bytes())
    blob[-10] ^= 0xFF
    (model / "model.skops").write_bytes(bytes(blob))
    assert main(["evaluate", "--model", str(model), "--data", str(synth_small[0])]) == 2
    assert "refused" in capsys.readouterr().err
    assert main(["monitor", "--model", str(model), "--data", str(synth_small[0])]) == 2


def test_train_without_matplotlib_says_what_to_install_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "matplotlib" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    missing = tmp_path / "not-read.jsonl"  # never opened: the check comes first
    assert main(["train", "--data", str(missing), "--out", str(tmp_path / "m" / "1")]) == 2
    err = capsys.readouterr().err
    assert "[train]" in err
    assert "--no-plots" in err
    assert len(err.strip().splitlines()) == 1
