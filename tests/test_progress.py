"""Progress of long commands: plain lines when stderr is not a terminal, a bar when it is."""

from __future__ import annotations

import io

import pytest

from app import progress
from app.progress import Progress, track


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_every_interval_and_one_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    with Progress("scoring", total=10, unit="incidents", stream=out, every=3) as p:
        for _ in range(10):
            p.update()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("scoring: 3/10 incidents (30%), ")
    assert lines[-1].startswith("scoring: 10/10 incidents (100%), done in ")
    assert 2 <= len(lines) <= 5


def test_a_terminal_gets_a_bar_and_track_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    term = Terminal()
    monkeypatch.setattr(progress.sys, "stderr", term)
    assert list(track(range(5), "reading", unit="lines")) == [0, 1, 2, 3, 4]
    assert "reading" in term.getvalue()
    assert "5/5" in term.getvalue()  # tqdm's bar, not our lines
    assert "done in" not in term.getvalue()


def test_disabled_progress_writes_nothing() -> None:
    out = io.StringIO()
    with Progress("quiet", total=3, stream=out, enabled=False) as p:
        p.update(3)
    assert out.getvalue() == ""
