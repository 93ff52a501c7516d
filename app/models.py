"""Import every ORM model so that ``Base.metadata`` is complete (Alembic, tests)."""

from __future__ import annotations

import importlib

from app.db import Base

# Each domain package with tables; a package not built yet is skipped.
MODEL_MODULES = (
    "app.auth.models",
    "app.idempotency.models",
    "app.incidents.models",
    "app.audit.models",
    "app.assessments.models",
    "app.flags.models",
    "app.flags.queue",
    "app.sharing.models",
    "app.people.models",
    "app.notify.models",
)


def load_all() -> type[Base]:
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (name + ".").startswith(exc.name + "."):
                raise
    return Base
