"""Routes: payment intents, the sandbox checkout, provider webhooks and ledger reconciliation."""

from __future__ import annotations

import html
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import HTMLResponse

from halobuzz.accounts.deps import AdminUser, CurrentUser, _authenticate, _bearer
from halobuzz.accounts.models import User
from halobuzz.core.clock import utcnow
from halobuzz.core.deps import PageDep, RuntimeDep, SessionDep, SettingsDep
from halobuzz.core.errors import Forbidden, Unauthorized
from halobuzz.core.runtime import Runtime
from halobuzz.payments import reconcile, refunds, service
from halobuzz.payments.schemas import (
    AdminIntentOut,
    AdminIntentPage,
    IntentIn,
    IntentOut,
    ReconciliationOut,
    RefundIn,
    RefundOut,
    WebhookOut,
)

router = APIRouter(prefix="/payments", tags=["payments"])
admin_router = APIRouter(prefix="/admin", tags=["admin"])


async def _reader_user(request: Request) -> User:
    """The signed-in user, read in a read-only transaction: these routes open their own short
    write transactions around provider calls, so none may be held by the request."""
    token = _bearer(request)
    if token is None:
        raise Unauthorized("sign in first: send 'Authorization: Bearer <access token>'", code="not_authenticated")
    rt: Runtime = request.app.state.runtime
    async with rt.db.session(write=False) as session:
        return await _authenticate(request, session, token)


async def _reader_admin(user: Annotated[User, Depends(_reader_user)]) -> User:
    if not user.has_role("admin"):
        raise Forbidden("this needs the admin role", code="insufficient_role")
    return user


ReaderUser = Annotated[User, Depends(_reader_user)]
ReaderAdmin = Annotated[User, Depends(_reader_admin)]

IntentId = Annotated[uuid.UUID, Path(description="payment intent id")]


@router.post("/intents", response_model=IntentOut, status_code=201, summary="Start buying a coin package")
async def create_intent(body: IntentIn, user: ReaderUser, rt: RuntimeDep) -> IntentOut:
    view = await service.create_intent(
        db=rt.db,
        actor=user,
        settings=rt.settings,
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
    rt: RuntimeDep,
    data: Annotated[str, Query(min_length=1, max_length=4096, description="eSewa's base64 JSON")],
) -> WebhookOut:
    result = await service.handle_esewa_callback(db=rt.db, settings=rt.settings, data=data)
    return WebhookOut(received=result.received, intent_id=result.intent_id, status=result.status)


@router.api_route(
    "/webhooks/khalti", methods=["GET", "POST"], response_model=WebhookOut, summary="Khalti return callback"
)
async def khalti_callback(
    rt: RuntimeDep,
    pidx: Annotated[str, Query(min_length=1, max_length=255, description="Khalti payment id")],
) -> WebhookOut:
    result = await service.handle_khalti_callback(db=rt.db, settings=rt.settings, pidx=pidx)
    return WebhookOut(received=result.received, intent_id=result.intent_id, status=result.status)


@admin_router.get(
    "/ledger/reconciliation", response_model=ReconciliationOut, summary="Check the ledger and payments (admins)"
)
async def reconciliation(admin: AdminUser, session: SessionDep) -> ReconciliationOut:
    return ReconciliationOut(**await service.reconcile(session=session))


@admin_router.get("/payments", response_model=AdminIntentPage, summary="Payments, newest first (admins)")
async def list_payments(
    admin: AdminUser,
    session: SessionDep,
    page: PageDep,
    status: Annotated[
        str | None, Query(max_length=16, description="pending, succeeded, failed, canceled or refunded")
    ] = None,
    provider: Annotated[str | None, Query(max_length=16, description="sandbox, stripe, esewa or khalti")] = None,
    user_id: Annotated[uuid.UUID | None, Query(description="only this buyer's payments")] = None,
) -> AdminIntentPage:
    found = await service.list_intents(
        session=session, status=status, provider=provider, user_id=user_id, limit=page.limit, cursor=page.cursor
    )
    return AdminIntentPage(
        items=[
            AdminIntentOut.model_validate(intent).model_copy(update={"username": name}) for intent, name in found.items
        ],
        next_cursor=found.next_cursor,
    )


@admin_router.post(
    "/payments/{intent_id}/refund", response_model=RefundOut, summary="Refund a completed payment (admins)"
)
async def refund(intent_id: IntentId, body: RefundIn, admin: ReaderAdmin, rt: RuntimeDep) -> RefundOut:
    done = await refunds.admin_refund(
        db=rt.db, settings=rt.settings, admin=admin, intent_id=intent_id, reason=body.reason
    )
    return RefundOut.model_validate(done)


@admin_router.post("/payments/reconcile", summary="Check pending payments with their providers now (admins)")
async def reconcile_now(admin: ReaderAdmin, rt: RuntimeDep) -> dict[str, Any]:
    return await reconcile.reconcile_pending(rt, scheduled_for=utcnow())
