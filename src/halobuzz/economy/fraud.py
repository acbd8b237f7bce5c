"""Velocity caps and suspicious-pattern flags (docs/ledger.md).

Caps are checked inside the posting's transaction: gift caps after the gift is posted, while the
sender's coin account is still locked, so concurrent gifts cannot slip past them together. A
refused request rolls back, so its flag is written in a transaction of its own once it ends.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Table, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.accounts.models import User
from halobuzz.config import FraudSettings
from halobuzz.core.clock import utcnow
from halobuzz.core.db import Base, Database, Timestamped, UUIDPrimaryKey, after_transaction, in_list
from halobuzz.core.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from halobuzz.core.pagination import decode_cursor, encode_cursor


class FlagStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class FlaggedTransaction(UUIDPrimaryKey, Timestamped, Base):
    """Something in the economy an admin should look at: a refused burst, a refund of spent coins…"""

    __tablename__ = "flagged_transaction"
    __table_args__ = (
        Index("ix_flagged_transaction_status_id", "status", "id"),
        Index("ix_flagged_transaction_user_id", "user_id"),
    )

    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(40))
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_transaction.id"))
    payment_intent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("payment_intent.id"))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=FlagStatus.OPEN.value)
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(String(500))


class GiftVelocity(Base):
    """Gifts (count, coins) each sender sent per 10-second slot (UTC): the gift velocity caps read
    the last slots of the senders instead of their ledger debits. Added to in the gift's own
    transaction, under the sender's coin account lock; slots older than an hour are purged (03:00)."""

    __tablename__ = "gift_velocity"

    sender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    slot: Mapped[datetime] = mapped_column(primary_key=True)
    gifts: Mapped[int]
    coins: Mapped[int] = mapped_column(BigInteger)


VELOCITY_SLOT_SECONDS = 10
# The current slot and the six before it: the caps count at least the last minute (60 to 70 s).
VELOCITY_SLOTS = 7


class VelocityExceeded(TooManyRequests):
    code = "velocity_limit"


def flag(
    session: AsyncSession,
    *,
    kind: str,
    user_id: uuid.UUID | None,
    details: dict[str, Any],
    transaction_id: uuid.UUID | None = None,
    payment_intent_id: uuid.UUID | None = None,
) -> FlaggedTransaction:
    """Add a flag to the session's transaction."""
    row = FlaggedTransaction(
        user_id=user_id,
        kind=kind,
        details=details,
        transaction_id=transaction_id,
        payment_intent_id=payment_intent_id,
    )
    session.add(row)
    return row


def flag_after(session: AsyncSession, db: Database, *, kind: str, user_id: uuid.UUID, details: dict[str, Any]) -> None:
    """Write a flag in its own transaction once this one ends (it survives the refusal's rollback)."""

    async def write() -> None:
        async with db.session() as own:
            flag(own, kind=kind, user_id=user_id, details=details)

    after_transaction(session, write)


def velocity_slot(at: datetime) -> datetime:
    """The start of the 10-second slot ``at`` falls in."""
    return at.replace(second=at.second - at.second % VELOCITY_SLOT_SECONDS, microsecond=0)


async def check_gift_velocity(
    *, session: AsyncSession, db: Database, settings: FraudSettings, sender_id: uuid.UUID
) -> None:
    """Refuse (429 ``gift_velocity``) a sender over ``gifts_per_minute`` or ``gift_coins_per_minute``.

    Runs after the gift is posted and counted (``count_gifts``), under the sender's account lock;
    a refusal rolls the count back with the gift."""
    spent = await gift_spending_last_minute(session=session, sender_ids=[sender_id], at=utcnow())
    count, coins = spent.get(sender_id, (0, 0))
    refusal = gift_velocity_refusal(settings, count=count, coins=coins)
    if refusal is not None:
        flag_after(session, db, kind="gift_velocity", user_id=sender_id, details=refusal.details)
        raise refusal


_SPENDING = (
    select(GiftVelocity.sender_id, func.sum(GiftVelocity.gifts), func.sum(GiftVelocity.coins))
    .where(in_list(GiftVelocity.sender_id, "ids"), GiftVelocity.slot >= bindparam("since"))
    .group_by(GiftVelocity.sender_id)
)


async def gift_spending_last_minute(
    *, session: AsyncSession, sender_ids: Sequence[uuid.UUID], at: datetime
) -> dict[uuid.UUID, tuple[int, int]]:
    """Gifts (count, coins) of these senders in the velocity window ending at ``at``."""
    if not sender_ids:
        return {}
    since = velocity_slot(at) - timedelta(seconds=VELOCITY_SLOT_SECONDS * (VELOCITY_SLOTS - 1))
    rows = (await session.execute(_SPENDING, {"ids": list(sender_ids), "since": since})).all()
    return {sender_id: (int(count), int(coins)) for sender_id, count, coins in rows}


@functools.cache
def _velocity_upsert(dialect: str) -> Any:
    """One statement for many rows (built once per dialect, compiled once)."""
    table = cast(Table, GiftVelocity.__table__)
    ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    return ins.on_conflict_do_update(
        index_elements=["sender_id", "slot"],
        set_={"gifts": table.c.gifts + ins.excluded.gifts, "coins": table.c.coins + ins.excluded.coins},
    )


async def count_gifts(*, session: AsyncSession, sent: dict[uuid.UUID, tuple[int, int]], at: datetime) -> None:
    """Add gifts (count, coins) per sender to their slot of ``at`` (one upsert)."""
    if not sent:
        return
    slot = velocity_slot(at)
    await session.execute(
        _velocity_upsert(session.get_bind().dialect.name),
        [
            {"sender_id": sender_id, "slot": slot, "gifts": count, "coins": coins}
            for sender_id, (count, coins) in sorted(sent.items())
        ],
    )


def gift_velocity_refusal(settings: FraudSettings, *, count: int, coins: int) -> VelocityExceeded | None:
    """The 429 for a sender whose last minute, this gift included, is ``count`` debits of ``coins``."""
    if count <= settings.gifts_per_minute and coins <= settings.gift_coins_per_minute:
        return None
    details = {
        "gifts_last_minute": count,
        "coins_last_minute": coins,
        "gifts_per_minute": settings.gifts_per_minute,
        "gift_coins_per_minute": settings.gift_coins_per_minute,
    }
    return VelocityExceeded("too many gifts in the last minute; wait a moment", code="gift_velocity", details=details)


async def check_purchase_velocity(
    *, session: AsyncSession, db: Database, settings: FraudSettings, user_id: uuid.UUID, amount: int
) -> None:
    """Refuse (429 ``purchase_velocity``) a new payment intent over the hourly or daily caps
    (count and amount, this one included); flag users starting many intents."""
    from halobuzz.payments.models import PaymentIntent

    now = utcnow()
    windows = (
        ("hour", timedelta(hours=1), settings.purchases_per_hour, settings.purchase_amount_per_hour),
        ("day", timedelta(days=1), settings.purchases_per_day, settings.purchase_amount_per_day),
    )
    for name, span, max_count, max_amount in windows:
        count, total = (
            await session.execute(
                select(func.count(), func.coalesce(func.sum(PaymentIntent.amount), 0)).where(
                    PaymentIntent.user_id == user_id, PaymentIntent.created_at >= now - span
                )
            )
        ).one()
        count, total = int(count) + 1, int(total) + amount
        if name == "hour" and count == settings.flag_intents_per_hour:
            flag(session, kind="many_intents", user_id=user_id, details={"intents_last_hour": count})
        if count > max_count or total > max_amount:
            details = {
                "window": name,
                "intents": count,
                "amount": total,
                "max_count": max_count,
                "max_amount": max_amount,
            }
            flag_after(session, db, kind="purchase_velocity", user_id=user_id, details=details)
            raise VelocityExceeded(
                f"too many purchases in the last {name}; try again later", code="purchase_velocity", details=details
            )


@dataclass(frozen=True, slots=True)
class FlagPage:
    items: list[FlaggedTransaction]
    next_cursor: str | None


async def list_flags(*, session: AsyncSession, status: str | None, limit: int, cursor: str | None) -> FlagPage:
    """Flags newest first, optionally only open or resolved ones."""
    query = select(FlaggedTransaction).order_by(FlaggedTransaction.id.desc()).limit(limit + 1)
    if status is not None:
        if status not in {s.value for s in FlagStatus}:
            raise InvalidInput("status is open or resolved", code="invalid_status")
        query = query.where(FlaggedTransaction.status == status)
    if cursor:
        (last_id,) = decode_cursor(cursor, uuid.UUID)
        query = query.where(FlaggedTransaction.id < last_id)
    rows = list((await session.scalars(query)).all())
    items = rows[:limit]
    return FlagPage(items, encode_cursor(items[-1].id) if len(rows) > limit and items else None)


async def resolve_flag(
    *, session: AsyncSession, admin: User, flag_id: uuid.UUID, resolution: str
) -> FlaggedTransaction:
    """Close an open flag with a note (admins); once."""
    row = await session.get(FlaggedTransaction, flag_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise NotFound("no such flag", code="flag_not_found")
    if row.status != FlagStatus.OPEN:
        raise Conflict("the flag is already resolved", code="flag_resolved")
    row.status = FlagStatus.RESOLVED.value
    row.resolved_by = admin.id
    row.resolved_at = utcnow()
    row.resolution = resolution or None
    await session.flush()
    return row
