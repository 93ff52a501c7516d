"""Subscriptions (admin) and receipts (the subscribing agency)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from app.audit.record import AuditRecord
from app.auth.policy import authorize
from app.auth.principal import SCHOOL_URN_PATTERN, Agency, Principal
from app.config import EmailAddress
from app.db import DatabaseDep, utcnow
from app.errors import COMMON_PROBLEMS, Conflict, NotFound, Unprocessable, problem_responses
from app.idempotency.writes import WriteRequestDep, WriteResult, run_write
from app.notify import repository
from app.notify.models import Notification, Subscription
from app.notify.secrets import SecretKeyMissing
from app.notify.service import (
    EmailNotConfigured,
    SubscriptionSpecError,
    create_subscription,
    delete_subscription,
)
from app.requests import StrictJsonRoute

router = APIRouter(prefix="/v1", tags=["notifications"], route_class=StrictJsonRoute)

ADMIN_SUBSCRIPTIONS = Depends(authorize("admin.subscriptions"))


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agency: Agency
    channel: Literal["webhook", "email"] = "webhook"
    url: str | None = Field(
        default=None,
        max_length=2000,
        description="The webhook, for channel `webhook` (and refused for `email`): https "
        "(plain http only to localhost in development and test).",
    )
    email: EmailAddress | None = Field(
        default=None,
        description="The mailbox, for channel `email` (and refused for `webhook`): the "
        "agency's functional address, e.g. a school's safeguarding role address. Email is "
        "off unless the service has SMTP configured (409).",
    )
    area: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9._:-]{1,64}$", description="None: every area."
    )
    school_urn: str | None = Field(
        default=None,
        pattern=SCHOOL_URN_PATTERN,
        description="Required for agency `school`, refused for any other.",
    )
    label: str = Field(default="", max_length=100)


class SubscriptionOut(BaseModel):
    id: str
    agency: str
    channel: str
    url: str | None = Field(description="The webhook (channel `webhook`).")
    email: str | None = Field(description="The mailbox (channel `email`).")
    area: str | None
    school_urn: str | None
    label: str
    created_at: AwareDatetime


class CreatedSubscriptionOut(SubscriptionOut):
    secret: str | None = Field(
        description="A webhook's signing secret (`whsec_…`, Standard Webhooks), shown this "
        "once; null for an email subscription (nothing is signed)."
    )


class NotificationOut(BaseModel):
    """One notification as an admin sees it: where it went and how delivery went (no
    payload: the flag's id says what it was about)."""

    id: str
    flag_id: str
    kind: str
    status: str
    subscription_id: str
    agency: str
    channel: str
    attempts: int
    last_error_kind: str | None = Field(
        description="What went wrong last (`http_500`, `timeout`, `connecterror`…), never "
        "the receiver's answer."
    )
    created_at: AwareDatetime
    next_attempt_at: AwareDatetime
    delivered_at: AwareDatetime | None


class NotificationList(BaseModel):
    items: list[NotificationOut] = Field(description="Newest first.")
    total: int = Field(description="How many notifications have this status in all.")


class RequeueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subscription_id: uuid.UUID | None = Field(
        default=None, description="Only this subscription's (default: every failed one)."
    )


class RequeuedOut(BaseModel):
    requeued: list[str] = Field(description="The notifications given a fresh retry budget.")


class ReceiptOut(BaseModel):
    id: str
    status: str
    acknowledged_at: AwareDatetime | None


def _out(sub: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=str(sub.id),
        agency=sub.agency,
        channel=sub.channel,
        url=sub.url,
        email=sub.email,
        area=sub.area,
        school_urn=sub.school_urn,
        label=sub.label,
        created_at=sub.created_at,
    )


@router.get(
    "/admin/subscriptions",
    response_model=list[SubscriptionOut],
    operation_id="list_subscriptions",
    summary="Active notification subscriptions (never their secrets)",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[ADMIN_SUBSCRIPTIONS],
)
def get_subscriptions(db: DatabaseDep) -> list[SubscriptionOut]:
    with db.unit(read_only=True) as session:
        return [_out(s) for s in repository.list_subscriptions(session)]


@router.post(
    "/admin/subscriptions",
    status_code=201,
    response_model=CreatedSubscriptionOut,
    operation_id="create_subscription",
    summary="Subscribe an agency to its flags' notifications (the secret is returned once)",
    description="By webhook (`url`) or by email (`email`, when the service has SMTP "
    "configured; else 409). A `url` for an email subscription, or an `email` for a webhook, "
    "is a 422; so is a school's subscription without its `school_urn`.",
    responses=problem_responses(409, 422, *COMMON_PROBLEMS),
)
def post_subscription(
    request: Request,
    body: SubscriptionIn,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("admin.subscriptions"))],
    write: WriteRequestDep,
) -> Response:
    settings = request.app.state.settings

    def work(session: Session) -> WriteResult:
        try:
            created = create_subscription(
                session,
                settings,
                agency=body.agency,
                channel=body.channel,
                url=body.url,
                email=body.email,
                area=body.area,
                school_urn=body.school_urn,
                label=body.label,
                created_by=principal.id,
            )
        except SubscriptionSpecError as exc:
            raise Unprocessable(str(exc)) from exc
        except (SecretKeyMissing, EmailNotConfigured) as exc:
            raise Conflict(str(exc)) from exc
        out = CreatedSubscriptionOut(
            **_out(created.subscription).model_dump(), secret=created.secret
        )
        return WriteResult(
            body=out.model_dump(mode="json"),
            status_code=201,
            replayable=False,  # the secret is shown once
            audit=[
                AuditRecord(
                    operation="collect",
                    record_type="subscription",
                    record_ids=[created.subscription.id],
                    payload={
                        "id": str(created.subscription.id),
                        "agency": body.agency,
                        "channel": body.channel,
                    },
                )
            ],
        )

    return run_write(request, db, write, work)


@router.delete(
    "/admin/subscriptions/{subscription_id}",
    status_code=204,
    operation_id="delete_subscription",
    summary="End a subscription (nothing more is sent to it)",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[ADMIN_SUBSCRIPTIONS],
)
def remove_subscription(
    request: Request, subscription_id: uuid.UUID, db: DatabaseDep, write: WriteRequestDep
) -> Response:
    def work(session: Session) -> WriteResult:
        if not delete_subscription(session, subscription_id):
            raise NotFound("No such active subscription.")
        return WriteResult(
            body=None,
            status_code=204,
            audit=[
                AuditRecord(
                    operation="alter",
                    record_type="subscription",
                    record_ids=[subscription_id],
                    payload={"deleted": str(subscription_id)},
                )
            ],
        )

    return run_write(request, db, write, work)


@router.post(
    "/notifications/{notification_id}/ack",
    response_model=ReceiptOut,
    operation_id="acknowledge_notification",
    summary="Acknowledge a delivered notification (the subscribing agency's receipt)",
    description="Only the agency the notification was sent to (its area and school) may "
    "acknowledge it; anyone else gets 404. A notification not yet delivered is a 409; "
    "acknowledging twice changes nothing.",
    responses=problem_responses(404, 409, *COMMON_PROBLEMS),
)
def acknowledge(
    request: Request,
    notification_id: uuid.UUID,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("notification.ack"))],
    write: WriteRequestDep,
) -> Response:
    def work(session: Session) -> WriteResult:
        found = repository.get_notification(session, notification_id)
        sub = repository.get_subscription(session, found.subscription_id) if found else None
        if found is None or sub is None or not _receives(principal, sub):
            raise NotFound("No such notification.")
        if found.status in ("pending", "failed"):
            raise Conflict(f"The notification is {found.status}, not delivered.")
        repository.acknowledge(session, found.id, utcnow())
        session.refresh(found)
        body = ReceiptOut(
            id=str(found.id), status=found.status, acknowledged_at=found.acknowledged_at
        ).model_dump(mode="json")
        return WriteResult(
            body=body,
            audit=[
                AuditRecord(
                    operation="alter",
                    record_type="notification",
                    record_ids=[found.id, found.flag_id],
                    payload=body,
                )
            ],
        )

    return run_write(request, db, write, work)


@router.get(
    "/admin/notifications",
    response_model=NotificationList,
    operation_id="list_notifications",
    summary="Notifications by delivery status: the dead letters (`failed`) by default",
    description="The newest notifications in one status, with the error kind of their "
    "last attempt. `failed` notifications ran out of retries and are sent again only when "
    "requeued (`POST /v1/admin/notifications/{id}/retry`, or `/retry` for all).",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[ADMIN_SUBSCRIPTIONS],
)
def get_notifications(
    db: DatabaseDep,
    status: Literal["failed", "pending", "delivered", "acknowledged"] = "failed",
    agency: Agency | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> NotificationList:
    with db.unit(read_only=True) as session:
        rows, total = repository.list_notifications(
            session, status=status, agency=agency, limit=limit
        )
        return NotificationList(items=[_notification(n, s) for n, s in rows], total=total)


@router.post(
    "/admin/notifications/{notification_id}/retry",
    response_model=RequeuedOut,
    operation_id="retry_notification",
    summary="Send a failed notification again, with a fresh retry budget",
    responses=problem_responses(404, 409, *COMMON_PROBLEMS),
    dependencies=[ADMIN_SUBSCRIPTIONS],
)
def retry_notification(
    request: Request, notification_id: uuid.UUID, db: DatabaseDep, write: WriteRequestDep
) -> Response:
    def work(session: Session) -> WriteResult:
        found = repository.get_notification(session, notification_id)
        if found is None:
            raise NotFound("No such notification.")
        if found.status != "failed":
            raise Conflict(f"The notification is {found.status}, not failed.")
        ids = repository.requeue_failed(session, utcnow(), notification_id=found.id)
        return _requeued(ids)

    return run_write(request, db, write, work)


@router.post(
    "/admin/notifications/retry",
    response_model=RequeuedOut,
    operation_id="retry_failed_notifications",
    summary="Send every failed notification (or one subscription's) again",
    description="After a receiver's outage is over: each failed notification becomes "
    "pending with a fresh retry budget.",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[ADMIN_SUBSCRIPTIONS],
)
def retry_failed(
    request: Request, body: RequeueIn, db: DatabaseDep, write: WriteRequestDep
) -> Response:
    def work(session: Session) -> WriteResult:
        ids = repository.requeue_failed(session, utcnow(), subscription_id=body.subscription_id)
        return _requeued(ids)

    return run_write(request, db, write, work)


def _requeued(ids: list[uuid.UUID]) -> WriteResult:
    body = RequeuedOut(requeued=[str(i) for i in ids]).model_dump(mode="json")
    return WriteResult(
        body=body,
        audit=[
            AuditRecord(
                operation="alter",
                record_type="notification",
                record_ids=list(ids),
                payload=body,
                detail={"requeued": len(ids)},
            )
        ],
    )


def _notification(n: Notification, sub: Subscription) -> NotificationOut:
    return NotificationOut(
        id=str(n.id),
        flag_id=str(n.flag_id),
        kind=n.kind,
        status=n.status,
        subscription_id=str(sub.id),
        agency=sub.agency,
        channel=sub.channel,
        attempts=n.attempts,
        last_error_kind=n.last_error_kind,
        created_at=n.created_at,
        next_attempt_at=n.next_attempt_at,
        delivered_at=n.delivered_at,
    )


def _receives(principal: Principal, sub: Subscription) -> bool:
    if principal.agency != sub.agency:
        return False
    if sub.area is not None and not principal.in_area(sub.area):
        return False
    return sub.school_urn is None or sub.school_urn in (principal.schools or ())
