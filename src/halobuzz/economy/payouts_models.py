"""Payout tables: creators' withdrawal requests (the KYC approval they need is halobuzz.kyc)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.core.clock import utcnow
from halobuzz.core.db import Base, Timestamped, UUIDPrimaryKey


class PayoutStatus(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"


class Payout(UUIDPrimaryKey, Timestamped, Base):
    """A creator's request to withdraw earned coins as fiat; the coins are held from the request on."""

    __tablename__ = "payout"
    __table_args__ = (
        CheckConstraint("coins > 0", name="coins_positive"),
        CheckConstraint("amount >= 0", name="amount_nonnegative"),
        CheckConstraint("status IN ('pending', 'posted', 'voided')", name="status_valid"),
        Index("ix_payout_user_id_id", "user_id", "id"),
        Index("ix_payout_status_id", "status", "id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    coins: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # Fiat in minor units at the rate in force when requested.
    amount: Mapped[int] = mapped_column(BigInteger)
    rate: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str] = mapped_column(String(32))
    destination: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=PayoutStatus.PENDING.value)
    request_transaction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_transaction.id"), unique=True)
    settle_transaction_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_transaction.id"), unique=True)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
