"""Privacy requests: a user downloads everything we hold about them, and deletes their account.

Deletion anonymises rather than removes the user row: the coin ledger references accounts by user
and its entries are never deleted (docs/ledger.md), so the books stay balanced and auditable while
nothing left identifies the person. What is erased, kept and why is in docs/moderation.md
("Privacy requests").
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts import auth
from halobuzz.accounts import profile as profile_service
from halobuzz.accounts.models import (
    AuthSession,
    Block,
    CreatorStatus,
    Follow,
    OneTimeToken,
    RecoveryCode,
    Role,
    User,
    UserStatus,
)
from halobuzz.chat.models import ChatBan, ChatMessage, ChatModerator, MessageStatus
from halobuzz.core import audit
from halobuzz.core.audit import AuditLog
from halobuzz.core.clock import utcnow
from halobuzz.core.db import after_commit
from halobuzz.core.errors import Conflict
from halobuzz.core.runtime import Runtime
from halobuzz.core.security import token_hash
from halobuzz.economy.models import GiftSent, LedgerAccount, LedgerEntry, LedgerTransaction
from halobuzz.economy.payouts_models import Payout, PayoutStatus
from halobuzz.kyc import service as kyc_service
from halobuzz.kyc.models import KycDocument, KycSubmission
from halobuzz.media.models import Recording
from halobuzz.moderation.models import (
    ChannelBlockedTerm,
    ModerationAction,
    ModerationAppeal,
    ModerationCase,
    ModerationReport,
    ReputationEvent,
)
from halobuzz.payments.models import PaymentIntent
from halobuzz.streams.models import Broadcast, Stream, StreamStatus

EXPORT_VERSION = 1
# Columns never exported (secrets, or hashes of them).
SECRET_COLUMNS = frozenset(
    {"password_hash", "totp_secret", "token_hash", "code_hash", "stream_key_hash", "storage_key"}
)
DELETED_NAME = "Deleted user"


def _row(obj: Any, *, skip: Sequence[str] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in obj.__table__.columns:
        name = column.key
        if name in SECRET_COLUMNS or name in skip:
            continue
        value = getattr(obj, name)
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[name] = value
    return out


async def _rows(session: AsyncSession, query: Select[Any], **kw: Any) -> list[dict[str, Any]]:
    return [_row(r, **kw) for r in await session.scalars(query)]


async def export_user_data(*, session: AsyncSession, runtime: Runtime, user: User) -> dict[str, Any]:
    """Everything stored about ``user``, as JSON-ready data (GDPR art. 15 and 20, CCPA "right to know")."""
    uid = user.id
    following = (
        await session.execute(
            select(User.id, User.username, Follow.created_at)
            .join(Follow, Follow.followee_id == User.id)
            .where(Follow.follower_id == uid)
            .order_by(Follow.created_at)
        )
    ).all()
    followers = (
        await session.execute(
            select(User.id, User.username, Follow.created_at)
            .join(Follow, Follow.follower_id == User.id)
            .where(Follow.followee_id == uid)
            .order_by(Follow.created_at)
        )
    ).all()
    accounts = list(await session.scalars(select(LedgerAccount).where(LedgerAccount.owner_id == uid)))
    entries = (
        await session.execute(
            select(LedgerEntry, LedgerTransaction.kind, LedgerAccount.key)
            .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerEntry.account_id.in_([a.id for a in accounts]))
            .order_by(LedgerEntry.created_at)
        )
    ).all()
    profile = _row(user)
    profile["avatar_url"] = runtime.storage.url(user.avatar_key) if user.avatar_key else None
    reports = (
        await session.execute(
            select(ModerationReport, ModerationCase.target_type, ModerationCase.target_id)
            .join(ModerationCase, ModerationCase.id == ModerationReport.case_id)
            .where(ModerationReport.reporter_id == uid)
            .order_by(ModerationReport.created_at)
        )
    ).all()
    submissions = list(await session.scalars(select(KycSubmission).where(KycSubmission.user_id == uid)))
    return {
        "format": "halobuzz-export",
        "version": EXPORT_VERSION,
        "generated_at": utcnow().isoformat(),
        "user_id": str(uid),
        "profile": profile,
        "sessions": await _rows(
            session, select(AuthSession).where(AuthSession.user_id == uid).order_by(AuthSession.created_at)
        ),
        "following": [
            {"user_id": str(r.id), "username": r.username, "since": r.created_at.isoformat()} for r in following
        ],
        "followers": [
            {"user_id": str(r.id), "username": r.username, "since": r.created_at.isoformat()} for r in followers
        ],
        "blocks": await _rows(session, select(Block).where(Block.blocker_id == uid)),
        "streams": await _rows(session, select(Stream).where(Stream.owner_id == uid).order_by(Stream.created_at)),
        "broadcasts": await _rows(
            session,
            select(Broadcast)
            .join(Stream, Stream.id == Broadcast.stream_id)
            .where(Stream.owner_id == uid)
            .order_by(Broadcast.started_at),
        ),
        "recordings": await _rows(session, select(Recording).where(Recording.owner_id == uid)),
        "chat_messages": await _rows(
            session, select(ChatMessage).where(ChatMessage.user_id == uid).order_by(ChatMessage.created_at)
        ),
        "gifts_sent": await _rows(
            session, select(GiftSent).where(GiftSent.sender_id == uid).order_by(GiftSent.created_at)
        ),
        "gifts_received": await _rows(
            session, select(GiftSent).where(GiftSent.receiver_id == uid).order_by(GiftSent.created_at)
        ),
        "ledger": {
            "accounts": [_row(a) for a in accounts],
            "entries": [{**_row(e), "kind": kind, "account": key} for e, kind, key in entries],
        },
        "payments": await _rows(
            session, select(PaymentIntent).where(PaymentIntent.user_id == uid).order_by(PaymentIntent.created_at)
        ),
        "payouts": await _rows(session, select(Payout).where(Payout.user_id == uid).order_by(Payout.created_at)),
        "reports_made": [{**_row(r), "target_type": t, "target_id": tid} for r, t, tid in reports],
        "moderation_actions": await _rows(
            session, select(ModerationAction).where(ModerationAction.subject_user_id == uid)
        ),
        "appeals": await _rows(session, select(ModerationAppeal).where(ModerationAppeal.user_id == uid)),
        "reputation_events": await _rows(session, select(ReputationEvent).where(ReputationEvent.user_id == uid)),
        "kyc": {
            "submissions": [_row(s, skip=("open_key",)) for s in submissions],
            "documents": await _rows(session, select(KycDocument).where(KycDocument.user_id == uid)),
        },
        "blocked_terms": await _rows(session, select(ChannelBlockedTerm).where(ChannelBlockedTerm.owner_id == uid)),
        "activity": await _rows(
            session, select(AuditLog).where(AuditLog.actor_id == uid).order_by(AuditLog.created_at).limit(10_000)
        ),
    }


async def record_export(*, runtime: Runtime, user: User, ip: str | None, user_agent: str | None) -> None:
    async with runtime.db.session() as session:
        await audit.record(
            session,
            action="privacy.export",
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
            ip=ip,
            user_agent=user_agent,
        )


def _delete_after_commit(session: AsyncSession, runtime: Runtime, key: str) -> None:
    storage = runtime.storage
    after_commit(session, lambda: storage.delete(key))


async def delete_account(
    *, session: AsyncSession, runtime: Runtime, user: User, ip: str | None, user_agent: str | None
) -> dict[str, int]:
    """Anonymise ``user`` and erase their personal data (GDPR art. 17, CCPA "right to delete").

    Refused while a payout is pending or a stream is live (finish those first). Ledger entries,
    payments and payouts stay (accounting law), tied to the anonymised account.
    """
    uid = user.id
    locked = await session.scalar(select(User).where(User.id == uid).with_for_update())
    if locked is None or locked.status == UserStatus.DELETED:
        raise Conflict("this account is already deleted", code="already_deleted")
    pending = await session.scalar(
        select(Payout.id).where(Payout.user_id == uid, Payout.status == PayoutStatus.PENDING.value).limit(1)
    )
    if pending is not None:
        raise Conflict("a payout of yours is still pending; wait until it is paid or rejected", code="payout_pending")
    live = await session.scalar(
        select(Stream.id).where(
            Stream.owner_id == uid, Stream.status == StreamStatus.LIVE.value, Stream.deleted_at.is_(None)
        )
    )
    if live is not None:
        raise Conflict("end your live stream first", code="stream_live")
    counts: dict[str, int] = {}
    now = utcnow()

    # Sign-ins end now, here and on every instance (sockets are dropped).
    counts["sessions_revoked"] = await auth.revoke_sessions(
        session=session, sessions=runtime.sessions, user_id=uid, reason="account_deleted"
    )
    for model, column in ((OneTimeToken, OneTimeToken.user_id), (RecoveryCode, RecoveryCode.user_id)):
        await session.execute(delete(model).where(column == uid))

    # Follows both ways, with the other users' counters kept right (rows locked in id order).
    followees = list(await session.scalars(select(Follow.followee_id).where(Follow.follower_id == uid)))
    followers = list(await session.scalars(select(Follow.follower_id).where(Follow.followee_id == uid)))
    others = sorted(set(followees) | set(followers))
    if others:
        await session.execute(select(User.id).where(User.id.in_(others)).order_by(User.id).with_for_update())
    if followees:
        await session.execute(
            update(User)
            .where(User.id.in_(followees))
            .values(follower_count=User.follower_count - 1)
            .execution_options(synchronize_session=False)
        )
    if followers:
        await session.execute(
            update(User)
            .where(User.id.in_(followers))
            .values(following_count=User.following_count - 1)
            .execution_options(synchronize_session=False)
        )
    await session.execute(delete(Follow).where(or_(Follow.follower_id == uid, Follow.followee_id == uid)))
    counts["follows_removed"] = len(followees) + len(followers)
    await session.execute(delete(Block).where(or_(Block.blocker_id == uid, Block.blocked_id == uid)))
    await session.execute(delete(ChatModerator).where(ChatModerator.user_id == uid))
    await session.execute(delete(ChatBan).where(ChatBan.user_id == uid))
    await session.execute(delete(ChannelBlockedTerm).where(ChannelBlockedTerm.owner_id == uid))

    # What they wrote: chat messages emptied and hidden; appeal texts erased.
    result = await session.execute(
        update(ChatMessage)
        .where(ChatMessage.user_id == uid)
        .values(text="", status=MessageStatus.DELETED.value, deleted_at=now)
        .execution_options(synchronize_session=False)
    )
    counts["messages_erased"] = int(getattr(result, "rowcount", 0) or 0)
    await session.execute(
        update(ModerationAppeal)
        .where(ModerationAppeal.user_id == uid)
        .values(text="")
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(ModerationReport)
        .where(ModerationReport.reporter_id == uid)
        .values(details=None)
        .execution_options(synchronize_session=False)
    )

    # Their channels: deleted, keys made unusable, covers removed; recordings withdrawn.
    for stream in list(
        await session.scalars(select(Stream).where(Stream.owner_id == uid, Stream.deleted_at.is_(None)))
    ):
        if stream.thumbnail_key:
            _delete_after_commit(session, runtime, stream.thumbnail_key)
        stream.title, stream.description, stream.tags, stream.auto_tags = "Deleted stream", "", [], []
        stream.thumbnail_key, stream.deleted_at = None, now
        stream.stream_key_hash = token_hash(secrets.token_urlsafe(32))
    await session.execute(
        update(Recording)
        .where(Recording.owner_id == uid, Recording.deleted_at.is_(None))
        .values(deleted_at=now)
        .execution_options(synchronize_session=False)
    )
    runtime.cache.invalidate("streams")

    # Identity documents: files deleted after commit, decisions kept as records.
    counts["kyc_documents_erased"] = await kyc_service.erase_documents(session=session, runtime=runtime, user_id=uid)

    # Payout destinations (phone numbers, account numbers) are masked; the amounts stay.
    for payout in list(await session.scalars(select(Payout).where(Payout.user_id == uid))):
        payout.destination = "****" + payout.destination[-4:] if len(payout.destination) > 4 else "****"

    # The account itself: anonymised, never signed in again.
    if locked.avatar_key:
        await profile_service.remove_avatar(session=session, storage=runtime.storage, actor=locked)
    tag = uid.hex[:16]
    locked.username = f"deleted-{tag}"
    locked.username_key = f"deleted-{tag}"
    locked.email = f"deleted-{uid.hex}@deleted.invalid"
    locked.phone = None
    locked.password_hash = "!deleted"  # noqa: S105 - no password hashes to this
    locked.display_name = DELETED_NAME
    locked.bio = ""
    locked.country = None
    locked.timezone = "UTC"
    locked.totp_secret, locked.totp_enabled_at = None, None
    locked.email_verified_at = None
    locked.roles = [Role.USER.value]
    locked.creator_status = CreatorStatus.NONE.value
    locked.status = UserStatus.DELETED.value
    locked.status_reason = "deleted at the user's request"
    locked.follower_count, locked.following_count = 0, 0
    await session.flush()
    await audit.record(
        session,
        action="privacy.delete",
        actor_id=uid,
        target_type="user",
        target_id=uid,
        ip=ip,
        user_agent=user_agent,
        details=counts,
    )
    return counts
