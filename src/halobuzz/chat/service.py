"""Chat rules: who may send what where, history, chat modes and channel moderation.

The gateway calls ``check_send`` (database rules: bans, blocks, modes) and ``check_limits``
(shared counters: rate limit, slow mode, duplicates) before a message is placed in the room; the
REST routes call the moderation functions. Socket emits that follow a moderation change go through
a ``ChatEvents`` implementation (the gateway) after commit, never before.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypedDict

import orjson
from sqlalchemy import and_, bindparam, delete, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.auth import is_signed_in_allowed
from halobuzz.accounts.models import Block, Follow, User
from halobuzz.chat.models import ChatBan, ChatMessage, ChatMode, ChatModerator, MessageStatus
from halobuzz.config import ChatSettings
from halobuzz.core import audit
from halobuzz.core.clock import utcnow
from halobuzz.core.db import Database, after_commit
from halobuzz.core.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests
from halobuzz.core.ids import parse_uuid
from halobuzz.core.kv import Store
from halobuzz.core.pagination import decode_cursor, encode_cursor
from halobuzz.streams.models import Stream

STAFF_ROLES = ("admin", "moderator")
_ALLOWED_FORMAT_CHARS = frozenset("\u200c\u200d")  # ZWNJ, ZWJ: parts of emoji sequences and scripts
_SHORTCODE = re.compile(r"^:[a-z0-9_+\-]{1,32}:$")


# ----------------------------------------------------------------------------- message text


def normalize_text(text: object, *, max_length: int) -> str:
    """The message as stored: line breaks and tabs become spaces, ends trimmed; 1..max_length chars."""
    if not isinstance(text, str):
        raise InvalidInput("text must be a string", code="invalid_text")
    out = []
    for ch in text:
        if ch in "\r\n\t":
            out.append(" ")
            continue
        cat = unicodedata.category(ch)
        if cat == "Cc" or cat == "Cs" or (cat == "Cf" and ch not in _ALLOWED_FORMAT_CHARS and not _is_tag_char(ch)):
            raise InvalidInput("text must not contain control characters", code="invalid_text")
        out.append(ch)
    clean = "".join(out).strip()
    if not clean:
        raise InvalidInput("text must not be empty", code="empty_message")
    if len(clean) > max_length:
        raise InvalidInput(f"text is at most {max_length} characters", code="message_too_long")
    return clean


def _is_tag_char(ch: str) -> bool:
    # Tag characters spell subdivision flags (e.g. Scotland) after a black flag.
    return 0xE0020 <= ord(ch) <= 0xE007F


def _is_emoji_char(ch: str) -> bool:
    cp = ord(ch)
    if cp in (0x200D, 0xFE0E, 0xFE0F, 0x20E3) or _is_tag_char(ch):
        return True
    if 0x1F1E6 <= cp <= 0x1F1FF or 0x1F3FB <= cp <= 0x1F3FF:  # regional indicators, skin tones
        return True
    return unicodedata.category(ch) == "So"


def is_emote_only(text: str) -> bool:
    """Whether every word is an emoji sequence or an emote code like ``:heart:``."""
    words = text.split()
    return bool(words) and all(_SHORTCODE.match(w) or all(_is_emoji_char(c) for c in w) for w in words)


def _duplicate_key(text: str) -> str:
    folded = " ".join(text.casefold().split())
    return hashlib.sha256(folded.encode()).hexdigest()[:32]


# ----------------------------------------------------------------------------- shapes


@dataclass(frozen=True, slots=True)
class ChatModes:
    slow_mode_seconds: int = 0
    followers_only_minutes: int | None = None
    subscribers_only: bool = False
    emote_only: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "slow_mode_seconds": self.slow_mode_seconds,
            "followers_only_minutes": self.followers_only_minutes,
            "subscribers_only": self.subscribers_only,
            "emote_only": self.emote_only,
        }


class ChatModeChanges(TypedDict, total=False):
    slow_mode_seconds: int
    followers_only_minutes: int | None
    subscribers_only: bool
    emote_only: bool


@dataclass(frozen=True, slots=True)
class MessageContext:
    """What the moderation hook sees of a message about to be broadcast."""

    stream_id: uuid.UUID
    owner_id: uuid.UUID
    broadcast_id: uuid.UUID | None
    user_id: uuid.UUID
    username: str
    text: str
    # Owner, channel moderator or platform staff: exempt from chat modes, higher rate limit.
    privileged: bool
    modes: ChatModes = field(default_factory=ChatModes)
    # The sender's reputation (0..100): the moderation hook tightens what low scores may send.
    reputation: int = 100


@dataclass(frozen=True, slots=True)
class Verdict:
    """A moderation hook's answer: deliver, refuse (with a reason shown to the sender), or hold."""

    action: Literal["allow", "reject", "hold"]
    reason: str | None = None


ALLOW = Verdict("allow")

ModerationHook = Callable[[MessageContext], Awaitable[Verdict]]
# Whether a user holds a subscription to the stream's owner (registered by the economy).
SubscriptionCheck = Callable[[AsyncSession, uuid.UUID, uuid.UUID], Awaitable[bool]]


async def allow_all(_context: MessageContext) -> Verdict:
    """The default moderation hook: every message goes through."""
    return ALLOW


class ChatEvents(Protocol):
    """Where moderation changes are announced to the room (the real-time gateway)."""

    def message_deleted(self, *, stream_id: uuid.UUID, message_id: uuid.UUID) -> None: ...

    def user_timed_out(
        self, *, stream_id: uuid.UUID, user_id: uuid.UUID, until: datetime | None, banned: bool
    ) -> None: ...

    def chat_mode_changed(self, *, stream_id: uuid.UUID, modes: ChatModes) -> None: ...


class RecentMessages(Protocol):
    """The room's recent window: messages delivered but perhaps not yet written to the table."""

    async def find(self, *, stream_id: uuid.UUID, message_id: uuid.UUID) -> dict[str, Any] | None: ...


def message_payload(
    *,
    message_id: uuid.UUID,
    stream_id: uuid.UUID,
    user_id: uuid.UUID,
    username: str,
    text: str,
    created_at: datetime,
    epoch: str | None = None,
    seq: int | None = None,
) -> dict[str, Any]:
    """A message as clients see it (``new_message``, acks, history)."""
    out: dict[str, Any] = {
        "id": message_id,
        "stream_id": stream_id,
        "user": {"id": user_id, "username": username},
        "text": text,
        "created_at": created_at,
    }
    if epoch is not None:
        out["epoch"] = epoch
        out["seq"] = seq
    return out


# ----------------------------------------------------------------------------- sending


def _send_query() -> Any:
    """The one statement behind a send check: the stream, the sender, the chat modes and the
    sender's standing (moderator, ban or timeout, blocked by the owner, following since)."""
    user_id = bindparam("user_id", type_=User.id.type)
    return (
        select(
            Stream.owner_id,
            Stream.current_broadcast_id,
            User.id.label("user_id"),
            User.username,
            User.status,
            User.suspended_until,
            User.roles,
            User.chat_muted_until,
            User.reputation_points,
            ChatMode.slow_mode_seconds,
            ChatMode.followers_only_minutes,
            ChatMode.subscribers_only,
            ChatMode.emote_only,
            ChatModerator.user_id.label("moderator"),
            ChatBan.user_id.label("ban_user"),
            ChatBan.until,
            Block.blocker_id.label("blocked"),
            Follow.created_at.label("followed_at"),
        )
        .select_from(Stream)
        .join(User, User.id == user_id)
        .outerjoin(ChatMode, ChatMode.stream_id == Stream.id)
        .outerjoin(ChatModerator, and_(ChatModerator.stream_id == Stream.id, ChatModerator.user_id == user_id))
        .outerjoin(ChatBan, and_(ChatBan.stream_id == Stream.id, ChatBan.user_id == user_id))
        .outerjoin(Block, and_(Block.blocker_id == Stream.owner_id, Block.blocked_id == user_id))
        .outerjoin(Follow, and_(Follow.follower_id == user_id, Follow.followee_id == Stream.owner_id))
        .where(Stream.id == bindparam("stream_id", type_=Stream.id.type), Stream.deleted_at.is_(None))
    )


SEND_QUERY = _send_query()


def _send_sql_asyncpg() -> tuple[str, tuple[str, ...]]:
    """``SEND_QUERY`` as asyncpg SQL ($n parameters) and the order of its parameters."""
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    compiled = SEND_QUERY.compile(dialect=dialect())  # type: ignore[no-untyped-call]
    return str(compiled), tuple(compiled.positiontup or ())


SEND_SQL, SEND_SQL_PARAMS = _send_sql_asyncpg()


@dataclass(frozen=True, slots=True)
class _Sender:
    status: str
    suspended_until: datetime | None


async def check_send(
    *,
    session: AsyncSession,
    stream_id: uuid.UUID,
    user_id: uuid.UUID,
    text: str,
    subscription_check: SubscriptionCheck | None = None,
) -> MessageContext:
    """Whether ``user_id`` may send ``text`` (already normalised) in the stream's chat now.

    One query (``SEND_QUERY``) reads everything the rules need. Raises the reason it may not.
    """
    row = (await session.execute(SEND_QUERY, {"stream_id": stream_id, "user_id": user_id})).first()
    context, needs_subscription = decide_send(row._mapping if row is not None else None, stream_id, text)
    if needs_subscription and (
        subscription_check is None or not await subscription_check(session, context.owner_id, context.user_id)
    ):
        raise Forbidden("this chat is for subscribers only", code="subscribers_only")
    return context


async def check_send_db(
    *,
    db: Database,
    stream_id: uuid.UUID,
    user_id: uuid.UUID,
    text: str,
    subscription_check: SubscriptionCheck | None = None,
) -> MessageContext:
    """``check_send`` with its own database access: on PostgreSQL one prepared statement outside a
    transaction on the hot-read pool (the ORM session's BEGIN, entity load and ROLLBACK cost most
    of a chat message's CPU); the ORM session on SQLite, and when a subscription must be looked up."""
    if not db.is_sqlite:
        args = {"stream_id": stream_id, "user_id": user_id}
        record = await (await db.hot_pool()).fetchrow(SEND_SQL, *(args[name] for name in SEND_SQL_PARAMS))
        context, needs_subscription = decide_send(record, stream_id, text)
        if not needs_subscription:
            return context
    async with db.session(write=False) as session:
        return await check_send(
            session=session, stream_id=stream_id, user_id=user_id, text=text, subscription_check=subscription_check
        )


def decide_send(row: Any, stream_id: uuid.UUID, text: str) -> tuple[MessageContext, bool]:
    """The rules of a send check over a row of ``SEND_QUERY`` (any mapping of its columns).

    Returns the message's context and whether the sender still has to be a subscriber (the one
    rule that needs another lookup); raises the reason the message may not be sent.
    """
    if row is None:
        raise NotFound("stream not found", code="stream_not_found")
    now = utcnow()
    if not is_signed_in_allowed(_Sender(row["status"], row["suspended_until"]), now):
        raise Forbidden(f"account is {row['status']}", code=f"account_{row['status']}")
    roles = row["roles"]
    if isinstance(roles, str):  # json straight from asyncpg
        roles = orjson.loads(roles)
    user_id = row["user_id"]
    is_owner = row["owner_id"] == user_id
    is_staff = any(r in roles for r in STAFF_ROLES)
    privileged = is_owner or is_staff or row["moderator"] is not None
    modes = ChatModes(
        slow_mode_seconds=row["slow_mode_seconds"] or 0,
        followers_only_minutes=row["followers_only_minutes"],
        subscribers_only=bool(row["subscribers_only"]),
        emote_only=bool(row["emote_only"]),
    )
    if not (is_owner or is_staff):
        until = row["until"]
        if row["ban_user"] is not None and until is None:
            raise Forbidden("you are banned from this chat", code="banned_from_chat")
        if row["ban_user"] is not None and until is not None and until > now:
            raise Forbidden(
                f"you are timed out of this chat until {until.isoformat()}",
                code="timed_out",
                details={"until": until.isoformat()},
            )
        if row["blocked"] is not None:
            raise Forbidden("the stream's owner has blocked you", code="blocked_by_owner")
        muted = row["chat_muted_until"]
        if muted is not None and muted > now:
            raise Forbidden(
                f"a moderator timed you out of chat until {muted.isoformat()}",
                code="timed_out",
                details={"until": muted.isoformat(), "scope": "platform"},
            )
    if not privileged:
        if modes.emote_only and not is_emote_only(text):
            raise Forbidden("this chat is in emote-only mode: send emoji or :emote: codes only", code="emote_only")
        if modes.followers_only_minutes is not None:
            needed = timedelta(minutes=modes.followers_only_minutes)
            followed_at = row["followed_at"]
            if followed_at is None or followed_at > now - needed:
                raise Forbidden(
                    f"this chat is for followers of at least {modes.followers_only_minutes} minutes",
                    code="followers_only",
                    details={"minutes": modes.followers_only_minutes},
                )
    context = MessageContext(
        stream_id=stream_id,
        owner_id=row["owner_id"],
        broadcast_id=row["current_broadcast_id"],
        user_id=user_id,
        username=row["username"],
        text=text,
        privileged=privileged,
        modes=modes,
        reputation=max(0, min(100, 100 + (row["reputation_points"] or 0))),
    )
    return context, modes.subscribers_only and not privileged


async def check_limits(*, kv: Store, context: MessageContext, settings: ChatSettings) -> None:
    """Rate limit, slow mode and duplicate suppression, on counters shared by every instance.

    Every attempt counts against the rate limit; a message refused as a duplicate still starts
    the sender's slow-mode wait.
    """
    base = f"chat:{context.stream_id}:{context.user_id}"
    window = settings.rate_limit_window_seconds
    limit = settings.rate_limit_privileged_messages if context.privileged else settings.rate_limit_messages
    if await kv.incr(f"{base}:rate", window) > limit:
        raise TooManyRequests(
            f"at most {limit} messages per {window} seconds; wait a moment",
            code="rate_limited",
            details={"limit": limit, "window_seconds": window},
        )
    slow = context.modes.slow_mode_seconds
    if slow and not context.privileged and await kv.incr(f"{base}:slow", slow) > 1:
        raise TooManyRequests(
            f"slow mode is on: one message every {slow} seconds", code="slow_mode", details={"seconds": slow}
        )
    dup_window = settings.duplicate_window_seconds
    if await kv.incr(f"{base}:dup:{_duplicate_key(context.text)}", dup_window) > 1:
        raise Conflict(f"you sent the same message less than {dup_window} seconds ago", code="duplicate_message")


# ----------------------------------------------------------------------------- history


@dataclass(slots=True)
class HistoryPage:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _history_query(stream_id: uuid.UUID) -> Any:
    return (
        select(ChatMessage, User.username)
        .join(User, User.id == ChatMessage.user_id)
        .where(ChatMessage.stream_id == stream_id, ChatMessage.status == MessageStatus.VISIBLE.value)
    )


def _row_payload(message: ChatMessage, username: str) -> dict[str, Any]:
    return message_payload(
        message_id=message.id,
        stream_id=message.stream_id,
        user_id=message.user_id,
        username=username,
        text=message.text,
        created_at=message.created_at,
        epoch=message.epoch,
        seq=message.seq,
    )


async def _require_stream(session: AsyncSession, stream_id: uuid.UUID) -> Stream:
    stream = await session.scalar(select(Stream).where(Stream.id == stream_id, Stream.deleted_at.is_(None)))
    if stream is None:
        raise NotFound("stream not found", code="stream_not_found")
    return stream


async def list_history(*, session: AsyncSession, stream_id: uuid.UUID, before: str | None, limit: int) -> HistoryPage:
    """A page of a stream's chat, oldest first, ending just before ``before`` (a message id or a
    ``next_cursor``); without it, the latest messages."""
    await _require_stream(session, stream_id)
    query = _history_query(stream_id)
    if before:
        message_id = parse_uuid(before)
        if message_id is not None:
            at = await session.scalar(
                select(ChatMessage.created_at).where(ChatMessage.id == message_id, ChatMessage.stream_id == stream_id)
            )
            if at is None:
                raise NotFound("no such message in this stream's chat", code="message_not_found")
        else:
            at, message_id = decode_cursor(before, datetime, uuid.UUID)
            if at.tzinfo is None:
                raise InvalidInput("cursor is not valid; use next_cursor from a previous page", code="invalid_cursor")
        query = query.where(tuple_(ChatMessage.created_at, ChatMessage.id) < tuple_(at, message_id))
    query = query.order_by(ChatMessage.created_at.desc(), ChatMessage.id.desc()).limit(limit + 1)
    rows = list((await session.execute(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    next_cursor = encode_cursor(rows[0].ChatMessage.created_at, rows[0].ChatMessage.id) if more else None
    return HistoryPage([_row_payload(r.ChatMessage, r.username) for r in rows], next_cursor)


async def latest_messages(*, session: AsyncSession, stream_id: uuid.UUID, limit: int) -> list[dict[str, Any]]:
    """The stream's last ``limit`` visible messages, oldest first (for a join without recovery)."""
    query = _history_query(stream_id).order_by(ChatMessage.created_at.desc(), ChatMessage.id.desc()).limit(limit)
    rows = list((await session.execute(query)).all())
    rows.reverse()
    return [_row_payload(r.ChatMessage, r.username) for r in rows]


# ----------------------------------------------------------------------------- moderation


@dataclass(frozen=True, slots=True)
class ChatAuthority:
    """A stream and how much say the acting user has over its chat."""

    stream: Stream
    # Owner or platform staff (admin, moderator): may also act on channel moderators.
    full: bool


def _is_full(stream: Stream, actor: User) -> bool:
    return stream.owner_id == actor.id or actor.has_role(*STAFF_ROLES)


async def access_stream_for_chat_moderation(
    *, session: AsyncSession, stream_id: uuid.UUID, actor: User
) -> ChatAuthority:
    """The stream, for a moderation action by its owner, a channel moderator or platform staff."""
    stream = await _require_stream(session, stream_id)
    if _is_full(stream, actor):
        return ChatAuthority(stream, True)
    appointed = await session.scalar(
        select(ChatModerator.user_id).where(ChatModerator.stream_id == stream_id, ChatModerator.user_id == actor.id)
    )
    if appointed is None:
        raise Forbidden("only the stream's owner or its chat moderators may do this", code="not_chat_moderator")
    return ChatAuthority(stream, False)


async def access_stream_for_chat_owner(*, session: AsyncSession, stream_id: uuid.UUID, actor: User) -> Stream:
    """The stream, for a change only its owner or an admin may make (appointing moderators)."""
    stream = await _require_stream(session, stream_id)
    if stream.owner_id != actor.id and not actor.has_role("admin"):
        raise Forbidden("only the stream's owner or an admin may do this", code="not_stream_owner")
    return stream


async def _moderation_target(
    session: AsyncSession, authority: ChatAuthority, actor: User, target_id: uuid.UUID
) -> User:
    if target_id == actor.id:
        raise InvalidInput("you cannot do this to yourself", code="cannot_target_self")
    if target_id == authority.stream.owner_id:
        raise Forbidden("the stream's owner cannot be moderated in their own chat", code="cannot_moderate_owner")
    target = await session.get(User, target_id)
    if target is None:
        raise NotFound("user not found", code="user_not_found")
    if target.has_role(*STAFF_ROLES):
        raise Forbidden("platform staff cannot be moderated in a channel", code="cannot_moderate_staff")
    if not authority.full:
        is_moderator = await session.scalar(
            select(ChatModerator.user_id).where(
                ChatModerator.stream_id == authority.stream.id, ChatModerator.user_id == target_id
            )
        )
        if is_moderator is not None:
            raise Forbidden("only the owner may act on a chat moderator", code="cannot_moderate_moderator")
    return target


async def get_chat_modes(*, session: AsyncSession, stream_id: uuid.UUID) -> ChatModes:
    """A stream's chat modes (all off when never set)."""
    await _require_stream(session, stream_id)
    row = await session.get(ChatMode, stream_id)
    return _modes_of(row)


def _modes_of(row: ChatMode | None) -> ChatModes:
    if row is None:
        return ChatModes()
    return ChatModes(row.slow_mode_seconds, row.followers_only_minutes, row.subscribers_only, row.emote_only)


async def set_chat_modes(
    *,
    session: AsyncSession,
    actor: User,
    stream_id: uuid.UUID,
    changes: ChatModeChanges,
    events: ChatEvents | None = None,
) -> ChatModes:
    """Change a stream's chat modes (owner, channel moderators, staff); announces the new modes."""
    await access_stream_for_chat_moderation(session=session, stream_id=stream_id, actor=actor)
    row = await session.get(ChatMode, stream_id, with_for_update=True)
    if row is None:
        try:
            async with session.begin_nested():
                row = ChatMode(stream_id=stream_id, slow_mode_seconds=0, subscribers_only=False, emote_only=False)
                session.add(row)
        except IntegrityError:  # created by a concurrent change since the read above
            row = await session.get(ChatMode, stream_id, with_for_update=True, populate_existing=True)
            assert row is not None
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_by_id = actor.id
    row.updated_at = utcnow()
    await session.flush()
    modes = _modes_of(row)
    await audit.record(
        session,
        action="chat_modes_set",
        actor_id=actor.id,
        target_type="stream",
        target_id=stream_id,
        details=modes.as_dict(),
    )
    if events is not None:
        after_commit(session, lambda: events.chat_mode_changed(stream_id=stream_id, modes=modes))
    return modes


async def delete_message(
    *,
    session: AsyncSession,
    actor: User,
    stream_id: uuid.UUID,
    message_id: uuid.UUID,
    recent: RecentMessages | None = None,
    events: ChatEvents | None = None,
) -> None:
    """Remove a message from a stream's chat (owner, channel moderators, staff); idempotent.

    A message delivered moments ago may still wait in the batch writer; it is then written here
    from the room's recent window, already deleted, and the writer's later insert is ignored.
    """
    await access_stream_for_chat_moderation(session=session, stream_id=stream_id, actor=actor)
    now = utcnow()
    message = await session.scalar(
        select(ChatMessage)
        .where(ChatMessage.id == message_id, ChatMessage.stream_id == stream_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    already_deleted = message is not None and message.status == MessageStatus.DELETED.value
    if message is None:
        found = await recent.find(stream_id=stream_id, message_id=message_id) if recent is not None else None
        if found is None:
            raise NotFound("no such message in this stream's chat", code="message_not_found")
        message = ChatMessage(
            id=message_id,
            stream_id=stream_id,
            broadcast_id=None,
            user_id=uuid.UUID(str(found["user"]["id"])),
            text=str(found["text"]),
            epoch=str(found["epoch"]),
            seq=int(found["seq"]),
            status=MessageStatus.DELETED.value,
            created_at=datetime.fromisoformat(str(found["created_at"])),
            deleted_at=now,
            deleted_by_id=actor.id,
        )
        try:
            async with session.begin_nested():
                session.add(message)
        except IntegrityError:  # the writer got there first
            message = await session.scalar(
                select(ChatMessage)
                .where(ChatMessage.id == message_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            assert message is not None
            already_deleted = message.status == MessageStatus.DELETED.value
    if already_deleted:
        return
    message.status = MessageStatus.DELETED.value
    message.deleted_at = now
    message.deleted_by_id = actor.id
    await session.flush()
    await audit.record(
        session,
        action="chat_message_delete",
        actor_id=actor.id,
        target_type="chat_message",
        target_id=message_id,
        details={"stream_id": str(stream_id), "author_id": str(message.user_id)},
    )
    if events is not None:
        after_commit(session, lambda: events.message_deleted(stream_id=stream_id, message_id=message_id))


async def _upsert_ban(
    session: AsyncSession, *, stream_id: uuid.UUID, user_id: uuid.UUID, until: datetime | None, reason: str, actor: User
) -> ChatBan:
    query = (
        select(ChatBan)
        .where(ChatBan.stream_id == stream_id, ChatBan.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = await session.scalar(query)
    if row is None:
        try:
            async with session.begin_nested():
                row = ChatBan(stream_id=stream_id, user_id=user_id, until=until, reason=reason, created_by_id=actor.id)
                session.add(row)
            return row
        except IntegrityError:  # banned by a concurrent request since the read above
            row = await session.scalar(query)
            assert row is not None
    row.until = until
    row.reason = reason
    row.created_by_id = actor.id
    row.created_at = utcnow()
    await session.flush()
    return row


async def timeout_user(
    *,
    session: AsyncSession,
    actor: User,
    stream_id: uuid.UUID,
    user_id: uuid.UUID,
    duration_seconds: int,
    reason: str = "",
    max_duration_seconds: int | None = None,
    events: ChatEvents | None = None,
) -> tuple[ChatBan, str]:
    """Keep a user out of a stream's chat for a while (owner, channel moderators, staff).

    Replaces an earlier timeout or ban of that user in this chat.
    """
    if duration_seconds < 1 or (max_duration_seconds is not None and duration_seconds > max_duration_seconds):
        raise InvalidInput(
            f"duration_seconds must be between 1 and {max_duration_seconds}",
            code="invalid_duration",
            details=[{"field": "duration_seconds", "message": "out of range"}],
        )
    authority = await access_stream_for_chat_moderation(session=session, stream_id=stream_id, actor=actor)
    target = await _moderation_target(session, authority, actor, user_id)
    until = utcnow() + timedelta(seconds=duration_seconds)
    row = await _upsert_ban(session, stream_id=stream_id, user_id=user_id, until=until, reason=reason, actor=actor)
    await audit.record(
        session,
        action="chat_timeout",
        actor_id=actor.id,
        target_type="user",
        target_id=user_id,
        details={"stream_id": str(stream_id), "until": until.isoformat(), "reason": reason},
    )
    if events is not None:
        after_commit(
            session, lambda: events.user_timed_out(stream_id=stream_id, user_id=user_id, until=until, banned=False)
        )
    return row, target.username


async def ban_user(
    *,
    session: AsyncSession,
    actor: User,
    stream_id: uuid.UUID,
    user_id: uuid.UUID,
    reason: str = "",
    events: ChatEvents | None = None,
) -> tuple[ChatBan, str]:
    """Bar a user from a stream's chat until unbanned (owner, channel moderators, staff)."""
    authority = await access_stream_for_chat_moderation(session=session, stream_id=stream_id, actor=actor)
    target = await _moderation_target(session, authority, actor, user_id)
    row = await _upsert_ban(session, stream_id=stream_id, user_id=user_id, until=None, reason=reason, actor=actor)
    await audit.record(
        session,
        action="chat_ban",
        actor_id=actor.id,
        target_type="user",
        target_id=user_id,
        details={"stream_id": str(stream_id), "reason": reason},
    )
    if events is not None:
        after_commit(
            session, lambda: events.user_timed_out(stream_id=stream_id, user_id=user_id, until=None, banned=True)
        )
    return row, target.username


async def lift_ban(*, session: AsyncSession, actor: User, stream_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """End a user's ban or timeout in a stream's chat (owner, channel moderators, staff); idempotent."""
    await access_stream_for_chat_moderation(session=session, stream_id=stream_id, actor=actor)
    result = await session.execute(delete(ChatBan).where(ChatBan.stream_id == stream_id, ChatBan.user_id == user_id))
    if getattr(result, "rowcount", 0):
        await audit.record(
            session,
            action="chat_unban",
            actor_id=actor.id,
            target_type="user",
            target_id=user_id,
            details={"stream_id": str(stream_id)},
        )


async def list_bans(*, session: AsyncSession, actor: User, stream_id: uuid.UUID) -> list[tuple[ChatBan, str]]:
    """Current bans and running timeouts of a stream's chat, newest first (moderators only)."""
    await access_stream_for_chat_moderation(session=session, stream_id=stream_id, actor=actor)
    now = utcnow()
    query = (
        select(ChatBan, User.username)
        .join(User, User.id == ChatBan.user_id)
        .where(ChatBan.stream_id == stream_id, (ChatBan.until.is_(None)) | (ChatBan.until > now))
        .order_by(ChatBan.created_at.desc())
        .limit(1000)
    )
    return [(r.ChatBan, r.username) for r in (await session.execute(query)).all()]


async def add_moderator(
    *, session: AsyncSession, actor: User, stream_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[ChatModerator, str]:
    """Appoint a chat moderator (the stream's owner or an admin); idempotent."""
    stream = await access_stream_for_chat_owner(session=session, stream_id=stream_id, actor=actor)
    if user_id == stream.owner_id:
        raise InvalidInput("the owner already moderates their own chat", code="cannot_target_self")
    target = await session.get(User, user_id)
    if target is None:
        raise NotFound("user not found", code="user_not_found")
    query = select(ChatModerator).where(ChatModerator.stream_id == stream_id, ChatModerator.user_id == user_id)
    row = await session.scalar(query)
    if row is None:
        try:
            async with session.begin_nested():
                row = ChatModerator(stream_id=stream_id, user_id=user_id, appointed_by_id=actor.id)
                session.add(row)
            await audit.record(
                session,
                action="chat_moderator_add",
                actor_id=actor.id,
                target_type="user",
                target_id=user_id,
                details={"stream_id": str(stream_id)},
            )
        except IntegrityError:  # appointed by a concurrent request
            row = await session.scalar(query)
            assert row is not None
    return row, target.username


async def remove_moderator(*, session: AsyncSession, actor: User, stream_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Withdraw a chat moderator (the stream's owner or an admin); idempotent."""
    await access_stream_for_chat_owner(session=session, stream_id=stream_id, actor=actor)
    result = await session.execute(
        delete(ChatModerator).where(ChatModerator.stream_id == stream_id, ChatModerator.user_id == user_id)
    )
    if getattr(result, "rowcount", 0):
        await audit.record(
            session,
            action="chat_moderator_remove",
            actor_id=actor.id,
            target_type="user",
            target_id=user_id,
            details={"stream_id": str(stream_id)},
        )


async def list_moderators(*, session: AsyncSession, stream_id: uuid.UUID) -> list[tuple[ChatModerator, str]]:
    """A stream's chat moderators, in appointment order."""
    await _require_stream(session, stream_id)
    query = (
        select(ChatModerator, User.username)
        .join(User, User.id == ChatModerator.user_id)
        .where(ChatModerator.stream_id == stream_id)
        .order_by(ChatModerator.created_at, ChatModerator.user_id)
        .limit(1000)
    )
    return [(r.ChatModerator, r.username) for r in (await session.execute(query)).all()]
