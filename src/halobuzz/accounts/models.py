"""Account tables: users, sign-in sessions (devices) and their refresh tokens, one-time tokens,
2FA recovery codes, follows and blocks."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.core.clock import utcnow
from halobuzz.core.db import Base, Timestamped, UUIDPrimaryKey


class Role(StrEnum):
    USER = "user"
    CREATOR = "creator"
    MODERATOR = "moderator"
    ADMIN = "admin"


class UserStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    BANNED = "banned"
    DELETED = "deleted"


class CreatorStatus(StrEnum):
    NONE = "none"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class User(UUIDPrimaryKey, Timestamped, Base):
    __tablename__ = "user"
    __table_args__ = (
        CheckConstraint("follower_count >= 0", name="follower_count_nonnegative"),
        CheckConstraint("following_count >= 0", name="following_count_nonnegative"),
    )

    username: Mapped[str] = mapped_column(String(30))
    # Lower-cased username: uniqueness and look-ups ignore case.
    username_key: Mapped[str] = mapped_column(String(30), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(60))
    bio: Mapped[str] = mapped_column(String(500), default="")
    avatar_key: Mapped[str | None] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(2))
    language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    roles: Mapped[list[str]] = mapped_column(JSON, default=lambda: [Role.USER.value])
    creator_status: Mapped[str] = mapped_column(String(16), default=CreatorStatus.NONE.value)
    status: Mapped[str] = mapped_column(String(16), default=UserStatus.ACTIVE.value)
    suspended_until: Mapped[datetime | None]
    status_reason: Mapped[str | None] = mapped_column(String(500))
    email_verified_at: Mapped[datetime | None]
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None]
    follower_count: Mapped[int] = mapped_column(default=0)
    following_count: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    password_changed_at: Mapped[datetime | None]
    # Moderation: a platform-wide chat timeout, and the sum of reputation events (score = 100 + sum,
    # clamped to 0..100), kept here so chat can read it with the sender at no extra query.
    chat_muted_until: Mapped[datetime | None]
    reputation_points: Mapped[int] = mapped_column(default=0, server_default="0")

    def has_role(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


class AuthSession(UUIDPrimaryKey, Timestamped, Base):
    """One sign-in on one device: the grant every refresh token of a family belongs to."""

    __tablename__ = "auth_session"
    __table_args__ = (Index("ix_auth_session_user_id_revoked_at", "user_id", "revoked_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    device: Mapped[str] = mapped_column(String(255), default="")
    ip: Mapped[str | None] = mapped_column(String(64))
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(String(64))


class RefreshToken(UUIDPrimaryKey, Timestamped, Base):
    """A refresh token (stored hashed). Using one marks it used; using a used one revokes the session."""

    __tablename__ = "refresh_token"

    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("auth_session.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None]


class TokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose name, not a secret


class OneTimeToken(UUIDPrimaryKey, Timestamped, Base):
    """Single-use, expiring tokens mailed to users (email verification, password reset)."""

    __tablename__ = "one_time_token"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class RecoveryCode(UUIDPrimaryKey, Timestamped, Base):
    """A single-use 2FA recovery code (stored hashed)."""

    __tablename__ = "recovery_code"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None]


class Follow(Base):
    __tablename__ = "follow"
    __table_args__ = (
        CheckConstraint("follower_id <> followee_id", name="not_self"),
        Index("ix_follow_followee_id_created_at", "followee_id", "created_at"),
        Index("ix_follow_follower_id_created_at", "follower_id", "created_at"),
    )

    follower_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    followee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Block(Base):
    __tablename__ = "block"
    __table_args__ = (
        CheckConstraint("blocker_id <> blocked_id", name="not_self"),
        UniqueConstraint("blocked_id", "blocker_id"),
    )

    blocker_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    blocked_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
