"""Routes: /admin/webhooks — endpoints for integrators and their delivery history. Admins only."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from halobuzz.accounts.deps import AdminUser
from halobuzz.core.deps import PageDep, RuntimeDep, SessionDep
from halobuzz.core.pagination import Page
from halobuzz.webhooks import service

router = APIRouter(prefix="/admin/webhooks", tags=["admin"])


class WebhookIn(BaseModel):
    url: str = Field(max_length=2000)
    secret: str = Field(min_length=16, max_length=200, description="signs every delivery (HMAC-SHA256)")
    event_types: list[str] = Field(min_length=1, max_length=20)
    description: str = Field("", max_length=200)


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str
    created_at: datetime


class DeliveryOut(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime


@router.post("", response_model=WebhookOut, status_code=201)
async def create_webhook(body: WebhookIn, session: SessionDep, rt: RuntimeDep, admin: AdminUser) -> WebhookOut:
    """Register an https endpoint (http to localhost outside production) for some event types."""
    endpoint = await service.create_endpoint(
        session=session,
        actor_id=admin.id,
        url=body.url,
        secret=body.secret,
        event_types=body.event_types,
        description=body.description,
        production=rt.settings.env == "production",
    )
    return WebhookOut.model_validate(endpoint, from_attributes=True)


@router.get("", response_model=list[WebhookOut])
async def list_webhooks(session: SessionDep, _admin: AdminUser) -> list[WebhookOut]:
    """Every registered endpoint (secrets are never shown)."""
    return [WebhookOut.model_validate(e, from_attributes=True) for e in await service.list_endpoints(session=session)]


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: uuid.UUID, session: SessionDep, _admin: AdminUser) -> Response:
    """Remove an endpoint and its delivery history."""
    await service.delete_endpoint(session=session, endpoint_id=webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=Page[DeliveryOut])
async def list_deliveries(
    webhook_id: uuid.UUID, session: SessionDep, _admin: AdminUser, page: PageDep
) -> Page[DeliveryOut]:
    """The endpoint's deliveries, newest first: status, attempts, last response."""
    rows, cursor = await service.list_deliveries(
        session=session, endpoint_id=webhook_id, limit=page.limit, cursor=page.cursor
    )
    return Page(items=[DeliveryOut.model_validate(r, from_attributes=True) for r in rows], next_cursor=cursor)
