"""Media plane domain logic: ingest callbacks start/end broadcasts; recordings become VODs."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime
from pathlib import Path

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User, UserStatus
from halobuzz.core import events
from halobuzz.core.cache import ResponseCache
from halobuzz.core.clock import utcnow
from halobuzz.core.errors import Conflict, Forbidden, NotFound
from halobuzz.core.ids import parse_uuid
from halobuzz.core.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor
from halobuzz.core.storage import Storage
from halobuzz.media import ladder
from halobuzz.media.models import Recording
from halobuzz.streams import service as streams
from halobuzz.streams.models import Broadcast, Stream, StreamStatus


async def _owner(session: AsyncSession, stream: Stream) -> User:
    owner = await session.get(User, stream.owner_id)
    if owner is None:
        raise Forbidden("the stream's owner is gone", code="owner_not_active")
    return owner


async def publish_started(
    *, session: AsyncSession, key: str, cache: ResponseCache | None, on_air: streams.OnAir | None
) -> Stream:
    """A publisher connected with ``key``: go live (or keep the broadcast open when it reconnects
    within the grace period). Raises ``Forbidden`` for an unknown key or an owner who may not go live."""
    stream = await streams.find_stream_by_key(session=session, key=key)
    if stream is None:
        raise Forbidden("unknown stream key", code="bad_stream_key")
    if stream.status != StreamStatus.LIVE:
        owner = await _owner(session, stream)
        with contextlib.suppress(Conflict):  # a racing publish opened it
            await streams.start_stream(session=session, actor=owner, stream_id=stream.id, cache=cache, on_air=on_air)
    return stream


async def publisher_allowed(*, session: AsyncSession, key: str) -> bool:
    """Whether a connected publisher may keep publishing: its key is current and its stream live."""
    stream = await streams.find_stream_by_key(session=session, key=key)
    return stream is not None and stream.deleted_at is None and stream.status == StreamStatus.LIVE


async def publish_ended(
    *, session: AsyncSession, stream_id: uuid.UUID, cache: ResponseCache | None, on_air: streams.OnAir | None
) -> uuid.UUID | None:
    """End the broadcast after the grace period; returns the ended broadcast id (None when not live)."""
    stream = await session.get(Stream, stream_id)
    if stream is None or stream.status != StreamStatus.LIVE:
        return None
    broadcast_id = stream.current_broadcast_id
    owner = await _owner(session, stream)
    try:
        await streams.end_stream(session=session, actor=owner, stream_id=stream_id, cache=cache, on_air=on_air)
    except Conflict:
        return None
    return broadcast_id


CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".jpg": "image/jpeg",
    ".m4a": "audio/mp4",
}
VOD_CACHE = "public, max-age=31536000, immutable"


async def store_recording(
    *, session: AsyncSession, storage: Storage, stream_id: uuid.UUID, out_dir: Path, seconds: float
) -> Recording | None:
    """Copy a finished HLS directory into storage as a VOD (variant playlists closed) and record it,
    with its duration (the longest variant's summed segments), thumbnail and object list."""
    stream = await session.get(Stream, stream_id)
    has_master, files, has_thumbnail, has_video = await asyncio.to_thread(_scan, out_dir)
    if stream is None or not has_master:
        return None
    last = await session.scalar(
        select(Broadcast).where(Broadcast.stream_id == stream_id).order_by(Broadcast.started_at.desc()).limit(1)
    )
    rec_id = uuid.uuid4()
    prefix = f"vod/{stream_id}/{rec_id}"
    stored: list[str] = []
    size = 0
    duration = 0.0
    for path in files:
        data = await asyncio.to_thread(path.read_bytes)
        if path.name == "index.m3u8":
            data = _as_vod(data)
            duration = max(duration, ladder.playlist_seconds(data.decode()))
        rel = path.relative_to(out_dir).as_posix()
        await storage.put(f"{prefix}/{rel}", data, CONTENT_TYPES[path.suffix], cache_control=VOD_CACHE)
        stored.append(rel)
        size += len(data)
    if not duration and last is not None and last.duration_seconds:
        duration = float(last.duration_seconds)
    rec = Recording(
        id=rec_id,
        stream_id=stream_id,
        broadcast_id=last.id if last is not None else None,
        owner_id=stream.owner_id,
        title=last.title if last is not None else stream.title,
        storage_prefix=prefix,
        duration_seconds=max(0, round(duration or seconds)),
        has_thumbnail=has_thumbnail,
        audio_only=not has_video,
        files=stored,
        size_bytes=size,
    )
    session.add(rec)
    await session.flush()
    return rec


def _scan(out_dir: Path) -> tuple[bool, list[Path], bool, bool]:
    files = [p for p in out_dir.rglob("*") if p.is_file() and p.suffix in CONTENT_TYPES]
    return (out_dir / "master.m3u8").is_file(), files, (out_dir / "thumb.jpg").is_file(), (out_dir / "source").is_dir()


def _as_vod(playlist: bytes) -> bytes:
    """A live (EVENT) variant playlist closed as a VOD, whether or not ffmpeg wrote its end."""
    text = ladder.clean_playlist(playlist.decode()).replace("#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-PLAYLIST-TYPE:VOD")
    if "#EXT-X-ENDLIST" not in text:
        text = text.rstrip("\n") + "\n#EXT-X-ENDLIST\n"
    return text.encode()


def _page_query(where: object, limit: int, cursor: str | None) -> object:
    query = select(Recording).where(where, Recording.deleted_at.is_(None))  # type: ignore[arg-type]
    if cursor:
        at, rid = decode_cursor(cursor, datetime, uuid.UUID)
        query = query.where(or_(Recording.created_at < at, and_(Recording.created_at == at, Recording.id < rid)))
    return query.order_by(Recording.created_at.desc(), Recording.id.desc()).limit(limit + 1)


async def _page(session: AsyncSession, query: object, limit: int) -> tuple[list[Recording], str | None]:
    rows = list(await session.scalars(query))  # type: ignore[call-overload]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None)


async def list_recordings(
    *, session: AsyncSession, stream_id: uuid.UUID, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> tuple[list[Recording], str | None]:
    """A stream's VODs, newest first (cursor pages)."""
    return await _page(session, _page_query(Recording.stream_id == stream_id, limit, cursor), limit)


async def list_channel_recordings(
    *, session: AsyncSession, owner: str, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> tuple[list[Recording], str | None]:
    """Every VOD on a creator's channel (all their streams), newest first; ``owner`` is an id or username."""
    owner_id = parse_uuid(owner)
    where = User.id == owner_id if owner_id is not None else User.username_key == owner.strip().lower()
    found = await session.scalar(select(User.id).where(where, User.status != UserStatus.DELETED.value))
    if found is None:
        raise NotFound(f"no user {owner!r}", code="user_not_found")
    return await _page(session, _page_query(Recording.owner_id == found, limit, cursor), limit)


async def get_recording(*, session: AsyncSession, recording_id: uuid.UUID) -> Recording:
    """A recording that has not been deleted; ``NotFound`` otherwise."""
    rec = await session.get(Recording, recording_id)
    if rec is None or rec.deleted_at is not None:
        raise NotFound("recording not found", code="recording_not_found")
    return rec


RECORDING_DELETED = "media.recording_deleted"


async def delete_recording(*, session: AsyncSession, actor: User, recording_id: uuid.UUID) -> Recording:
    """Delete a VOD (its owner or an admin). The row is marked at once; its stored objects are
    removed after commit by the ``media.recording_deleted`` consumer (retried until done)."""
    rec = await session.get(Recording, recording_id, with_for_update=True)
    if rec is None or rec.deleted_at is not None:
        raise NotFound("recording not found", code="recording_not_found")
    if rec.owner_id != actor.id and not actor.has_role("admin"):
        raise Forbidden("only the owner may delete this recording", code="not_recording_owner")
    rec.deleted_at = utcnow()
    events.emit(
        session,
        RECORDING_DELETED,
        {"recording_id": rec.id, "stream_id": rec.stream_id, "prefix": rec.storage_prefix, "files": list(rec.files)},
        actor_id=actor.id,
    )
    await session.flush()
    return rec
