"""The baseline of ``bench/intake_load.py``: the least a service can do with an incident.

A FastAPI ``def`` POST that parses the JSON body and stores it as one row with
SQLAlchemy Core in the same kind of database as the service (SQLite in WAL mode with the
service's pragmas, or PostgreSQL), and answers 201. The intake's throughput is reported
as a ratio of this one, measured in the same run on the same machine.

    python -c 'import bare_store; bare_store.create_schema("sqlite:///tmp/bare.db")'
    BARE_DATABASE_URL=sqlite:///tmp/bare.db uvicorn --app-dir bench bare_store:create_app --factory
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from fastapi import Body, FastAPI
from sqlalchemy import JSON, Column, MetaData, String, Table, create_engine, event, insert
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()
stored = Table(
    "bare_incidents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("body", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
)


def create_schema(url: str) -> None:
    """Run once before the server starts: several workers must not race to create it."""
    engine = create_engine(url)
    metadata.create_all(engine)
    engine.dispose()


def create_app() -> FastAPI:
    url = os.environ["BARE_DATABASE_URL"]
    sqlite = url.startswith("sqlite")
    engine = create_engine(
        url,
        pool_size=10,
        max_overflow=30,
        connect_args={"check_same_thread": False} if sqlite else {},
    )
    if sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    app = FastAPI()

    @app.post("/store", status_code=201)
    def store(payload: dict[str, Any] = Body(...)) -> dict[str, str]:
        new_id = str(uuid.uuid4())
        with engine.begin() as conn:
            conn.execute(insert(stored), {"id": new_id, "body": payload})
        return {"id": new_id}

    return app
