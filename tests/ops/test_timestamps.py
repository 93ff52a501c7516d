"""Timestamps read back as the instants written, in Python's own UTC, on both databases;
PostgreSQL connections use the UTC session time zone whatever the server's default
(app/db.py, ``DatabaseLimits.postgresql_options``)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import Column, Integer, MetaData, Table, select, text

from app.db import Database, UTCDateTime


def test_an_instant_comes_back_the_same_and_in_utc(fresh_database: Database) -> None:
    table = Table(
        "when_probe", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime)
    )
    written = [
        dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC),  # the night the clocks go forward
        dt.datetime(2026, 10, 25, 1, 30, tzinfo=ZoneInfo("Europe/London")),  # and back
        dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ]
    with fresh_database.engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), [{"id": i, "at": w} for i, w in enumerate(written)])
    with fresh_database.engine.connect() as conn:
        read = [row.at for row in conn.execute(select(table).order_by(table.c.id))]
        if fresh_database.engine.dialect.name == "postgresql":
            assert conn.execute(text("SHOW TimeZone")).scalar() == "UTC"
    # The same instants (compared in UTC: Python never finds an ambiguous local time, the
    # second 01:30 of October's change, equal to an instant of another zone).
    assert read == [w.astimezone(dt.UTC) for w in written]
    assert all(r.tzinfo is dt.UTC for r in read)
