"""Notifications: creating them (one per recipient per source, with their channel deliveries),
reading and marking them, preferences and quiet hours, push subscriptions and devices.

Services flush, never commit: the request or the consumer owns the transaction. Creating returns
the rows actually inserted; their socket pushes and delivery wake-ups run after commit (the
consumer schedules them), so nothing is announced that may roll back.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Uuid, any_, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User
from halobuzz.core.clock import utcnow
from halobuzz.core.errors import InvalidInput, NotFound
from halobuzz.core.ids import uuid7
from halobuzz.core.pagination import decode_cursor, encode_cursor
from halobuzz.notifications import catalog
from halobuzz.notifications.models import (
    MobileDevice,
    Notification,
    NotificationDelivery,
    NotificationSettings,
    WebPushSubscription,
)
from halobuzz.notifications.templates import zone_of

# ----------------------------------------------------------------------------- creating


@dataclass(frozen=True, slots=True)
class Draft:
    """What a source event notifies about; the same for each of its recipients."""

    type: str
    data: dict[str, Any]
    dedupe_key: str
    actor_id: uuid.UUID | None = None
    subject_type: str | None = None
    subject_id: str | None = None


@dataclass(frozen=True, slots=True)
class Created:
    id: uuid.UUID
    recipient_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Outcome:
    created: list[Created]
    deliveries: int
    created_at: datetime


def _is_pg(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _among(session: AsyncSession, column: Any, ids: Collection[uuid.UUID]) -> ColumnElement[bool]:
    """``column IN ids``; on PostgreSQL one array parameter (``= ANY($1)``) instead of thousands of binds."""
    if _is_pg(session):
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Uuid())))  # type: ignore[no-any-return]
    return column.in_(list(ids))  # type: ignore[no-any-return]


async def settings_for(
    *, session: AsyncSession, user_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, NotificationSettings]:
    """The stored settings rows of these users (users without one have the defaults)."""
    if not user_ids:
        return {}
    rows = await session.scalars(
        select(NotificationSettings).where(_among(session, NotificationSettings.user_id, user_ids))
    )
    return {row.user_id: row for row in rows}


async def _insert_notifications(
    session: AsyncSession, draft: Draft, recipients: Sequence[uuid.UUID], now: datetime
) -> list[Created]:
    """Insert one row per recipient, skipping those that already have this ``dedupe_key``."""
    if not recipients:
        return []
    if _is_pg(session):
        # One statement for the whole batch: the recipients go as one array, unnested server-side,
        # duplicates skipped; ids are UUIDv7 made by the server (as core.ids.uuid7 makes them).
        result = await session.execute(
            # A constant expression is interpolated below; every value is a bound parameter.
            text(
                "INSERT INTO notification "  # noqa: S608
                "(id, recipient_id, type, actor_id, subject_type, subject_id, data, dedupe_key, created_at) "
                f"SELECT {_PG_UUID7}, t.r, CAST(:type AS varchar), CAST(:actor_id AS uuid), "
                "CAST(:subject_type AS varchar), CAST(:subject_id AS varchar), CAST(:data AS json), "
                "CAST(:dedupe_key AS varchar), CAST(:created_at AS timestamptz) "
                "FROM unnest(CAST(:recipients AS uuid[])) AS t(r) "
                "ON CONFLICT (recipient_id, dedupe_key) DO NOTHING RETURNING id, recipient_id"
            ),
            {
                "type": draft.type,
                "actor_id": draft.actor_id,
                "subject_type": draft.subject_type,
                "subject_id": draft.subject_id,
                "data": orjson.dumps(draft.data).decode(),
                "dedupe_key": draft.dedupe_key,
                "created_at": now,
                "recipients": list(recipients),
            },
        )
        return [Created(_uuid(row[0]), _uuid(row[1])) for row in result]
    ids = [uuid7() for _ in recipients]
    rows = [
        {
            "id": nid,
            "recipient_id": rid,
            "type": draft.type,
            "actor_id": draft.actor_id,
            "subject_type": draft.subject_type,
            "subject_id": draft.subject_id,
            "data": draft.data,
            "dedupe_key": draft.dedupe_key,
            "created_at": now,
            "read_at": None,
        }
        for nid, rid in zip(ids, recipients, strict=True)
    ]
    await session.execute(
        sqlite_insert(Notification).on_conflict_do_nothing(index_elements=["recipient_id", "dedupe_key"]), rows
    )
    # executemany reports no rows; the ones inserted now carry the ids made here.
    mine = set(ids)
    found = await session.execute(
        select(Notification.id, Notification.recipient_id).where(
            Notification.dedupe_key == draft.dedupe_key, Notification.recipient_id.in_(list(recipients))
        )
    )
    return [Created(row.id, row.recipient_id) for row in found if row.id in mine]


# UUIDv7 in SQL (PostgreSQL 15 has no uuidv7()): a random v4 UUID with its first 48 bits replaced by
# the Unix time in milliseconds and its version nibble turned from 4 into 7.
_PG_UUID7 = (
    "CAST(encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing "
    "substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) "
    "FROM 1 FOR 6), 52, 1), 53, 1), 'hex') AS uuid)"
)


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def quiet_until(now: datetime, *, timezone: str | None, start: str | None, end: str | None) -> datetime | None:
    """When the user's quiet hours end (UTC) if ``now`` falls inside them, else None.

    ``start``/``end`` are local wall times; ``start > end`` spans midnight (22:00 to 07:00).
    """
    if not start or not end or start == end:
        return None
    zone = zone_of(timezone)
    local = now.astimezone(zone)
    begin, finish = time.fromisoformat(start), time.fromisoformat(end)
    at = local.time().replace(tzinfo=None)
    if begin < finish:
        inside = begin <= at < finish
        day = local.date()
    else:
        inside = at >= begin or at < finish
        day = local.date() if at < finish else local.date() + timedelta(days=1)
    if not inside:
        return None
    return datetime.combine(day, finish, tzinfo=zone).astimezone(UTC)


async def _plan_deliveries(
    session: AsyncSession,
    *,
    draft: Draft,
    recipients: Sequence[uuid.UUID],
    stored: dict[uuid.UUID, NotificationSettings],
    created: dict[uuid.UUID, uuid.UUID],
    available: Collection[str],
    require_verified_email: bool,
    now: datetime,
) -> int:
    """Queue the channel deliveries the recipients' preferences ask for; the number queued.

    Push and SMS inside a recipient's quiet hours are due when the quiet hours end; email in
    digest mode is held (``digest``) for the daily digest job.
    """

    def wanted(channel: str) -> list[uuid.UUID]:
        if channel not in available:
            return []
        return [
            uid
            for uid in recipients
            if catalog.enabled(stored[uid].preferences if uid in stored else None, draft.type, channel)
        ]

    targets: list[tuple[uuid.UUID, str, str]] = []  # (user, channel, target)
    push_users = wanted(catalog.WEB_PUSH)
    if push_users:
        for sub_id, uid in await session.execute(
            select(WebPushSubscription.id, WebPushSubscription.user_id).where(
                _among(session, WebPushSubscription.user_id, push_users)
            )
        ):
            targets.append((uid, catalog.WEB_PUSH, str(sub_id)))
    device_users = wanted(catalog.MOBILE_PUSH)
    if device_users:
        for device_id, uid in await session.execute(
            select(MobileDevice.id, MobileDevice.user_id).where(_among(session, MobileDevice.user_id, device_users))
        ):
            targets.append((uid, catalog.MOBILE_PUSH, str(device_id)))
    direct = [(uid, catalog.EMAIL) for uid in wanted(catalog.EMAIL)] + [
        (uid, catalog.SMS) for uid in wanted(catalog.SMS)
    ]
    users: dict[uuid.UUID, Any] = {}
    needed = {uid for uid, _, _ in targets} | {uid for uid, _ in direct}
    if needed:
        rows = await session.execute(
            select(User.id, User.timezone, User.email_verified_at, User.phone, User.status).where(
                _among(session, User.id, needed)
            )
        )
        users = {row.id: row for row in rows}
    for uid, channel in direct:
        user = users.get(uid)
        if user is None:
            continue
        reachable = (
            user.email_verified_at is not None or not require_verified_email
            if channel == catalog.EMAIL
            else bool(user.phone)
        )
        if reachable:
            targets.append((uid, channel, channel))
    rows_out: list[dict[str, Any]] = []
    for uid, channel, target in targets:
        user = users.get(uid)
        if user is None or user.status in ("banned", "deleted"):
            continue
        settings = stored.get(uid)
        due, held, status = now, None, "pending"
        if channel in catalog.QUIET_CHANNELS and settings is not None:
            held = quiet_until(now, timezone=user.timezone, start=settings.quiet_start, end=settings.quiet_end)
            if held is not None:
                due = held
        if channel == catalog.EMAIL and settings is not None and settings.email_digest:
            status = "digest"
        rows_out.append(
            {
                "id": uuid7(),
                "user_id": uid,
                "source_key": draft.dedupe_key,
                "type": draft.type,
                "data": draft.data,
                "notification_id": created.get(uid),
                "digest_id": None,
                "channel": channel,
                "target": target,
                "status": status,
                "attempts": 0,
                "next_attempt_at": due,
                "held_until": held,
                "created_at": now,
            }
        )
    if not rows_out:
        return 0
    insert = pg_insert if _is_pg(session) else sqlite_insert
    await session.execute(
        insert(NotificationDelivery).on_conflict_do_nothing(
            index_elements=["user_id", "source_key", "channel", "target"]
        ),
        rows_out,
    )
    return len(rows_out)


async def notify(
    *,
    session: AsyncSession,
    draft: Draft,
    recipients: Sequence[uuid.UUID],
    available: Collection[str],
    require_verified_email: bool = True,
    now: datetime | None = None,
) -> Outcome:
    """Store ``draft`` for every recipient whose in-app channel is on (once per ``dedupe_key``) and
    queue the other channels they chose. Safe to repeat: duplicates are skipped by unique keys."""
    now = now or utcnow()
    unique = list(dict.fromkeys(recipients))
    stored = await settings_for(session=session, user_ids=unique)
    in_app = [
        uid
        for uid in unique
        if catalog.enabled(stored[uid].preferences if uid in stored else None, draft.type, catalog.IN_APP)
    ]
    created = await _insert_notifications(session, draft, in_app, now)
    queued = await _plan_deliveries(
        session,
        draft=draft,
        recipients=unique,
        stored=stored,
        created={c.recipient_id: c.id for c in created},
        available=available,
        require_verified_email=require_verified_email,
        now=now,
    )
    return Outcome(created, queued, now)


def item(
    *, id: uuid.UUID, type: str, data: dict[str, Any], created_at: datetime, read_at: datetime | None
) -> dict[str, Any]:
    """The public shape of a notification (the list items and the socket ``notification`` event)."""
    return {"id": id, "type": type, "data": data, "created_at": created_at, "read_at": read_at}


def notification_out(row: Notification) -> dict[str, Any]:
    return item(id=row.id, type=row.type, data=row.data, created_at=row.created_at, read_at=row.read_at)


# ----------------------------------------------------------------------------- reading


async def unread_count(*, session: AsyncSession, user_id: uuid.UUID) -> int:
    """How many of the user's notifications are unread."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.recipient_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


async def list_notifications(
    *, session: AsyncSession, user: User, limit: int, cursor: str | None, unread_only: bool = False
) -> tuple[list[Notification], str | None]:
    """The user's notifications, newest first (keyset on the time-ordered id)."""
    query = select(Notification).where(Notification.recipient_id == user.id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if cursor:
        (before,) = decode_cursor(cursor, uuid.UUID)
        query = query.where(Notification.id < before)
    rows = list(await session.scalars(query.order_by(Notification.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id) if more and rows else None


async def access_notification(*, session: AsyncSession, user: User, notification_id: uuid.UUID) -> Notification:
    """The user's own notification; ``NotFound`` for anyone else's (no existence leak)."""
    row = await session.get(Notification, notification_id)
    if row is None or row.recipient_id != user.id:
        raise NotFound("no such notification", code="notification_not_found")
    return row


async def mark_read(*, session: AsyncSession, user: User, ids: Sequence[uuid.UUID] | None, all_: bool) -> int:
    """Mark the given notifications (or all) read; those already read keep their time. The number changed.

    Ids that are not the user's are ignored, so the call reveals nothing about others' notifications.
    """
    query = update(Notification).where(Notification.recipient_id == user.id, Notification.read_at.is_(None))
    if not all_:
        if not ids:
            return 0
        query = query.where(Notification.id.in_(list(ids)))
    result = await session.execute(query.values(read_at=utcnow()).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


async def mark_one_read(*, session: AsyncSession, user: User, notification_id: uuid.UUID) -> Notification:
    """Mark one notification read (idempotent)."""
    row = await access_notification(session=session, user=user, notification_id=notification_id)
    if row.read_at is None:
        row.read_at = utcnow()
        await session.flush()
    return row


async def delete_notification(*, session: AsyncSession, user: User, notification_id: uuid.UUID) -> None:
    """Delete one of the user's notifications (its delivery records stay, unlinked)."""
    row = await access_notification(session=session, user=user, notification_id=notification_id)
    await session.delete(row)
    await session.flush()


async def list_deliveries(
    *, session: AsyncSession, user: User, notification_id: uuid.UUID
) -> list[NotificationDelivery]:
    """The channel deliveries of one of the user's notifications, oldest first."""
    await access_notification(session=session, user=user, notification_id=notification_id)
    rows = await session.scalars(
        select(NotificationDelivery)
        .where(NotificationDelivery.notification_id == notification_id)
        .order_by(NotificationDelivery.id)
    )
    return list(rows)


# ----------------------------------------------------------------------------- preferences


@dataclass(frozen=True, slots=True)
class Preferences:
    types: dict[str, dict[str, bool]]
    quiet_hours: dict[str, str] | None
    email_digest: bool
    timezone: str


async def get_preferences(*, session: AsyncSession, user: User) -> Preferences:
    """The user's effective preferences: defaults with their choices applied."""
    row = await session.get(NotificationSettings, user.id)
    return _preferences(row, user)


def _preferences(row: NotificationSettings | None, user: User) -> Preferences:
    quiet = None
    if row is not None and row.quiet_start and row.quiet_end:
        quiet = {"start": row.quiet_start, "end": row.quiet_end}
    return Preferences(
        types=catalog.effective(row.preferences if row else None),
        quiet_hours=quiet,
        email_digest=bool(row and row.email_digest),
        timezone=user.timezone,
    )


def _clock(value: str, field: str) -> str:
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field} must be a time like 22:00", code="invalid_quiet_hours") from None
    if len(value) != 5 or parsed.second or parsed.microsecond:
        raise InvalidInput(f"{field} must be HH:MM", code="invalid_quiet_hours")
    return value


async def update_preferences(
    *,
    session: AsyncSession,
    user: User,
    types: dict[str, dict[str, bool]] | None = None,
    quiet_hours: dict[str, str] | None = None,
    set_quiet_hours: bool = False,
    email_digest: bool | None = None,
) -> Preferences:
    """Change some choices: ``types`` merges per type and channel; with ``set_quiet_hours``,
    ``quiet_hours`` replaces them (None clears them).

    Unknown types or channels and locked choices (moderation in-app) are refused before anything
    changes. Takes the settings row's lock (``SELECT … FOR UPDATE``) so concurrent updates merge.
    """
    if types:
        unknown_types = sorted(set(types) - set(catalog.TYPES))
        unknown_channels = sorted({c for per in types.values() for c in per} - set(catalog.CHANNELS))
        if unknown_types or unknown_channels:
            raise InvalidInput(
                "unknown notification types or channels",
                code="invalid_preferences",
                details={"types": unknown_types, "channels": unknown_channels, "known_types": list(catalog.TYPES)},
            )
        locked = sorted(
            f"{t}.{c}" for t, per in types.items() for c, on in per.items() if (t, c) in catalog.LOCKED and not on
        )
        if locked:
            raise InvalidInput(
                "these notifications cannot be turned off", code="preference_locked", details={"locked": locked}
            )
    quiet: tuple[str | None, str | None] | None = None
    if set_quiet_hours:
        if quiet_hours is None:
            quiet = (None, None)
        else:
            start = _clock(quiet_hours.get("start", ""), "quiet_hours.start")
            end = _clock(quiet_hours.get("end", ""), "quiet_hours.end")
            if start == end:
                raise InvalidInput("quiet hours must not start and end at the same time", code="invalid_quiet_hours")
            quiet = (start, end)
    row = await session.scalar(
        select(NotificationSettings).where(NotificationSettings.user_id == user.id).with_for_update()
    )
    if row is None:
        insert = pg_insert if _is_pg(session) else sqlite_insert
        await session.execute(
            insert(NotificationSettings)
            .values(user_id=user.id, preferences={}, email_digest=False, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["user_id"])
        )
        row = await session.scalar(
            select(NotificationSettings)
            .where(NotificationSettings.user_id == user.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert row is not None
    if types:
        merged: dict[str, dict[str, bool]] = {t: dict(v) for t, v in (row.preferences or {}).items()}
        for type_, per in types.items():
            for channel, on in per.items():
                if on == catalog.DEFAULTS[type_][channel]:
                    merged.get(type_, {}).pop(channel, None)  # back to the default: nothing to store
                else:
                    merged.setdefault(type_, {})[channel] = on
        row.preferences = {t: v for t, v in merged.items() if v}
    if quiet is not None:
        row.quiet_start, row.quiet_end = quiet
    if email_digest is not None:
        row.email_digest = email_digest
    row.updated_at = utcnow()
    await session.flush()
    return _preferences(row, user)


# ----------------------------------------------------------------------------- push targets


async def add_push_subscription(
    *, session: AsyncSession, user: User, endpoint: str, p256dh: str, auth: str, user_agent: str
) -> tuple[WebPushSubscription, bool]:
    """Register a browser's push subscription (validated by the caller); re-registering an endpoint
    moves it to this user with the new keys. Returns the row and whether it is new."""
    existing = await session.scalar(
        select(WebPushSubscription).where(WebPushSubscription.endpoint == endpoint).with_for_update()
    )
    if existing is not None:
        existing.user_id, existing.p256dh, existing.auth = user.id, p256dh, auth
        existing.user_agent = user_agent
        await session.flush()
        return existing, False
    insert = pg_insert if _is_pg(session) else sqlite_insert
    new_id = uuid7()
    await session.execute(
        insert(WebPushSubscription)
        .values(
            id=new_id,
            user_id=user.id,
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            user_agent=user_agent,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["endpoint"])
    )
    row = await session.scalar(
        select(WebPushSubscription)
        .where(WebPushSubscription.endpoint == endpoint)
        .execution_options(populate_existing=True)
    )
    assert row is not None
    if row.user_id != user.id:  # a concurrent registration by someone else won; take it over
        row.user_id, row.p256dh, row.auth = user.id, p256dh, auth
        await session.flush()
    return row, row.id == new_id


async def list_push_subscriptions(*, session: AsyncSession, user: User) -> list[WebPushSubscription]:
    rows = await session.scalars(
        select(WebPushSubscription).where(WebPushSubscription.user_id == user.id).order_by(WebPushSubscription.id)
    )
    return list(rows)


async def remove_push_subscription(
    *, session: AsyncSession, user: User, endpoint: str | None = None, subscription_id: uuid.UUID | None = None
) -> None:
    """Unsubscribe one of the user's subscriptions, by endpoint or id."""
    query = delete(WebPushSubscription).where(WebPushSubscription.user_id == user.id)
    if subscription_id is not None:
        query = query.where(WebPushSubscription.id == subscription_id)
    elif endpoint:
        query = query.where(WebPushSubscription.endpoint == endpoint)
    else:
        raise InvalidInput("give the subscription's endpoint", code="invalid_input")
    result = await session.execute(query.returning(WebPushSubscription.id))
    if result.first() is None:
        raise NotFound("no such push subscription", code="push_subscription_not_found")


def device_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def add_device(*, session: AsyncSession, user: User, token: str, platform: str) -> tuple[MobileDevice, bool]:
    """Register an FCM registration token for the user (a token registered before moves to them)."""
    digest = device_token_hash(token)
    existing = await session.scalar(select(MobileDevice).where(MobileDevice.token_hash == digest).with_for_update())
    if existing is not None:
        existing.user_id, existing.platform = user.id, platform
        await session.flush()
        return existing, False
    insert = pg_insert if _is_pg(session) else sqlite_insert
    new_id = uuid7()
    await session.execute(
        insert(MobileDevice)
        .values(id=new_id, user_id=user.id, token=token, token_hash=digest, platform=platform, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["token_hash"])
    )
    row = await session.scalar(
        select(MobileDevice).where(MobileDevice.token_hash == digest).execution_options(populate_existing=True)
    )
    assert row is not None
    if row.user_id != user.id:
        row.user_id, row.platform = user.id, platform
        await session.flush()
    return row, row.id == new_id


async def list_devices(*, session: AsyncSession, user: User) -> list[MobileDevice]:
    rows = await session.scalars(select(MobileDevice).where(MobileDevice.user_id == user.id).order_by(MobileDevice.id))
    return list(rows)


async def remove_device(*, session: AsyncSession, user: User, device_id: uuid.UUID) -> None:
    """Forget one of the user's devices."""
    result = await session.execute(
        delete(MobileDevice)
        .where(MobileDevice.user_id == user.id, MobileDevice.id == device_id)
        .returning(MobileDevice.id)
    )
    if result.first() is None:
        raise NotFound("no such device", code="device_not_found")
