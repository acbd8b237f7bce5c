"""Streams, their secret keys, going live and off air (broadcasts), the live listing, categories.

``access_stream_for_owner`` is the only way to load a stream for a state change. Going live and
ending lock the stream row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serialises write
transactions), so racing starts open exactly one broadcast; a partial unique index backs that up.

Changes that affect the cached public listings invalidate the response cache after commit; the
callers that serve HTTP pass their ``ResponseCache`` (jobs and the seed pass none: entries expire
after a short TTL anyway).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, Protocol, TypedDict, TypeVar

from sqlalchemy import Row, Select, case, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.auth import is_signed_in_allowed
from halobuzz.accounts.models import User, UserStatus
from halobuzz.core import audit, events
from halobuzz.core.cache import ResponseCache
from halobuzz.core.clock import utcnow
from halobuzz.core.db import after_commit
from halobuzz.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from halobuzz.core.ids import parse_uuid, uuid7
from halobuzz.core.observability import count_event
from halobuzz.core.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor
from halobuzz.core.security import new_token, token_hash
from halobuzz.streams.models import Broadcast, Category, Stream, StreamStatus

LIVE_CACHE_TAG = "streams"
CATEGORIES_CACHE_TAG = "categories"
MAX_SCHEDULE_AHEAD = timedelta(days=365)

T = TypeVar("T")


class ClientInfo(Protocol):
    """Where a request came from, for audit rows (``core.deps.RequestMeta`` is one)."""

    @property
    def ip(self) -> str | None: ...

    @property
    def user_agent(self) -> str | None: ...


@dataclass(slots=True)
class ItemPage(Generic[T]):
    """One page of a cursor-paginated listing; iterates (and counts) as its items."""

    items: list[T]
    next_cursor: str | None

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)


@dataclass(frozen=True, slots=True)
class AirChange:
    """A stream went live (``live``) or off air, as announced after commit."""

    stream_id: uuid.UUID
    broadcast_id: uuid.UUID | None
    live: bool
    at: datetime
    title: str


OnAir = Callable[[AirChange], None]


@dataclass(slots=True)
class StreamView:
    """A stream with what its public view shows: owner, category slug, open broadcast."""

    stream: Stream
    owner: User
    category_slug: str | None
    broadcast: Broadcast | None


@dataclass(slots=True)
class CreatedStream(StreamView):
    """A new stream and its secret key, which is never retrievable again."""

    stream_key: str


class StreamChanges(TypedDict, total=False):
    title: str
    description: str
    category: str | uuid.UUID | None
    tags: list[str]
    language: str
    audio_only: bool
    region: str
    scheduled_start_at: datetime | None


class CategoryChanges(TypedDict, total=False):
    name: str
    description: str
    position: int
    is_active: bool


# A row of the live listing (see _LIVE_COLUMNS for its fields).
LiveRow = Row[*tuple[Any, ...]]

_LIVE_COLUMNS = (
    Stream.id,
    Stream.title,
    Stream.status,
    Stream.viewer_count,
    Stream.like_count,
    Stream.tags,
    Stream.language,
    Stream.audio_only,
    Stream.region,
    Stream.started_at,
    User.id.label("owner_id"),
    User.username.label("owner_username"),
    User.display_name.label("owner_display_name"),
    Category.slug.label("category_slug"),
)


def _invalidate(session: AsyncSession, cache: ResponseCache | None, tag: str) -> None:
    if cache is not None:
        after_commit(session, lambda: cache.invalidate(tag))


async def _audit_if_not_owner(
    session: AsyncSession, *, actor: User, stream: Stream, action: str, client: ClientInfo | None
) -> None:
    """Record an admin acting on someone else's stream."""
    if actor.id == stream.owner_id:
        return
    await audit.record(
        session,
        action=action,
        actor_id=actor.id,
        target_type="stream",
        target_id=stream.id,
        ip=client.ip if client else None,
        user_agent=client.user_agent if client else None,
        details={"owner_id": str(stream.owner_id)},
    )


def _check_schedule(at: datetime | None) -> None:
    if at is None:
        return
    now = utcnow()
    if at <= now:
        raise InvalidInput("scheduled_start_at must be in the future", code="schedule_in_past")
    if at > now + MAX_SCHEDULE_AHEAD:
        raise InvalidInput("scheduled_start_at must be within a year", code="schedule_too_far")


async def _resolve_category(session: AsyncSession, ref: str | uuid.UUID | None) -> Category | None:
    """The active category named by slug or id; ``InvalidInput`` when there is none."""
    if ref is None:
        return None
    category_id = ref if isinstance(ref, uuid.UUID) else parse_uuid(ref)
    where = Category.id == category_id if category_id is not None else Category.slug == str(ref).lower()
    category = await session.scalar(select(Category).where(where, Category.is_active.is_(True)))
    if category is None:
        raise InvalidInput(
            f"no active category {ref!r}; GET /api/v1/categories lists them",
            code="unknown_category",
            details=[{"field": "category", "message": "unknown category"}],
        )
    return category


def _view_query() -> Select[Stream, User, str, Broadcast]:
    return (
        select(Stream, User, Category.slug, Broadcast)
        .join(User, User.id == Stream.owner_id)
        .outerjoin(Category, Category.id == Stream.category_id)
        .outerjoin(Broadcast, Broadcast.id == Stream.current_broadcast_id)
        .where(Stream.deleted_at.is_(None))
    )


async def _load_view(session: AsyncSession, stream_id: uuid.UUID) -> StreamView:
    row = (await session.execute(_view_query().where(Stream.id == stream_id))).first()
    if row is None:
        raise NotFound("stream not found", code="stream_not_found")
    return _view(row)


def _view(row: Row[Stream, User, str, Broadcast]) -> StreamView:
    # Outer joins: the category slug and the broadcast may be None.
    stream, owner, category_slug, broadcast = row
    return StreamView(stream, owner, category_slug, broadcast)


async def find_stream_by_key(*, session: AsyncSession, key: str) -> Stream | None:
    """The (not deleted) stream whose secret key is ``key``; for the media plane's ingest checks."""
    if not key:
        return None
    return await session.scalar(
        select(Stream).where(Stream.stream_key_hash == token_hash(key), Stream.deleted_at.is_(None))
    )


async def access_stream_for_owner(
    *, session: AsyncSession, stream_id: uuid.UUID, actor: User, lock: bool = False
) -> Stream:
    """The stream, for a change by its owner or an admin; ``lock`` takes its row lock first."""
    query = select(Stream).where(Stream.id == stream_id, Stream.deleted_at.is_(None))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    stream = await session.scalar(query)
    if stream is None:
        raise NotFound("stream not found", code="stream_not_found")
    if stream.owner_id != actor.id and not actor.has_role("admin"):
        raise Forbidden("only the stream's owner or an admin may do this", code="not_stream_owner")
    return stream


async def get_stream(*, session: AsyncSession, stream_id: uuid.UUID) -> StreamView:
    """A stream's public view; ``NotFound`` when it does not exist or was deleted."""
    return await _load_view(session, stream_id)


async def create_stream(
    *,
    session: AsyncSession,
    actor: User,
    title: str,
    description: str = "",
    category: str | uuid.UUID | None = None,
    tags: Sequence[str] = (),
    language: str | None = None,
    audio_only: bool = False,
    region: str = "global",
    scheduled_start_at: datetime | None = None,
) -> CreatedStream:
    """Create a stream owned by ``actor`` with a new secret key (returned once, stored hashed)."""
    _check_schedule(scheduled_start_at)
    found = await _resolve_category(session, category)
    key = new_token()
    now = utcnow()
    stream = Stream(
        id=uuid7(),
        owner_id=actor.id,
        title=title,
        description=description,
        category_id=found.id if found else None,
        tags=list(tags),
        language=language or actor.language,
        audio_only=audio_only,
        region=region,
        scheduled_start_at=scheduled_start_at,
        status=StreamStatus.OFFLINE.value,
        stream_key_hash=token_hash(key),
        key_rotated_at=now,
        viewer_count=0,
        like_count=0,
        created_at=now,
        updated_at=now,
    )
    session.add(stream)
    await session.flush()
    count_event("stream_create")
    return CreatedStream(stream, actor, found.slug if found else None, None, key)


async def update_stream(
    *,
    session: AsyncSession,
    actor: User,
    stream_id: uuid.UUID,
    changes: StreamChanges,
    cache: ResponseCache | None = None,
    client: ClientInfo | None = None,
) -> StreamView:
    """Edit a stream's details (owner or admin); only the fields in ``changes`` change."""
    stream = await access_stream_for_owner(session=session, stream_id=stream_id, actor=actor, lock=True)
    if "scheduled_start_at" in changes:
        _check_schedule(changes["scheduled_start_at"])
        stream.scheduled_start_at = changes["scheduled_start_at"]
    if "category" in changes:
        found = await _resolve_category(session, changes["category"])
        stream.category_id = found.id if found else None
    if "title" in changes:
        stream.title = changes["title"]
    if "description" in changes:
        stream.description = changes["description"]
    if "tags" in changes:
        stream.tags = list(changes["tags"])
    if "language" in changes:
        stream.language = changes["language"]
    if "audio_only" in changes:
        stream.audio_only = changes["audio_only"]
    if "region" in changes:
        stream.region = changes["region"]
    await session.flush()
    await _audit_if_not_owner(session, actor=actor, stream=stream, action="stream_update", client=client)
    if stream.status == StreamStatus.LIVE:
        _invalidate(session, cache, LIVE_CACHE_TAG)
    return await _load_view(session, stream.id)


async def delete_stream(
    *,
    session: AsyncSession,
    actor: User,
    stream_id: uuid.UUID,
    cache: ResponseCache | None = None,
    client: ClientInfo | None = None,
) -> None:
    """Soft-delete an offline stream (owner or admin); its key stops working."""
    stream = await access_stream_for_owner(session=session, stream_id=stream_id, actor=actor, lock=True)
    if stream.status == StreamStatus.LIVE:
        raise Conflict("end the live broadcast before deleting the stream", code="stream_live")
    stream.deleted_at = utcnow()
    await session.flush()
    await _audit_if_not_owner(session, actor=actor, stream=stream, action="stream_delete", client=client)
    _invalidate(session, cache, LIVE_CACHE_TAG)


async def rotate_stream_key(
    *, session: AsyncSession, actor: User, stream_id: uuid.UUID, client: ClientInfo | None = None
) -> str:
    """Replace a stream's secret key (owner or admin); the old key stops matching at once."""
    stream = await access_stream_for_owner(session=session, stream_id=stream_id, actor=actor, lock=True)
    key = new_token()
    stream.stream_key_hash = token_hash(key)
    stream.key_rotated_at = utcnow()
    await session.flush()
    await _audit_if_not_owner(session, actor=actor, stream=stream, action="stream_key_rotate", client=client)
    return key


async def start_stream(
    *,
    session: AsyncSession,
    actor: User,
    stream_id: uuid.UUID,
    cache: ResponseCache | None = None,
    client: ClientInfo | None = None,
    on_air: OnAir | None = None,
) -> StreamView:
    """Go live (owner or admin): open a broadcast. Holds the stream's row lock, so racing starts
    open one broadcast and the others get ``already_live``; ``on_air`` hears of it after commit."""
    stream = await access_stream_for_owner(session=session, stream_id=stream_id, actor=actor, lock=True)
    if stream.status == StreamStatus.LIVE:
        raise Conflict("the stream is already live", code="already_live")
    owner = actor if actor.id == stream.owner_id else await session.get(User, stream.owner_id)
    if owner is None or not is_signed_in_allowed(owner):
        raise Forbidden("the stream's owner may not go live now", code="owner_not_active")
    if not owner.has_role("creator", "admin"):
        raise Forbidden("the stream's owner needs the creator role to go live", code="not_a_creator")
    now = utcnow()
    broadcast = Broadcast(
        id=uuid7(), stream_id=stream.id, started_at=now, title=stream.title, peak_viewers=0, created_at=now
    )
    session.add(broadcast)
    stream.status = StreamStatus.LIVE.value
    stream.current_broadcast_id = broadcast.id
    stream.started_at = now
    stream.viewer_count = 0
    stream.scheduled_start_at = None
    await session.flush()
    await _audit_if_not_owner(session, actor=actor, stream=stream, action="stream_start", client=client)
    _invalidate(session, cache, LIVE_CACHE_TAG)
    count_event("stream_start")
    events.emit(
        session,
        "stream.live",
        {
            "stream_id": stream.id,
            "broadcast_id": broadcast.id,
            "owner_id": stream.owner_id,
            "title": stream.title,
            "started_at": now,
        },
        actor_id=actor.id,
    )
    if on_air is not None:
        event = AirChange(stream.id, broadcast.id, True, now, stream.title)
        after_commit(session, lambda: on_air(event))
    return StreamView(stream, owner, await _category_slug(session, stream.category_id), broadcast)


async def end_stream(
    *,
    session: AsyncSession,
    actor: User,
    stream_id: uuid.UUID,
    cache: ResponseCache | None = None,
    client: ClientInfo | None = None,
    on_air: OnAir | None = None,
) -> StreamView:
    """Go off air (owner or admin): close the open broadcast, keep its peak, reset viewers."""
    stream = await access_stream_for_owner(session=session, stream_id=stream_id, actor=actor, lock=True)
    if stream.status != StreamStatus.LIVE:
        raise Conflict("the stream is not live", code="not_live")
    now = utcnow()
    ended_broadcast_id = stream.current_broadcast_id
    if stream.current_broadcast_id is not None:
        viewers = stream.viewer_count
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == stream.current_broadcast_id, Broadcast.ended_at.is_(None))
            .values(
                ended_at=now,
                duration_seconds=max(0, int((now - (stream.started_at or now)).total_seconds())),
                peak_viewers=case((Broadcast.peak_viewers < viewers, viewers), else_=Broadcast.peak_viewers),
            )
            .execution_options(synchronize_session=False)
        )
    stream.status = StreamStatus.OFFLINE.value
    stream.current_broadcast_id = None
    stream.started_at = None
    stream.viewer_count = 0
    await session.flush()
    await _audit_if_not_owner(session, actor=actor, stream=stream, action="stream_end", client=client)
    _invalidate(session, cache, LIVE_CACHE_TAG)
    count_event("stream_end")
    events.emit(
        session,
        "stream.offline",
        {"stream_id": stream.id, "broadcast_id": ended_broadcast_id, "owner_id": stream.owner_id, "ended_at": now},
        actor_id=actor.id,
    )
    if on_air is not None:
        event = AirChange(stream.id, ended_broadcast_id, False, now, stream.title)
        after_commit(session, lambda: on_air(event))
    return await _load_view(session, stream.id)


async def set_viewer_count(
    *, session: AsyncSession, stream_id: uuid.UUID, viewer_count: int, cache: ResponseCache | None = None
) -> bool:
    """Record a live stream's current audience and raise its broadcast's peak; False when not live."""
    if viewer_count < 0:
        raise InvalidInput("viewer_count must not be negative", code="invalid_viewer_count")
    broadcast_id = await session.scalar(
        update(Stream)
        .where(Stream.id == stream_id, Stream.status == StreamStatus.LIVE.value)
        .values(viewer_count=viewer_count)
        .returning(Stream.current_broadcast_id)
        .execution_options(synchronize_session=False)
    )
    if broadcast_id is None:
        return False
    await session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id)
        .values(peak_viewers=case((Broadcast.peak_viewers < viewer_count, viewer_count), else_=Broadcast.peak_viewers))
        .execution_options(synchronize_session=False)
    )
    _invalidate(session, cache, LIVE_CACHE_TAG)
    return True


async def _category_slug(session: AsyncSession, category_id: uuid.UUID | None) -> str | None:
    if category_id is None:
        return None
    return await session.scalar(select(Category.slug).where(Category.id == category_id))


async def list_broadcasts(
    *, session: AsyncSession, stream_id: uuid.UUID, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> ItemPage[Broadcast]:
    """A stream's broadcasts, newest first."""
    exists = await session.scalar(select(Stream.id).where(Stream.id == stream_id, Stream.deleted_at.is_(None)))
    if exists is None:
        raise NotFound("stream not found", code="stream_not_found")
    query = select(Broadcast).where(Broadcast.stream_id == stream_id)
    if cursor:
        started_at, last_id = _decode_time_cursor(cursor)
        query = query.where(tuple_(Broadcast.started_at, Broadcast.id) < tuple_(started_at, last_id))
    query = query.order_by(Broadcast.started_at.desc(), Broadcast.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return ItemPage(rows, encode_cursor(rows[-1].started_at, rows[-1].id) if more else None)


def _decode_time_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    at, last_id = decode_cursor(cursor, datetime, uuid.UUID)
    if at.tzinfo is None:
        raise InvalidInput("cursor is not valid; use next_cursor from a previous page", code="invalid_cursor")
    return at, last_id


async def list_owner_streams(
    *, session: AsyncSession, owner_id: uuid.UUID, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> ItemPage[StreamView]:
    """A creator's streams (not deleted), newest first."""
    query = _view_query().where(Stream.owner_id == owner_id)
    if cursor:
        created_at, last_id = _decode_time_cursor(cursor)
        query = query.where(tuple_(Stream.created_at, Stream.id) < tuple_(created_at, last_id))
    query = query.order_by(Stream.created_at.desc(), Stream.id.desc()).limit(limit + 1)
    views = [_view(row) for row in (await session.execute(query)).all()]
    more = len(views) > limit
    views = views[:limit]
    last = views[-1].stream if views else None
    return ItemPage(views, encode_cursor(last.created_at, last.id) if more and last else None)


async def list_streams_of(
    *, session: AsyncSession, owner: str, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> ItemPage[StreamView]:
    """The streams of the user named by id or username; ``NotFound`` when there is no such user."""
    owner_id = parse_uuid(owner)
    where = User.id == owner_id if owner_id is not None else User.username_key == owner.strip().lower()
    found = await session.scalar(select(User.id).where(where, User.status != UserStatus.DELETED.value))
    if found is None:
        raise NotFound(f"no user {owner!r}", code="user_not_found")
    return await list_owner_streams(session=session, owner_id=found, limit=limit, cursor=cursor)


async def list_live_streams(
    *,
    session: AsyncSession,
    sort: Literal["viewers", "recent"] = "viewers",
    category: str | None = None,
    language: str | None = None,
    region: str | None = None,
    q: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> ItemPage[LiveRow]:
    """Live streams, most watched (or most recently started) first, optionally filtered;
    ``q`` keeps those whose title contains it (any case)."""
    query = (
        select(*_LIVE_COLUMNS)
        .join(User, User.id == Stream.owner_id)
        .outerjoin(Category, Category.id == Stream.category_id)
        .where(Stream.status == StreamStatus.LIVE.value, Stream.deleted_at.is_(None))
    )
    if category is not None:
        query = query.where(
            Stream.category_id == select(Category.id).where(Category.slug == category).scalar_subquery()
        )
    if language is not None:
        query = query.where(Stream.language == language)
    if region is not None:
        query = query.where(Stream.region == region)
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Stream.title.ilike(f"%{escaped}%", escape="\\"))
    if sort == "viewers":
        if cursor:
            tag, count, last_id = decode_cursor(cursor, str, int, uuid.UUID)
            if tag != "v":
                raise InvalidInput("cursor belongs to another sort order", code="invalid_cursor")
            query = query.where(tuple_(Stream.viewer_count, Stream.id) < tuple_(count, last_id))
        query = query.order_by(Stream.viewer_count.desc(), Stream.id.desc())
    else:
        if cursor:
            tag, at, last_id = decode_cursor(cursor, str, datetime, uuid.UUID)
            if tag != "r" or at.tzinfo is None:
                raise InvalidInput("cursor belongs to another sort order", code="invalid_cursor")
            query = query.where(tuple_(Stream.started_at, Stream.id) < tuple_(at, last_id))
        query = query.order_by(Stream.started_at.desc(), Stream.id.desc())
    rows = list((await session.execute(query.limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = (
            encode_cursor("v", last.viewer_count, last.id)
            if sort == "viewers"
            else encode_cursor("r", last.started_at, last.id)
        )
    return ItemPage(rows, next_cursor)


async def list_categories(*, session: AsyncSession) -> list[Category]:
    """Active categories in display order."""
    query = select(Category).where(Category.is_active.is_(True)).order_by(Category.position, Category.name)
    return list((await session.scalars(query)).all())


async def _audit_category(
    session: AsyncSession,
    *,
    actor: User,
    category: Category,
    action: str,
    client: ClientInfo | None,
    details: dict[str, Any],
) -> None:
    await audit.record(
        session,
        action=action,
        actor_id=actor.id,
        target_type="category",
        target_id=category.id,
        ip=client.ip if client else None,
        user_agent=client.user_agent if client else None,
        details={"slug": category.slug, **details},
    )


async def create_category(
    *,
    session: AsyncSession,
    actor: User,
    slug: str,
    name: str,
    description: str = "",
    position: int = 0,
    cache: ResponseCache | None = None,
    client: ClientInfo | None = None,
) -> Category:
    """Add a category (admins); ``Conflict`` when the slug is taken, even by an inactive one."""
    taken = await session.scalar(select(Category.id).where(Category.slug == slug))
    if taken is not None:
        raise Conflict(f"a category with slug {slug!r} exists", code="category_exists")
    category = Category(id=uuid7(), slug=slug, name=name, description=description, position=position, is_active=True)
    try:
        async with session.begin_nested():
            session.add(category)
    except IntegrityError as exc:  # created by a concurrent request since the check above
        raise Conflict(f"a category with slug {slug!r} exists", code="category_exists") from exc
    await _audit_category(
        session, actor=actor, category=category, action="category_create", client=client, details={"name": name}
    )
    _invalidate(session, cache, CATEGORIES_CACHE_TAG)
    return category


async def _category_by_slug(session: AsyncSession, slug: str, *, lock: bool = False) -> Category:
    query = select(Category).where(Category.slug == slug.lower())
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    category = await session.scalar(query)
    if category is None:
        raise NotFound(f"no category {slug!r}", code="category_not_found")
    return category


async def update_category(
    *,
    session: AsyncSession,
    actor: User,
    slug: str,
    changes: CategoryChanges,
    cache: ResponseCache | None = None,
    client: ClientInfo | None = None,
) -> Category:
    """Edit a category (admins); ``is_active: true`` brings a deactivated one back."""
    category = await _category_by_slug(session, slug, lock=True)
    if "name" in changes:
        category.name = changes["name"]
    if "description" in changes:
        category.description = changes["description"]
    if "position" in changes:
        category.position = changes["position"]
    if "is_active" in changes:
        category.is_active = changes["is_active"]
    await session.flush()
    await _audit_category(
        session, actor=actor, category=category, action="category_update", client=client, details=dict(changes)
    )
    _invalidate(session, cache, CATEGORIES_CACHE_TAG)
    return category


async def deactivate_category(
    *,
    session: AsyncSession,
    actor: User,
    slug: str,
    cache: ResponseCache | None = None,
    client: ClientInfo | None = None,
) -> None:
    """Hide a category from listings and new streams (admins); existing streams keep it."""
    category = await _category_by_slug(session, slug, lock=True)
    category.is_active = False
    await session.flush()
    await _audit_category(
        session, actor=actor, category=category, action="category_deactivate", client=client, details={}
    )
    _invalidate(session, cache, CATEGORIES_CACHE_TAG)
