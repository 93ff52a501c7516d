"""Dotted paths into an incident (``circumstances.strangulation``), for rules written as data.

Both rule languages (the checklist definitions' effective answers and the flag rules'
``incident`` condition) name incident fields by path; the path is checked against the
contract when the rules load, and read the same way when they run.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from app.contract.incident import Incident


def strip_optional(annotation: Any) -> Any:
    """``X | None`` → ``X``; ``Annotated[X, ...]`` → ``X``."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return strip_optional(members[0])
    return annotation


def resolve_incident_path(path: str) -> Any:
    """The (unwrapped) annotation at a dotted path of :class:`Incident`, or ValueError."""
    model: type[BaseModel] = Incident
    parts = path.split(".")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            raise ValueError(f"incident path {path!r}: no field {part!r}")
        annotation = strip_optional(field.annotation)
        if depth == len(parts) - 1:
            return annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            raise ValueError(f"incident path {path!r}: {part!r} has no fields")
        model = annotation
    raise AssertionError("unreachable")  # pragma: no cover


def incident_value(incident: Incident, path: str) -> Any:
    """The value at ``path``; None when any part on the way is not recorded."""
    value: Any = incident
    for part in path.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value
