"""Scheduled reconciliation of pending payments: intents still pending after
``PAYMENTS_RECONCILE_AFTER_MINUTES`` are looked up at their provider (Stripe session retrieve,
eSewa status API, Khalti lookup) and credited or closed exactly once. Each provider call runs with
no write transaction open; the short write that follows re-checks the intent under its lock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select

from halobuzz.core.errors import DomainError
from halobuzz.core.runtime import Runtime
from halobuzz.payments import service
from halobuzz.payments.models import IntentStatus, PaymentIntent
from halobuzz.payments.providers.esewa import EsewaProvider, rupees, to_paisa
from halobuzz.payments.providers.khalti import KhaltiProvider
from halobuzz.payments.providers.stripe import StripeProvider

log = structlog.get_logger(__name__)
BATCH = 200


async def _close(rt: Runtime, intent: PaymentIntent, status: IntentStatus) -> PaymentIntent:
    async with rt.db.session() as session:
        return await service.close_intent(session=session, intent_id=intent.id, provider=intent.provider, status=status)


async def _credit(rt: Runtime, intent: PaymentIntent, event_id: str, **extra: Any) -> PaymentIntent:
    async with rt.db.session() as session:
        return await service.credit_intent(
            session=session,
            intent_id=intent.id,
            provider=intent.provider,
            event_id=event_id,
            event_type=f"{intent.provider}.reconciled",
            amount=extra.pop("amount", intent.amount),
            currency=extra.pop("currency", intent.currency),
            **extra,
        )


async def _check(rt: Runtime, intent: PaymentIntent, providers: dict[str, Any], expired: bool) -> PaymentIntent:
    """Ask the intent's provider about it and apply the answer."""
    provider = providers.get(intent.provider)
    if provider is None or (intent.provider_reference is None and intent.provider != "esewa"):
        return await _close(rt, intent, IntentStatus.CANCELED) if expired else intent
    if isinstance(provider, StripeProvider):
        assert intent.provider_reference is not None
        found = await provider.retrieve_session(intent.provider_reference)
        if found.get("payment_status") == "paid":
            return await _credit(
                rt,
                intent,
                f"session:{found['id']}",
                amount=int(found.get("amount_total") or 0),
                currency=str(found.get("currency") or ""),
                provider_payment_id=str(found["payment_intent"]) if found.get("payment_intent") else None,
            )
        if found.get("status") == "expired" or expired:
            return await _close(rt, intent, IntentStatus.CANCELED)
        return intent
    if isinstance(provider, EsewaProvider):
        status = await provider.status(transaction_uuid=str(intent.id), total_amount=rupees(intent.amount))
        if status.get("status") == "COMPLETE" and to_paisa(status.get("total_amount")) == intent.amount:
            return await _credit(rt, intent, f"complete:{status.get('ref_id') or intent.id}", currency="NPR")
        if status.get("status") in ("NOT_FOUND", "CANCELED", "FULL_REFUND") and expired:
            return await _close(rt, intent, IntentStatus.CANCELED)
        return intent
    if isinstance(provider, KhaltiProvider):
        assert intent.provider_reference is not None
        found = await provider.lookup(intent.provider_reference)
        async with rt.db.session() as session:
            intent = await service.apply_khalti_lookup(
                session=session, intent=intent, pidx=intent.provider_reference, found=found
            )
        if intent.status == IntentStatus.PENDING and expired:
            return await _close(rt, intent, IntentStatus.CANCELED)
        return intent
    return await _close(rt, intent, IntentStatus.CANCELED) if expired else intent  # sandbox


async def reconcile_pending(runtime: Runtime, *, scheduled_for: datetime) -> dict[str, Any]:
    """Check pending intents older than the configured age with their providers; credit paid ones,
    close ones the provider will never complete. Safe to run concurrently and repeatedly."""
    p = runtime.settings.payments
    older_than = scheduled_for - timedelta(minutes=p.reconcile_after_minutes)
    expire_before = scheduled_for - timedelta(minutes=p.expire_after_minutes)
    async with runtime.db.session(write=False) as session:
        pending = list(
            (
                await session.scalars(
                    select(PaymentIntent)
                    .where(PaymentIntent.status == IntentStatus.PENDING, PaymentIntent.created_at < older_than)
                    .order_by(PaymentIntent.created_at)
                    .limit(BATCH)
                )
            ).all()
        )
    providers = service.enabled_providers(runtime.settings)
    result: dict[str, Any] = {"checked": 0, "credited": 0, "closed": 0, "pending": 0, "errors": 0, "error_ids": []}
    for intent in pending:
        result["checked"] += 1
        try:
            after = await _check(runtime, intent, providers, expired=intent.created_at < expire_before)
        except DomainError as exc:
            result["errors"] += 1
            result["error_ids"].append(str(intent.id))
            log.warning("payment_reconcile_failed", intent_id=str(intent.id), code=exc.code)
            continue
        if after.status == IntentStatus.SUCCEEDED:
            result["credited"] += 1
        elif after.status == IntentStatus.PENDING:
            result["pending"] += 1
        else:
            result["closed"] += 1
    result["scheduled_for"] = scheduled_for.isoformat()
    return result


__all__ = ["reconcile_pending"]
