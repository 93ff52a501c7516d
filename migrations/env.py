"""Alembic environment: batch mode (SQLite ALTERs), type comparison, our naming convention."""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

from app.config import get_settings
from app.db import create_db_engine
from app.models import load_all

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = load_all().metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    return url or get_settings().effective_database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = _url()
    engine = (
        create_db_engine(url)
        if url.startswith("sqlite")
        else engine_from_config(
            {"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool
        )
    )
    with engine.connect() as conn:
        if url.startswith("sqlite"):
            _run_sqlite(conn)
        else:
            _run(conn)
    engine.dispose()


def _run_sqlite(conn: Connection) -> None:
    """SQLite alters a table by rebuilding it (batch mode): dropping the old copy of a table
    that other rows refer to (``flags``, by ``flag_events``) fails while foreign keys are
    enforced, and the pragma that stops enforcing them has no effect inside a transaction.
    So it is off from before the migrations' transaction to after it, and every foreign
    key is checked once they have committed."""
    raw: Any = conn.connection.driver_connection
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        _run(conn)
        broken = raw.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"{len(broken)} rows refer to rows that no longer exist")
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
