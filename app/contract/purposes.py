"""Why personal data is read: a code from a published list, and optionally a case reference.

The purpose goes into the audit log with every read (DPA 2018 s.62 asks for the
justification of a consultation). Free text there would be personal data itself
("checking <a name>"), so the ``X-Purpose`` header takes only

    <code>            e.g. ``triage``
    <code>:<case>     e.g. ``marac:MARAC-2026-0147``

where the case reference is letters, digits and ``/ . _ -`` with at least one digit (the
numbered reference of a case, a referral, a request; not a name), and the whole header at
most 64 characters. Anything else is refused with a 400 that quotes nothing. The pattern
uses no look-around, so that it means the same in JSON Schema (ECMA-262) and to client
generators.
"""

from __future__ import annotations

import re

PURPOSES: dict[str, str] = {
    "triage": "triage of an incident by the MASH or the police",
    "safeguarding_referral": "making, reading or answering a safeguarding referral",
    "marac": "preparing for or acting on a MARAC meeting",
    "investigation": "a criminal investigation",
    "audit": "audit, oversight or quality assurance",
    "subject_access": "answering a subject access request",
    "complaint": "handling a complaint",
}

PURPOSE_MAX_LENGTH = 64
CASE_REFERENCE = r"[A-Za-z0-9/._-]*[0-9][A-Za-z0-9/._-]*"
PURPOSE_PATTERN = rf"^({'|'.join(PURPOSES)})(:{CASE_REFERENCE})?$"
_PURPOSE = re.compile(PURPOSE_PATTERN)

PURPOSE_DESCRIPTION = (
    "Why personal data is read, kept in the audit log: one of "
    + ", ".join(f"`{code}` ({text})" for code, text in PURPOSES.items())
    + ", optionally followed by `:` and a case reference (letters, digits and `/._-`, "
    "with at least one digit), e.g. `marac:MARAC-2026-0147`; at most 64 characters in all. "
    "Free text is refused."
)


def valid_purpose(value: str) -> bool:
    return len(value) <= PURPOSE_MAX_LENGTH and _PURPOSE.match(value) is not None
