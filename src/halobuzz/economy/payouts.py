"""Creator payouts: earned coins are held in ``platform_payouts_pending:COIN`` when a withdrawal is
requested, then an admin approves (held coins move to ``platform_payouts_paid:COIN``) or rejects
(the request's posting is reversed back to the creator) exactly once (docs/ledger.md)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User
from halobuzz.config import PayoutsSettings
from halobuzz.core.clock import utcnow
from halobuzz.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from halobuzz.core.pagination import decode_cursor, encode_cursor
from halobuzz.economy import ledger
from halobuzz.economy.models import LedgerAccount, LedgerEntry, LedgerTransaction
from halobuzz.economy.payouts_models import Payout, PayoutStatus
from halobuzz.kyc import service as kyc_service

PENDING_ACCOUNT = ledger.platform("platform_payouts_pending")
PAID_ACCOUNT = ledger.platform("platform_payouts_paid")
PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}


async def kyc_verified(*, session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Whether the user's identity documents were approved (halobuzz.kyc); payouts need it."""
    return await kyc_service.is_approved(session=session, user_id=user_id)


def _request_hash(coins: int, currency: str, method: str, destination: str) -> str:
    body = orjson.dumps([coins, currency, method, destination])
    return hashlib.sha256(b"payout:" + body).hexdigest()


async def request_payout(
    *,
    session: AsyncSession,
    actor: User,
    settings: PayoutsSettings,
    coins: int,
    currency: str,
    method: str,
    destination: str,
    idempotency_key: str,
) -> tuple[Payout, bool]:
    """Hold ``coins`` of the creator's earnings for a withdrawal; a retry with the same key and body
    returns the first payout (``created`` False), another body under the key is refused."""
    if not await kyc_verified(session=session, user_id=actor.id):
        raise Forbidden("payouts need a verified identity (KYC)", code="kyc_required")
    currency = currency.upper()
    rate = settings.rates.get(currency)
    if rate is None:
        raise InvalidInput(f"payouts are made in {', '.join(sorted(settings.rates))}", code="currency_not_supported")
    if method not in settings.methods:
        raise InvalidInput(f"payout methods: {', '.join(settings.methods)}", code="invalid_method")
    if coins < settings.min_coins:
        raise InvalidInput(
            f"the minimum payout is {settings.min_coins} coins",
            code="below_minimum",
            details={"min_coins": settings.min_coins},
        )
    request_hash = _request_hash(coins, currency, method, destination)
    key = f"payout:{idempotency_key}"
    existing = await ledger.find_transaction(session=session, actor_id=actor.id, idempotency_key=key)
    if existing is None:
        posted = await ledger.post_transaction(
            session=session,
            kind="payout_request",
            legs=[ledger.Leg(ledger.creator_earnings(actor.id), -coins), ledger.Leg(PENDING_ACCOUNT, coins)],
            actor_id=actor.id,
            idempotency_key=key,
            request_hash=request_hash,
            meta={"coins": coins, "currency": currency, "method": method},
        )
        if posted.created:
            payout = Payout(
                user_id=actor.id,
                coins=coins,
                currency=currency,
                amount=coins * rate // 1000,
                rate=rate,
                method=method,
                destination=destination,
                request_transaction_id=posted.transaction.id,
            )
            session.add(payout)
            await session.flush()
            return payout, True
        existing = posted.transaction
    if existing.kind != "payout_request" or existing.request_hash != request_hash:
        raise Conflict("this Idempotency-Key was used for a different request", code="idempotency_key_reused")
    first = await session.scalar(select(Payout).where(Payout.request_transaction_id == existing.id))
    if first is None:  # pragma: no cover - the payout row is written with its posting
        raise NotFound("no such payout", code="payout_not_found")
    return first, False


@dataclass(frozen=True, slots=True)
class PayoutPage:
    items: list[Payout]
    next_cursor: str | None


async def list_payouts(
    *, session: AsyncSession, user_id: uuid.UUID | None, status: str | None, limit: int, cursor: str | None
) -> PayoutPage:
    """Payouts newest first, one user's or (admins) everyone's, optionally by status."""
    query = select(Payout).order_by(Payout.id.desc()).limit(limit + 1)
    if user_id is not None:
        query = query.where(Payout.user_id == user_id)
    if status is not None:
        if status not in {s.value for s in PayoutStatus}:
            raise InvalidInput("status is pending, posted or voided", code="invalid_status")
        query = query.where(Payout.status == status)
    if cursor:
        (last_id,) = decode_cursor(cursor, uuid.UUID)
        query = query.where(Payout.id < last_id)
    rows = list((await session.scalars(query)).all())
    items = rows[:limit]
    return PayoutPage(items, encode_cursor(items[-1].id) if len(rows) > limit and items else None)


async def _locked_pending(session: AsyncSession, payout_id: uuid.UUID) -> Payout:
    payout = await session.get(Payout, payout_id, with_for_update=True, populate_existing=True)
    if payout is None:
        raise NotFound("no such payout", code="payout_not_found")
    if payout.status != PayoutStatus.PENDING:
        raise Conflict(f"the payout is already {payout.status}", code="payout_not_pending")
    return payout


async def approve_payout(*, session: AsyncSession, admin: User, payout_id: uuid.UUID) -> Payout:
    """Mark a pending payout paid: the held coins move to the paid account; once, under the row lock."""
    payout = await _locked_pending(session, payout_id)
    posted = await ledger.post_transaction(
        session=session,
        kind="payout_paid",
        legs=[ledger.Leg(PENDING_ACCOUNT, -payout.coins), ledger.Leg(PAID_ACCOUNT, payout.coins)],
        actor_id=payout.user_id,
        idempotency_key=f"payout-settle:{payout.id}",
        meta={"payout_id": str(payout.id), "amount": payout.amount, "currency": payout.currency, "by": str(admin.id)},
    )
    payout.status = PayoutStatus.POSTED.value
    payout.settle_transaction_id = posted.transaction.id
    payout.decided_by = admin.id
    payout.decided_at = utcnow()
    await session.flush()
    return payout


async def reject_payout(*, session: AsyncSession, admin: User, payout_id: uuid.UUID, reason: str) -> Payout:
    """Void a pending payout: reverse its hold back to the creator's earnings; once, under the row lock."""
    payout = await _locked_pending(session, payout_id)
    posted = await ledger.reverse_transaction(
        session=session, transaction_id=payout.request_transaction_id, actor_id=None, reason=reason or "rejected"
    )
    payout.status = PayoutStatus.VOIDED.value
    payout.settle_transaction_id = posted.transaction.id
    payout.decided_by = admin.id
    payout.decided_at = utcnow()
    payout.reason = reason or None
    await session.flush()
    return payout


@dataclass(frozen=True, slots=True)
class EarningsSummary:
    total_earned: int
    available: int
    pending_payouts: int
    paid_out: int
    by_period: dict[str, int]


async def earnings_summary(*, session: AsyncSession, user: User) -> EarningsSummary:
    """What a creator earned from gifts (overall and per period), holds and payouts."""
    account = await session.scalar(
        select(LedgerAccount).where(LedgerAccount.key == ledger.creator_earnings(user.id).key)
    )
    if account is None:
        return EarningsSummary(0, 0, 0, 0, dict.fromkeys(PERIODS, 0))
    earned = (
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(LedgerEntry.account_id == account.id, LedgerTransaction.kind == "gift")
    )
    now = utcnow()
    by_period = {
        name: int(await session.scalar(earned.where(LedgerEntry.created_at >= now - span)) or 0)
        for name, span in PERIODS.items()
    }
    sums = dict(
        (
            await session.execute(
                select(Payout.status, func.sum(Payout.coins)).where(Payout.user_id == user.id).group_by(Payout.status)
            )
        ).all()
    )
    return EarningsSummary(
        total_earned=int(await session.scalar(earned) or 0),
        available=account.balance,
        pending_payouts=int(sums.get(PayoutStatus.PENDING.value) or 0),
        paid_out=int(sums.get(PayoutStatus.POSTED.value) or 0),
        by_period=by_period,
    )
