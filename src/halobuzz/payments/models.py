"""Payment tables: intents (one coin purchase each) and provider events (each applied once)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.core.clock import utcnow
from halobuzz.core.db import Base, Timestamped, UUIDPrimaryKey


class IntentStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    REFUNDED = "refunded"


class PaymentIntent(UUIDPrimaryKey, Timestamped, Base):
    """A user's purchase of one coin package through one provider, in one currency."""

    __tablename__ = "payment_intent"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("coins > 0", name="coins_positive"),
        CheckConstraint("status IN ('pending', 'succeeded', 'failed', 'canceled', 'refunded')", name="status_valid"),
        Index("ix_payment_intent_user_id_created_at", "user_id", "created_at"),
        Index("ix_payment_intent_provider_provider_reference", "provider", "provider_reference"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    package_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("coin_package.id"))
    provider: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    coins: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=IntentStatus.PENDING.value)
    provider_reference: Mapped[str | None] = mapped_column(String(255))
    # The provider's id of the captured payment (Stripe PaymentIntent), for refunds.
    provider_payment_id: Mapped[str | None] = mapped_column(String(255), index=True)
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_transaction.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PaymentEvent(UUIDPrimaryKey, Timestamped, Base):
    """A provider event that changed an intent; the unique pair makes each apply once."""

    __tablename__ = "payment_event"
    __table_args__ = (UniqueConstraint("provider", "provider_event_id", name="provider_event"),)

    provider: Mapped[str] = mapped_column(String(16))
    provider_event_id: Mapped[str] = mapped_column(String(255))
    intent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_intent.id"))
    type: Mapped[str] = mapped_column(String(64))
