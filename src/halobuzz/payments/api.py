"""Routes: payment intents, the sandbox checkout, provider webhooks and ledger reconciliation."""

from __future__ import annotations

import html
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.deps import AdminUser, CurrentUser
from halobuzz.core.deps import SessionDep, SettingsDep
from halobuzz.core.runtime import Runtime
from halobuzz.payments import service
from halobuzz.payments.schemas import IntentIn, IntentOut, ReconciliationOut, WebhookOut

router = APIRouter(prefix="/payments", tags=["payments"])
admin_router = APIRouter(prefix="/admin", tags=["admin"])


async def _write_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A write transaction even for GET: providers return payers to callbacks with GET requests."""
    rt: Runtime = request.app.state.runtime
    async with rt.db.session(write=True) as session:
        yield session


WriteSessionDep = Annotated[AsyncSession, Depends(_write_session, scope="function")]

IntentId = Annotated[uuid.UUID, Path(description="payment intent id")]


@router.post("/intents", response_model=IntentOut, status_code=201, summary="Start buying a coin package")
async def create_intent(body: IntentIn, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> IntentOut:
    view = await service.create_intent(
        session=session,
        actor=user,
        settings=settings,
        package_id=body.package_id,
        provider=body.provider,
        currency=body.currency,
    )
    return IntentOut.model_validate(view.intent).model_copy(update={"next_action": view.next_action})


@router.get("/intents/{intent_id}", response_model=IntentOut, summary="One of your payments")
async def get_intent(intent_id: IntentId, user: CurrentUser, session: SessionDep) -> IntentOut:
    return IntentOut.model_validate(await service.get_intent(session=session, actor=user, intent_id=intent_id))


@router.get(
    "/sandbox/{intent_id}/checkout", response_class=HTMLResponse, summary="The sandbox checkout page (development)"
)
async def sandbox_checkout(intent_id: IntentId, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    intent = await service.sandbox_intent(session=session, settings=settings, intent_id=intent_id)
    action = html.escape(f"/api/v1/payments/sandbox/{intent.id}/complete")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>HaloBuzz sandbox checkout</title></head>
<body>
<h1>Sandbox checkout</h1>
<p>{intent.coins} coins for {intent.amount} {html.escape(intent.currency)} (minor units). Status: {html.escape(intent.status)}.</p>
<p>No money moves: this page stands in for a payment provider while developing.</p>
<form method="post" action="{action}"><button type="submit">Pay</button></form>
</body></html>"""
    return HTMLResponse(page)


@router.post("/sandbox/{intent_id}/complete", response_model=IntentOut, summary="Pay a sandbox payment")
async def sandbox_complete(intent_id: IntentId, session: SessionDep, settings: SettingsDep) -> IntentOut:
    intent = await service.complete_sandbox(session=session, settings=settings, intent_id=intent_id)
    return IntentOut.model_validate(intent)


@router.post("/webhooks/stripe", response_model=WebhookOut, summary="Stripe webhook (signed)")
async def stripe_webhook(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature", max_length=2048)] = None,
) -> WebhookOut:
    payload = await request.body()
    result = await service.handle_stripe_webhook(
        session=session, settings=settings, payload=payload, signature=stripe_signature
    )
    return WebhookOut(received=result.received, intent_id=result.intent_id, status=result.status)


@router.api_route(
    "/webhooks/esewa", methods=["GET", "POST"], response_model=WebhookOut, summary="eSewa success callback"
)
async def esewa_callback(
    session: WriteSessionDep,
    settings: SettingsDep,
    data: Annotated[str, Query(min_length=1, max_length=4096, description="eSewa's base64 JSON")],
) -> WebhookOut:
    result = await service.handle_esewa_callback(session=session, settings=settings, data=data)
    return WebhookOut(received=result.received, intent_id=result.intent_id, status=result.status)


@router.api_route(
    "/webhooks/khalti", methods=["GET", "POST"], response_model=WebhookOut, summary="Khalti return callback"
)
async def khalti_callback(
    session: WriteSessionDep,
    settings: SettingsDep,
    pidx: Annotated[str, Query(min_length=1, max_length=255, description="Khalti payment id")],
) -> WebhookOut:
    result = await service.handle_khalti_callback(session=session, settings=settings, pidx=pidx)
    return WebhookOut(received=result.received, intent_id=result.intent_id, status=result.status)


@admin_router.get(
    "/ledger/reconciliation", response_model=ReconciliationOut, summary="Check the ledger and payments (admins)"
)
async def reconciliation(admin: AdminUser, session: SessionDep) -> ReconciliationOut:
    return ReconciliationOut(**await service.reconcile(session=session))
