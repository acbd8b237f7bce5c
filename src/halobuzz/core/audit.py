"""The audit log: who did what to whom, from where, and how it ended (auth and admin actions)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.core.db import Base, Timestamped, UUIDPrimaryKey


class AuditLog(UUIDPrimaryKey, Timestamped, Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_created_at", "created_at"),
        Index("ix_audit_log_actor_id_created_at", "actor_id", "created_at"),
        Index("ix_audit_log_action_created_at", "action", "created_at"),
    )

    actor_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[str] = mapped_column(String(32), default="ok")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


async def record(
    session: AsyncSession,
    *,
    action: str,
    actor_id: uuid.UUID | None,
    target_type: str | None = None,
    target_id: object | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    result: str = "ok",
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditLog:
    """Add an audit row to the session's transaction."""
    row = AuditLog(
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        ip=ip,
        user_agent=(user_agent or "")[:255] or None,
        result=result,
        details=details or {},
    )
    if at is not None:
        row.created_at = at
    session.add(row)
    return row
