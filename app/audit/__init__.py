"""The statutory audit log (DPA 2018 s.62): a tamper-evident hash chain of audit events."""

from app.audit.chain import (
    AuditEntry,
    AuditOperation,
    VerifyResult,
    append,
    digest_of,
    head,
    verify,
)
from app.audit.models import AuditEvent, AuditEventRecord

__all__ = [
    "AuditEntry",
    "AuditEvent",
    "AuditEventRecord",
    "AuditOperation",
    "VerifyResult",
    "append",
    "digest_of",
    "head",
    "verify",
]
