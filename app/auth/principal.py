"""Who is calling: the principal every request is authorised and audited as."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, get_args

Role = Literal["submitter", "triage", "agency", "auditor", "admin", "partnership"]
# ``partnership``: a domestic abuse partnership board or a MASH manager: aggregate reports of
# its areas only, no case data.
ROLES: tuple[Role, ...] = get_args(Role)

Agency = Literal[
    "csc",
    "health",
    "school",
    "probation",
    "idva",
    "marac",
    "early_help",
    "police",
    "adult_social_care",
]
AGENCIES: tuple[Agency, ...] = get_args(Agency)

ALL_AREAS = "*"

# A school's Unique Reference Number (DfE), as the incident contract has it.
SCHOOL_URN_PATTERN = r"^[0-9]{6,8}$"
MAX_SCHOOLS = 50
_SCHOOL_URN = re.compile(SCHOOL_URN_PATTERN)


def is_school_urn(value: object) -> bool:
    return isinstance(value, str) and _SCHOOL_URN.fullmatch(value) is not None


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``areas`` scopes triage, agency and partnership principals to local-authority areas
    (``*`` = all);
    ``source_system`` ties a submitter to the records system it may submit for;
    ``schools`` (URNs) scopes a school to its own pupils (a school with none sees nothing).
    """

    id: str
    kind: Literal["api_key", "jwt"]
    role: Role
    label: str = ""
    agency: Agency | None = None
    areas: frozenset[str] = field(default_factory=frozenset)
    source_system: str | None = None
    schools: frozenset[str] = field(default_factory=frozenset)

    def in_area(self, area: str) -> bool:
        return ALL_AREAS in self.areas or area in self.areas
