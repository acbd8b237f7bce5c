"""Refunds of completed coin purchases (admin-initiated or reported by the provider).

A refund posts once per intent, under the intent's row lock and the buyer's coin account lock:
the fiat legs of the purchase are undone in full; of the coins, what the buyer still holds (up to
the purchased amount) goes back to the mint, and what they already spent is recorded on
``platform_receivables:COIN`` and flagged — balances never go negative (docs/ledger.md).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.accounts.models import User
from halobuzz.config import Settings
from halobuzz.core.db import Base, Database, Timestamped, UUIDPrimaryKey
from halobuzz.core.errors import Conflict, NotFound
from halobuzz.core.ids import uuid7
from halobuzz.economy import fraud, ledger
from halobuzz.economy.models import LedgerAccount
from halobuzz.payments.models import IntentStatus, PaymentEvent, PaymentIntent
from halobuzz.payments.providers.stripe import StripeProvider

RECEIVABLES = ledger.platform("platform_receivables")


class PaymentRefund(UUIDPrimaryKey, Timestamped, Base):
    """The one refund of a payment intent and what it clawed back."""

    __tablename__ = "payment_refund"

    intent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_intent.id"), unique=True)
    transaction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_transaction.id"), unique=True)
    source: Mapped[str] = mapped_column(String(16))  # admin | provider
    reason: Mapped[str] = mapped_column(String(500), default="")
    amount: Mapped[int] = mapped_column(BigInteger)
    coins_clawed_back: Mapped[int] = mapped_column(BigInteger)
    coins_shortfall: Mapped[int] = mapped_column(BigInteger)
    provider_refund_id: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))


class AlreadyRefunded(Conflict):
    code = "already_refunded"


async def apply_refund(
    *,
    session: AsyncSession,
    intent_id: uuid.UUID,
    source: str,
    reason: str,
    actor_id: uuid.UUID | None = None,
    provider_refund_id: str | None = None,
) -> tuple[PaymentRefund, bool]:
    """Post the refund of a succeeded intent once; ``(refund, False)`` when it was already refunded."""
    intent = await session.get(PaymentIntent, intent_id, with_for_update=True, populate_existing=True)
    if intent is None:
        raise NotFound("no such payment", code="intent_not_found")
    if intent.status == IntentStatus.REFUNDED:
        existing = await session.scalar(select(PaymentRefund).where(PaymentRefund.intent_id == intent.id))
        if existing is not None:
            return existing, False
    if intent.status != IntentStatus.SUCCEEDED or intent.transaction_id is None:
        raise Conflict(
            f"only a completed payment can be refunded; this one is {intent.status}", code="intent_not_refundable"
        )
    coins_key = ledger.user_coins(intent.user_id).key
    held = await session.scalar(select(LedgerAccount.balance).where(LedgerAccount.key == coins_key).with_for_update())
    clawed = min(int(held or 0), intent.coins)
    shortfall = intent.coins - clawed
    legs = [
        ledger.Leg(ledger.provider_clearing(intent.currency), intent.amount),
        ledger.Leg(ledger.platform("platform_revenue", intent.currency), -intent.amount),
        ledger.Leg(ledger.platform("coin_mint"), intent.coins),
    ]
    if clawed:
        legs.append(ledger.Leg(ledger.user_coins(intent.user_id), -clawed))
    if shortfall:
        legs.append(ledger.Leg(RECEIVABLES, -shortfall))
    posted = await ledger.post_transaction(
        session=session,
        kind="coin_refund",
        legs=legs,
        actor_id=intent.user_id,
        idempotency_key=f"refund:{intent.id}",
        meta={
            "payment_intent_id": str(intent.id),
            "purchase_transaction_id": str(intent.transaction_id),
            "source": source,
            "reason": reason,
            "coins_clawed_back": clawed,
            "coins_shortfall": shortfall,
        },
    )
    refund = PaymentRefund(
        intent_id=intent.id,
        transaction_id=posted.transaction.id,
        source=source,
        reason=reason[:500],
        amount=intent.amount,
        coins_clawed_back=clawed,
        coins_shortfall=shortfall,
        provider_refund_id=provider_refund_id,
        created_by=actor_id,
    )
    session.add(refund)
    intent.status = IntentStatus.REFUNDED.value
    if shortfall:
        fraud.flag(
            session,
            kind="refund_after_spend",
            user_id=intent.user_id,
            transaction_id=posted.transaction.id,
            payment_intent_id=intent.id,
            details={
                "coins": intent.coins,
                "coins_clawed_back": clawed,
                "coins_shortfall": shortfall,
                "source": source,
            },
        )
    await session.flush()
    return refund, True


async def admin_refund(
    *, db: Database, settings: Settings, admin: User, intent_id: uuid.UUID, reason: str
) -> PaymentRefund:
    """Refund a completed payment: ask the provider first (Stripe; no write transaction open while
    it answers), then post the refund once. A second refund of the same intent is 409 ``already_refunded``."""
    async with db.session(write=False) as session:
        intent = await session.get(PaymentIntent, intent_id)
        if intent is None:
            raise NotFound("no such payment", code="intent_not_found")
        if intent.status == IntentStatus.REFUNDED:
            raise AlreadyRefunded("this payment was already refunded")
        if intent.status != IntentStatus.SUCCEEDED:
            raise Conflict(
                f"only a completed payment can be refunded; this one is {intent.status}", code="intent_not_refundable"
            )
        provider, reference, payment_id = intent.provider, intent.provider_reference, intent.provider_payment_id
    provider_refund_id: str | None = None
    if provider == "stripe":
        if settings.payments.stripe_secret_key is None:
            raise NotFound("Stripe is not configured here", code="provider_not_enabled")
        stripe = StripeProvider(settings.payments)
        if payment_id is None and reference is not None:
            payment_id = (await stripe.retrieve_session(reference)).get("payment_intent")
        if not payment_id:
            raise Conflict("Stripe has no captured payment for this checkout", code="provider_error")
        found = await stripe.refund(payment_intent=str(payment_id), idempotency_key=f"refund-{intent_id}")
        provider_refund_id = str(found.get("id") or "") or None
    async with db.session() as session:
        refund, created = await apply_refund(
            session=session,
            intent_id=intent_id,
            source="admin",
            reason=reason,
            actor_id=admin.id,
            provider_refund_id=provider_refund_id,
        )
        if not created:
            raise AlreadyRefunded("this payment was already refunded")
    return refund


async def stripe_charge_refunded(
    *, session: AsyncSession, event_id: str, charge: dict[str, Any]
) -> PaymentIntent | None:
    """A ``charge.refunded`` event, applied once per event id: a full refund posts (once per
    intent); a partial one is flagged for an admin."""
    payment_id = charge.get("payment_intent")
    if not isinstance(payment_id, str) or not payment_id:
        return None
    intent = await session.scalar(
        select(PaymentIntent).where(PaymentIntent.provider == "stripe", PaymentIntent.provider_payment_id == payment_id)
    )
    if intent is None:
        raise NotFound("no payment for this charge", code="intent_not_found")
    ins = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    new = await session.execute(
        ins(PaymentEvent)
        .values(id=uuid7(), provider="stripe", provider_event_id=event_id, intent_id=intent.id, type="charge.refunded")
        .on_conflict_do_nothing(index_elements=["provider", "provider_event_id"])
        .returning(PaymentEvent.id)
    )
    if new.scalar_one_or_none() is None:  # a replay: answer with the intent as it is now
        await session.refresh(intent)
        return intent
    if charge.get("refunded") is not True:
        fraud.flag(
            session,
            kind="partial_refund",
            user_id=intent.user_id,
            payment_intent_id=intent.id,
            details={"charge": str(charge.get("id")), "amount_refunded": charge.get("amount_refunded")},
        )
        await session.flush()
        return intent
    await apply_refund(session=session, intent_id=intent.id, source="provider", reason="stripe charge.refunded")
    return intent
