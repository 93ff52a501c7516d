"""``triage audit verify | anchor | export`` against a real database of the test's own."""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from sqlalchemy import delete, select, update

from app.audit import AuditEvent, AuditEventRecord, verify
from app.audit.chain import GENESIS_HASH
from app.audit.cli import register
from app.config import get_settings
from app.db import Database

EVENTS = AuditEvent.__table__
INDEX = AuditEventRecord.__table__


@pytest.fixture
def run(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., int]]:
    """Run ``triage audit ...`` with the settings pointing at the test's database."""
    monkeypatch.setenv("TRIAGE_DATABASE_URL", db.url)
    get_settings.cache_clear()
    parser = argparse.ArgumentParser(prog="triage")
    register(parser.add_subparsers(dest="command", required=True))

    def _run(*argv: str) -> int:
        args = parser.parse_args(["audit", *argv])
        result: int = args.func(args)
        return result

    yield _run
    get_settings.cache_clear()


def _head(db: Database) -> tuple[int, str]:
    with db.session() as session:
        result = verify(session)
    assert result.ok
    return result.head_seq, result.head_hash


def test_verify_reports_ok_and_the_head(
    db: Database, run: Callable[..., int], append_committed: Callable[..., None], capsys: Any
) -> None:
    append_committed(db, 3)
    seq, hash_ = _head(db)
    assert run("verify") == 0
    assert capsys.readouterr().out == f"audit chain OK: 3 events verified; head {seq}:{hash_}\n"


def test_verify_exits_1_and_names_the_first_broken_link(
    db: Database, run: Callable[..., int], append_committed: Callable[..., None], capsys: Any
) -> None:
    append_committed(db, 3)
    with db.engine.begin() as conn:
        conn.execute(update(EVENTS).where(EVENTS.c.seq == 2).values(role="admin"))
    assert run("verify") == 1
    out = capsys.readouterr().out
    assert out.startswith("audit chain BROKEN at event 2: hash mismatch: content altered")


def test_anchor_prints_a_head_that_verify_later_checks(
    db: Database, run: Callable[..., int], append_committed: Callable[..., None], capsys: Any
) -> None:
    append_committed(db, 4)
    assert run("anchor") == 0
    printed = capsys.readouterr().out.strip()
    anchor, printed_at = printed.split(" ")
    assert anchor == "{}:{}".format(*_head(db))
    assert printed_at.endswith("Z")

    append_committed(db, 2, start=4)
    assert run("verify", "--anchor", anchor) == 0
    assert "matches the anchor" in capsys.readouterr().out

    # Truncate back past the anchored head: only the anchor reveals it.
    with db.engine.begin() as conn:
        conn.execute(delete(INDEX).where(INDEX.c.event_seq >= 4))
        conn.execute(delete(EVENTS).where(EVENTS.c.seq >= 4))
    assert run("verify") == 0
    capsys.readouterr()
    assert run("verify", "--anchor", anchor) == 1
    assert "chain truncated after event 3" in capsys.readouterr().out


def test_anchor_of_an_empty_chain_is_the_genesis_head(run: Callable[..., int], capsys: Any) -> None:
    assert run("anchor") == 0
    assert capsys.readouterr().out.startswith(f"0:{GENESIS_HASH} ")
    assert run("verify", "--anchor", f"0:{GENESIS_HASH}") == 0


def test_anchor_refuses_to_anchor_a_broken_chain(
    db: Database, run: Callable[..., int], append_committed: Callable[..., None], capsys: Any
) -> None:
    append_committed(db, 2)
    with db.engine.begin() as conn:
        conn.execute(update(EVENTS).where(EVENTS.c.seq == 1).values(purpose="routine"))
    assert run("anchor") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "refusing to anchor a broken chain" in captured.err


@pytest.mark.parametrize("bad", ["12", "x:" + "a" * 64, "3:" + "a" * 63, "3:" + "G" * 64])
def test_a_malformed_anchor_is_a_usage_error(run: Callable[..., int], bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        run("verify", "--anchor", bad)
    assert exc.value.code == 2


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_export_writes_independently_verifiable_json_lines_and_logs_itself(
    db: Database,
    run: Callable[..., int],
    append_committed: Callable[..., None],
    tmp_path: Path,
    capsys: Any,
) -> None:
    append_committed(db, 3)
    out = tmp_path / "ico-request.jsonl"

    assert run("export", "--out", str(out)) == 0

    assert "exported 3 events (up to event 3)" in capsys.readouterr().out
    events = _read_jsonl(out)
    assert [e["seq"] for e in events] == [1, 2, 3]
    # An auditor needs only sha256 and any RFC 8785 implementation to check the export.
    previous = GENESIS_HASH
    for event in events:
        content = {k: v for k, v in event.items() if k != "hash"}
        assert event["prev_hash"] == previous
        recomputed = hashlib.sha256(previous.encode() + rfc8785.dumps(content)).hexdigest()
        assert recomputed == event["hash"]
        previous = event["hash"]

    # Reading the log is itself logged, in the same transaction, and the chain still verifies.
    with db.session() as session:
        logged = session.scalars(select(AuditEvent).where(AuditEvent.seq == 4)).one()
        assert verify(session).ok
    assert logged.principal_id.startswith("cli:")
    assert (logged.role, logged.operation, logged.record_type) == ("auditor", "consult", "audit")
    assert logged.digest == hashlib.sha256(out.read_bytes()).hexdigest()
    assert logged.detail == {"events": 3, "up_to_seq": 3, "from": None, "to": None}
    assert not out.with_name(out.name + ".partial").exists()


def test_export_filters_by_record_person_and_time(
    db: Database, run: Callable[..., int], append_committed: Callable[..., None], tmp_path: Path
) -> None:
    append_committed(db, 5)  # event n+1 names incident-n, person-n and person-(n+1)
    by_record, by_person, by_time = (tmp_path / f"{n}.jsonl" for n in ("r", "p", "t"))

    assert run("export", "--out", str(by_record), "--record", "incident-2") == 0
    assert run("export", "--out", str(by_person), "--person", "person-2") == 0
    assert (
        run(
            "export",
            "--out",
            str(by_time),
            "--from",
            "2026-03-01T09:30:01.123456Z",
            "--to",
            "2026-03-01T10:30:03.123456+01:00",
        )
        == 0
    )

    assert [e["seq"] for e in _read_jsonl(by_record)] == [3]
    assert [e["seq"] for e in _read_jsonl(by_person)] == [2, 3]
    assert [e["seq"] for e in _read_jsonl(by_time)] == [2, 3]
    with db.session() as session:
        logged = list(session.scalars(select(AuditEvent).where(AuditEvent.seq > 5)))
        assert verify(session).head_seq == 8
    # The export's own event names what was searched for, so the search is auditable too.
    assert logged[0].record_ids == ["incident-2"]
    assert logged[1].person_ids == ["person-2"]
    assert logged[2].detail["from"] == "2026-03-01T09:30:01.123456Z"
    assert logged[2].detail["to"] == "2026-03-01T09:30:03.123456Z"


def test_export_rejects_times_without_an_offset(run: Callable[..., int], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        run("export", "--out", str(tmp_path / "x.jsonl"), "--from", "2026-03-01T09:30:00")
    assert exc.value.code == 2
