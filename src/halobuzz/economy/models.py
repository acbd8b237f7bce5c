"""Economy tables: the ledger (accounts, transactions, entries), coin packages, gifts and sent gifts,
OG tiers and subscriptions, festivals and stream thrones."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.core.clock import utcnow
from halobuzz.core.db import Base, Timestamped, UUIDPrimaryKey

COIN = "COIN"


class LedgerAccount(UUIDPrimaryKey, Timestamped, Base):
    """One balance in one unit. ``key`` names it (``user_coins:<user id>``, ``platform_revenue:COIN``).

    Only ``economy.ledger.post_transaction`` changes ``balance``; the CHECK constraint backs the
    service's own check that accounts which may not go negative never do.
    """

    __tablename__ = "ledger_account"
    __table_args__ = (
        CheckConstraint("allow_negative OR balance >= 0", name="balance_nonnegative"),
        Index("ix_ledger_account_owner_id", "owner_id"),
    )

    key: Mapped[str] = mapped_column(String(120), unique=True)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(48))
    unit: Mapped[str] = mapped_column(String(8))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    allow_negative: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class LedgerTransaction(UUIDPrimaryKey, Timestamped, Base):
    """One balanced posting; never updated or deleted (corrections are reversals)."""

    __tablename__ = "ledger_transaction"
    __table_args__ = (UniqueConstraint("actor_id", "idempotency_key", name="actor_idempotency_key"),)

    kind: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # sha256 of the request that produced it, so a reused key with another body is refused.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_transaction.id"), unique=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class LedgerEntry(UUIDPrimaryKey, Timestamped, Base):
    """One signed amount on one account; a transaction's entries sum to zero per unit."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        Index("ix_ledger_entry_account_id_id", "account_id", "id"),
        Index("ix_ledger_entry_transaction_id", "transaction_id"),
    )

    transaction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_transaction.id", ondelete="RESTRICT"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_account.id", ondelete="RESTRICT"))
    amount: Mapped[int] = mapped_column(BigInteger)
    unit: Mapped[str] = mapped_column(String(8))
    balance_after: Mapped[int] = mapped_column(BigInteger)


class CoinPackage(UUIDPrimaryKey, Timestamped, Base):
    """A coin bundle for sale; ``prices`` maps a currency code to its price in minor units."""

    __tablename__ = "coin_package"
    __table_args__ = (
        CheckConstraint("coins > 0", name="coins_positive"),
        CheckConstraint("bonus_coins >= 0", name="bonus_coins_nonnegative"),
    )

    name: Mapped[str] = mapped_column(String(80), unique=True)
    coins: Mapped[int] = mapped_column(BigInteger)
    bonus_coins: Mapped[int] = mapped_column(BigInteger, default=0)
    prices: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Gift(UUIDPrimaryKey, Timestamped, Base):
    """A catalog gift: what it costs in coins and how it looks; offered between the window's ends."""

    __tablename__ = "gift"
    __table_args__ = (CheckConstraint("coin_price > 0", name="coin_price_positive"),)

    name: Mapped[str] = mapped_column(String(60), unique=True)
    coin_price: Mapped[int] = mapped_column(BigInteger)
    animation_url: Mapped[str] = mapped_column(String(500), default="")
    rarity: Mapped[str] = mapped_column(String(16), default="common")
    available_from: Mapped[datetime | None]
    available_until: Mapped[datetime | None]
    position: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # A festival gift is offered only while its festival is active (economy.festivals).
    festival_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("festival.id", ondelete="SET NULL"))


class GiftSent(UUIDPrimaryKey, Timestamped, Base):
    """A gift sent during a broadcast (one per ledger transaction), for leaderboards."""

    __tablename__ = "gift_sent"
    __table_args__ = (
        Index("ix_gift_sent_broadcast_id_sender_id", "broadcast_id", "sender_id"),
        Index("ix_gift_sent_stream_id_created_at", "stream_id", "created_at"),
    )

    transaction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_transaction.id"), unique=True)
    stream_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stream.id", ondelete="CASCADE"))
    broadcast_id: Mapped[uuid.UUID | None]
    sender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    receiver_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    gift_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("gift.id"))
    quantity: Mapped[int]
    coins: Mapped[int] = mapped_column(BigInteger)


class OgTier(UUIDPrimaryKey, Timestamped, Base):
    """An OG membership level (1..5): its monthly coin price and perks."""

    __tablename__ = "og_tier"
    __table_args__ = (
        CheckConstraint("level >= 1 AND level <= 5", name="level_range"),
        CheckConstraint("monthly_price > 0", name="monthly_price_positive"),
        CheckConstraint("daily_bonus >= 0", name="daily_bonus_nonnegative"),
    )

    level: Mapped[int] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    monthly_price: Mapped[int] = mapped_column(BigInteger)
    daily_bonus: Mapped[int] = mapped_column(BigInteger, default=0)
    badge: Mapped[str] = mapped_column(String(500), default="")
    chat_privileges: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OgSubscription(UUIDPrimaryKey, Timestamped, Base):
    """A user's OG membership (one row per user, so at most one active subscription).

    Active while ``expires_at`` is in the future; renewal extends it, a new term after a lapse
    reuses the row.
    """

    __tablename__ = "og_subscription"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), unique=True)
    tier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("og_tier.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16))  # active | expired
    started_at: Mapped[datetime]
    current_period_start: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    auto_renew: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Festival(UUIDPrimaryKey, Timestamped, Base):
    """A festival period in some regions (country codes; none means everywhere) with a bonus multiplier.

    ``is_active`` is kept by the 01:00 job (and on every admin change) from ``enabled`` and the
    dates; readers also check the dates, so a festival never counts outside its window.
    """

    __tablename__ = "festival"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="window_ordered"),
        CheckConstraint("multiplier_percent >= 100", name="multiplier_at_least_one"),
    )

    name: Mapped[str] = mapped_column(String(80), unique=True)
    regions: Mapped[list[str]] = mapped_column(JSON, default=list)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    # The daily bonus multiplier in percent (150 = x1.5), so coin amounts stay integer arithmetic.
    multiplier_percent: Mapped[int] = mapped_column(default=100)
    enabled: Mapped[bool] = mapped_column(default=True)
    is_active: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class GiftTally(Base):
    """Coins each sender gave a stream per hour (UTC): a throne's window sums read these (and the
    gifts of the window's first, partial hour) instead of every gift (``economy.thrones``)."""

    __tablename__ = "gift_tally"
    __table_args__ = (Index("ix_gift_tally_stream_id_hour", "stream_id", "hour"),)

    stream_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stream.id", ondelete="CASCADE"), primary_key=True)
    sender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    coins: Mapped[int] = mapped_column(BigInteger)
    last_at: Mapped[datetime]


class StreamThrone(Base):
    """Who holds a stream's throne (its top gifter within the window); the row is also the lock
    that orders concurrent gifts' throne updates."""

    __tablename__ = "stream_throne"

    stream_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stream.id", ondelete="CASCADE"), primary_key=True)
    holder_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    coins: Mapped[int] = mapped_column(BigInteger, default=0)
    since: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
