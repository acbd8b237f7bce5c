"""KYC tables: a user's submissions (reviewed by an admin) and their encrypted documents."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.core.clock import utcnow
from halobuzz.core.db import Base, UTCDateTime
from halobuzz.core.ids import uuid7


class KycStatus(StrEnum):
    DRAFT = "draft"  # documents being added
    PENDING = "pending"  # submitted, waiting for an admin
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"  # approved, later withdrawn by an admin


class KycSubmission(Base):
    """One request to verify a user's identity; payouts need an approved one."""

    __tablename__ = "kyc_submission"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'pending', 'approved', 'rejected', 'revoked')", name="status_valid"),
        Index("ix_kyc_submission_user_id_created_at", "user_id", "created_at"),
        Index("ix_kyc_submission_status_submitted_at", "status", "submitted_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=KycStatus.DRAFT.value)
    # The user id while draft or pending, NULL once decided: one open submission per user (NULLs are distinct).
    open_key: Mapped[str | None] = mapped_column(String(36), unique=True)
    reviewed_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class KycDocument(Base):
    """An identity document, stored encrypted (AES-256-GCM) in private storage; never served publicly."""

    __tablename__ = "kyc_document"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    submission_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kyc_submission.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    document_type: Mapped[str] = mapped_column(String(32))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)  # plaintext bytes
    sha256: Mapped[str] = mapped_column(String(64))  # of the plaintext: checked after decryption
    storage_key: Mapped[str] = mapped_column(String(255))
    # The encryption key the stored blob is sealed with (rotation moves it to the active key).
    key_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
