"""Radio channels (Awaz Pulse): channels, uploaded tracks (checked by ffprobe, transcoded once to
the AAC ladder), the playlist order and the weekly/dated show schedule. Playout is ``radio.py``."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User, UserStatus
from halobuzz.config import Settings
from halobuzz.core import events
from halobuzz.core.clock import utcnow
from halobuzz.core.errors import Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from halobuzz.core.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor
from halobuzz.core.storage import Storage
from halobuzz.media import ladder
from halobuzz.media.models import RadioChannel, RadioShow, RadioTrack, StreamGuest
from halobuzz.media.supervisor import find_ffprobe
from halobuzz.streams.models import Stream

TRACK_DELETED = "radio.track_deleted"
# Uploads are read only as plain audio containers from the local file: no playlists, no concat
# lists, no network or other protocols (an uploaded HLS or concat file could reference any URL/file).
INPUT_GUARD = [
    "-format_whitelist", "mov,mp4,m4a,3gp,3g2,mj2,mp3,wav,flac,ogg,matroska,webm,aac,aiff,caf,w64",
    "-protocol_whitelist", "file",
]  # fmt: skip
WEEK_MINUTES = 7 * 24 * 60
SEGMENT_CACHE = "public, max-age=31536000, immutable"


class ChannelChanges(TypedDict, total=False):
    name: str
    description: str
    language: str
    category: str
    timezone: str


def check_timezone(name: str) -> str:
    """An IANA zone name; ``InvalidInput`` otherwise."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {name!r}", code="invalid_timezone") from exc
    return name


async def get_channel(*, session: AsyncSession, channel_id: uuid.UUID) -> RadioChannel:
    """A channel that has not been deleted; ``NotFound`` otherwise."""
    channel = await session.get(RadioChannel, channel_id)
    if channel is None or channel.deleted_at is not None:
        raise NotFound("radio channel not found", code="channel_not_found")
    return channel


async def access_channel_for_owner(
    *, session: AsyncSession, channel_id: uuid.UUID, actor: User, lock: bool = False
) -> RadioChannel:
    """The channel when ``actor`` owns it (or is an admin); ``lock`` takes its row lock, which
    serialises playlist and schedule changes of one channel."""
    channel = await session.get(RadioChannel, channel_id, with_for_update=lock, populate_existing=lock)
    if channel is None or channel.deleted_at is not None:
        raise NotFound("radio channel not found", code="channel_not_found")
    if channel.owner_id != actor.id and not actor.has_role("admin"):
        raise Forbidden("only the channel's owner may change it", code="not_channel_owner")
    return channel


async def create_channel(
    *,
    session: AsyncSession,
    actor: User,
    name: str,
    description: str = "",
    language: str = "en",
    category: str = "radio",
    timezone: str = "UTC",
) -> RadioChannel:
    """Create a radio channel owned by ``actor``."""
    channel = RadioChannel(
        owner_id=actor.id, name=name.strip(), description=description, language=language,
        category=category, timezone=check_timezone(timezone),
    )  # fmt: skip
    if not channel.name:
        raise InvalidInput("the name must not be blank", code="invalid_name")
    session.add(channel)
    await session.flush()
    return channel


async def update_channel(
    *, session: AsyncSession, actor: User, channel_id: uuid.UUID, changes: ChannelChanges
) -> RadioChannel:
    """Change a channel's name, description, language, category or time zone."""
    channel = await access_channel_for_owner(session=session, channel_id=channel_id, actor=actor, lock=True)
    if "timezone" in changes:
        check_timezone(changes["timezone"])
    if "name" in changes and not changes["name"].strip():
        raise InvalidInput("the name must not be blank", code="invalid_name")
    for key, value in changes.items():
        setattr(channel, key, value.strip() if isinstance(value, str) and key == "name" else value)
    await session.flush()
    return channel


async def delete_channel(*, session: AsyncSession, actor: User, channel_id: uuid.UUID) -> None:
    """Delete a channel: hidden at once, its playout stops; its tracks' objects are purged by the
    ``radio.track_deleted`` consumer."""
    channel = await access_channel_for_owner(session=session, channel_id=channel_id, actor=actor, lock=True)
    channel.deleted_at = utcnow()
    for track in await session.scalars(select(RadioTrack).where(RadioTrack.channel_id == channel.id)):
        _emit_track_deleted(session, track, actor)
    await session.flush()


async def list_channels(
    *, session: AsyncSession, limit: int = DEFAULT_LIMIT, cursor: str | None = None, owner_id: uuid.UUID | None = None
) -> tuple[list[RadioChannel], str | None]:
    """Channels, newest first (cursor pages)."""
    query = select(RadioChannel).where(RadioChannel.deleted_at.is_(None))
    if owner_id is not None:
        query = query.where(RadioChannel.owner_id == owner_id)
    if cursor:
        at, cid = decode_cursor(cursor, datetime, uuid.UUID)
        query = query.where(
            or_(RadioChannel.created_at < at, and_(RadioChannel.created_at == at, RadioChannel.id < cid))
        )
    rows = list(
        await session.scalars(query.order_by(RadioChannel.created_at.desc(), RadioChannel.id.desc()).limit(limit + 1))
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None)


# ------------------------------------------------------------------------------------- tracks


@dataclass
class PreparedTrack:
    """An upload that passed the checks, transcoded into ``out_dir/<rendition>/seg_NNNNN.ts``."""

    out_dir: Path
    duration: float
    size_bytes: int
    renditions: list[str]
    segments: list[float] = field(default_factory=list)

    def cleanup(self) -> None:
        shutil.rmtree(self.out_dir.parent, ignore_errors=True)


async def _run(argv: list[str], limit_seconds: float) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_seconds)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, b"", b"timed out"
    return proc.returncode or 0, out, err


def _audio_shape(raw: bytes) -> tuple[bool, bool, float]:
    """(has audio, has real video, duration) from ffprobe JSON; cover art does not count as video."""
    try:
        info = json.loads(raw or b"{}")
    except ValueError:
        return False, False, 0.0
    streams = info.get("streams", [])
    audio = any(s.get("codec_type") == "audio" for s in streams)
    video = any(
        s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic") for s in streams
    )
    try:
        duration = float((info.get("format") or {}).get("duration") or 0)
    except ValueError:
        duration = 0.0
    return audio, video, duration


async def prepare_track(*, settings: Settings, data: bytes) -> PreparedTrack:
    """Check an upload with ffprobe (audio only, duration ≤ MEDIA_RADIO_TRACK_MAX_SECONDS, size ≤
    MEDIA_RADIO_TRACK_MAX_BYTES) and transcode it once to the AAC ladder as HLS segments."""
    media = settings.media
    if not data:
        raise InvalidInput("the uploaded file is empty", code="invalid_audio")
    if len(data) > media.radio_track_max_bytes:
        raise PayloadTooLarge(f"tracks are limited to {media.radio_track_max_bytes} bytes", code="track_too_large")
    work = Path(tempfile.mkdtemp(prefix="halobuzz-track-"))
    try:
        src = work / "upload"
        await asyncio.to_thread(src.write_bytes, data)
        code, out, _ = await _run(
            [
                find_ffprobe(settings),
                "-v",
                "error",
                *INPUT_GUARD,
                "-show_format",
                "-show_streams",
                "-of",
                "json",
                str(src),
            ],
            60,
        )
        has_audio, has_video, duration = _audio_shape(out) if code == 0 else (False, False, 0.0)
        if not has_audio or has_video or duration <= 0:
            raise InvalidInput("the file is not an audio file ffprobe can read", code="invalid_audio")
        if duration > media.radio_track_max_seconds:
            raise InvalidInput(f"tracks are limited to {media.radio_track_max_seconds} seconds", code="track_too_long")
        out_dir = work / "out"
        argv, renditions = ladder.audio_command(media, str(src), out_dir)
        argv = [a for a in argv if a not in ("-rw_timeout", "15000000")]
        i = argv.index("-i")
        argv[i:i] = INPUT_GUARD
        # A finished file, not an event: a VOD playlist per rendition, segments numbered from 0.
        i = argv.index("-hls_playlist_type")
        argv[i + 1] = "vod"
        i = argv.index("-hls_flags")
        argv[i + 1] = "independent_segments"
        for r in renditions:
            (out_dir / r.name).mkdir(parents=True, exist_ok=True)
        code, _, err = await _run(argv, max(120.0, duration))
        if code != 0:
            raise InvalidInput(
                "the audio could not be transcoded",
                code="invalid_audio",
                details={"ffmpeg": err.decode(errors="replace")[-300:]},
            )
        lists = [_durations((out_dir / r.name / "index.m3u8").read_text()) for r in renditions]
        if not lists[0] or any(len(x) != len(lists[0]) for x in lists):
            raise InvalidInput("the audio could not be segmented", code="invalid_audio")
        return PreparedTrack(out_dir, duration, len(data), [r.name for r in renditions], lists[0])
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _durations(playlist: str) -> list[float]:
    out: list[float] = []
    for line in playlist.splitlines():
        if line.startswith("#EXTINF:"):
            out.append(round(float(line[8:].split(",", 1)[0]), 3))
    return out


def track_segment_key(prefix: str, rendition: str, index: int) -> str:
    return f"{prefix}/{rendition}/seg_{index:05d}.ts"


async def add_track(
    *, session: AsyncSession, storage: Storage, actor: User, channel_id: uuid.UUID, title: str, prepared: PreparedTrack
) -> RadioTrack:
    """Store a prepared track's segments and append it to the channel's playlist."""
    channel = await access_channel_for_owner(session=session, channel_id=channel_id, actor=actor, lock=True)
    track_id = uuid.uuid4()
    prefix = f"radio/{channel.id}/tracks/{track_id}"
    for rendition in prepared.renditions:
        for i in range(len(prepared.segments)):
            path = prepared.out_dir / rendition / f"seg_{i:05d}.ts"
            data = await asyncio.to_thread(path.read_bytes)
            await storage.put(track_segment_key(prefix, rendition, i), data, "video/mp2t", cache_control=SEGMENT_CACHE)
    last = await session.scalar(select(func.max(RadioTrack.position)).where(RadioTrack.channel_id == channel.id))
    track = RadioTrack(
        id=track_id, channel_id=channel.id, title=title.strip() or "Untitled",
        position=(last + 1) if last is not None else 0, duration_ms=round(prepared.duration * 1000),
        size_bytes=prepared.size_bytes, storage_prefix=prefix, segments=prepared.segments,
        renditions=prepared.renditions,
    )  # fmt: skip
    session.add(track)
    await session.flush()
    return track


async def list_tracks(*, session: AsyncSession, channel_id: uuid.UUID) -> list[RadioTrack]:
    """A channel's tracks in playlist order."""
    await get_channel(session=session, channel_id=channel_id)
    query = select(RadioTrack).where(RadioTrack.channel_id == channel_id)
    return list(await session.scalars(query.order_by(RadioTrack.position, RadioTrack.id)))


async def reorder_tracks(
    *, session: AsyncSession, actor: User, channel_id: uuid.UUID, track_ids: list[uuid.UUID]
) -> list[RadioTrack]:
    """Set the playlist order; ``track_ids`` must name every track of the channel exactly once."""
    await access_channel_for_owner(session=session, channel_id=channel_id, actor=actor, lock=True)
    tracks = {t.id: t for t in await session.scalars(select(RadioTrack).where(RadioTrack.channel_id == channel_id))}
    if len(track_ids) != len(set(track_ids)) or set(track_ids) != set(tracks):
        raise InvalidInput(
            "track_ids must list every track of the channel exactly once", code="invalid_playlist",
            details={"expected": len(tracks), "given": len(track_ids)},
        )  # fmt: skip
    for position, tid in enumerate(track_ids):
        tracks[tid].position = position
    await session.flush()
    return [tracks[t] for t in track_ids]


def _emit_track_deleted(session: AsyncSession, track: RadioTrack, actor: User) -> None:
    files = [track_segment_key("", r, i).lstrip("/") for r in track.renditions for i in range(len(track.segments))]
    events.emit(
        session, TRACK_DELETED,
        {"track_id": track.id, "channel_id": track.channel_id, "prefix": track.storage_prefix, "files": files},
        actor_id=actor.id,
    )  # fmt: skip


async def delete_track(*, session: AsyncSession, actor: User, channel_id: uuid.UUID, track_id: uuid.UUID) -> None:
    """Remove a track from the playlist; its objects are purged after commit."""
    await access_channel_for_owner(session=session, channel_id=channel_id, actor=actor, lock=True)
    track = await session.get(RadioTrack, track_id)
    if track is None or track.channel_id != channel_id:
        raise NotFound("track not found", code="track_not_found")
    _emit_track_deleted(session, track, actor)
    await session.delete(track)
    await session.flush()


# --------------------------------------------------------------------------------------- shows


@dataclass(frozen=True, slots=True)
class Slot:
    """A show's time: ``week_start`` (local minutes after Monday 00:00) for weekly slots, or an
    absolute ``start`` for dated ones; ``minutes`` long."""

    minutes: int
    week_start: int | None = None
    start: datetime | None = None


def slot_of(show: RadioShow) -> Slot:
    if show.starts_at is not None:
        return Slot(show.duration_minutes, start=show.starts_at)
    assert show.weekday is not None and show.start_minute is not None
    return Slot(show.duration_minutes, week_start=show.weekday * 1440 + show.start_minute)


def _week_minute(at: datetime, tz: zoneinfo.ZoneInfo) -> int:
    local = at.astimezone(tz)
    return local.weekday() * 1440 + local.hour * 60 + local.minute


def _circle_overlap(a0: int, ad: int, b0: int, bd: int) -> bool:
    return (b0 - a0) % WEEK_MINUTES < ad or (a0 - b0) % WEEK_MINUTES < bd


def overlaps(a: Slot, b: Slot, tz: zoneinfo.ZoneInfo) -> bool:
    """Whether two slots of one channel share a minute (weekly slots repeat every local week)."""
    if a.start is not None and b.start is not None:
        return a.start < b.start + timedelta(minutes=b.minutes) and b.start < a.start + timedelta(minutes=a.minutes)
    a0 = a.week_start if a.week_start is not None else _week_minute(a.start, tz)  # type: ignore[arg-type]
    b0 = b.week_start if b.week_start is not None else _week_minute(b.start, tz)  # type: ignore[arg-type]
    return _circle_overlap(a0, a.minutes, b0, b.minutes)


def slot_running(slot: Slot, now: datetime, tz: zoneinfo.ZoneInfo) -> bool:
    """Whether ``now`` falls inside the slot."""
    if slot.start is not None:
        return slot.start <= now < slot.start + timedelta(minutes=slot.minutes)
    assert slot.week_start is not None
    return (_week_minute(now, tz) - slot.week_start) % WEEK_MINUTES < slot.minutes


def current_show(shows: list[RadioShow], now: datetime, timezone: str) -> RadioShow | None:
    """The show whose slot is running at ``now`` in the channel's zone (slots never overlap)."""
    tz = zoneinfo.ZoneInfo(timezone)
    return next((s for s in shows if slot_running(slot_of(s), now, tz)), None)


async def create_show(
    *,
    session: AsyncSession,
    actor: User,
    channel_id: uuid.UUID,
    title: str,
    host_id: uuid.UUID,
    stream_id: uuid.UUID,
    duration_minutes: int,
    weekday: int | None = None,
    start_minute: int | None = None,
    starts_at: datetime | None = None,
) -> RadioShow:
    """Schedule a show: weekly (``weekday`` + ``start_minute``, local) or dated (``starts_at``; a
    naive time is local to the channel). The host's linked stream must be theirs and audio-only;
    a host other than the channel's owner must have invited the owner to that stream (consent).
    Overlapping slots are refused (409); the channel's row lock serialises concurrent schedulers."""
    channel = await access_channel_for_owner(session=session, channel_id=channel_id, actor=actor, lock=True)
    tz = zoneinfo.ZoneInfo(channel.timezone)
    if (starts_at is None) == (weekday is None or start_minute is None):
        raise InvalidInput("give either weekday and start time, or starts_at", code="invalid_slot")
    if starts_at is not None and starts_at.tzinfo is None:
        starts_at = starts_at.replace(tzinfo=tz)
    host = await session.get(User, host_id)
    if host is None or host.status == UserStatus.DELETED.value:
        raise InvalidInput("the host does not exist", code="host_not_found")
    stream = await session.get(Stream, stream_id)
    if stream is None or stream.deleted_at is not None or stream.owner_id != host_id:
        raise InvalidInput("the linked stream must be one of the host's streams", code="invalid_stream")
    if not stream.audio_only:
        raise InvalidInput("the linked stream must be audio-only", code="stream_not_audio")
    if host_id != channel.owner_id and not await _host_consents(session, stream.id, channel.owner_id):
        raise Forbidden(
            "another user's stream is carried only after they invite the channel's owner as a co-host",
            code="host_not_consenting",
        )
    if starts_at is not None and starts_at + timedelta(minutes=duration_minutes) <= utcnow():
        raise InvalidInput("the slot is over already", code="slot_in_past")
    show = RadioShow(
        channel_id=channel.id, title=title.strip() or "Show", host_id=host_id, stream_id=stream_id,
        weekday=weekday if starts_at is None else None, start_minute=start_minute if starts_at is None else None,
        starts_at=starts_at, duration_minutes=duration_minutes,
    )  # fmt: skip
    new = slot_of(show)
    for other in await session.scalars(select(RadioShow).where(RadioShow.channel_id == channel.id)):
        if overlaps(new, slot_of(other), tz):
            raise Conflict("the slot overlaps another show", code="show_overlap", details={"show_id": str(other.id)})
    session.add(show)
    await session.flush()
    return show


async def _host_consents(session: AsyncSession, stream_id: uuid.UUID, channel_owner: uuid.UUID) -> bool:
    """A host agrees to be carried by inviting the channel's owner to their stream (co-host)."""
    found = await session.scalar(
        select(StreamGuest.user_id).where(StreamGuest.stream_id == stream_id, StreamGuest.user_id == channel_owner)
    )
    return found is not None


async def list_shows(*, session: AsyncSession, channel_id: uuid.UUID) -> list[RadioShow]:
    """A channel's schedule."""
    await get_channel(session=session, channel_id=channel_id)
    query = select(RadioShow).where(RadioShow.channel_id == channel_id)
    return list(await session.scalars(query.order_by(RadioShow.starts_at, RadioShow.weekday, RadioShow.start_minute)))


async def delete_show(*, session: AsyncSession, actor: User, channel_id: uuid.UUID, show_id: uuid.UUID) -> None:
    """Take a show off the schedule."""
    await access_channel_for_owner(session=session, channel_id=channel_id, actor=actor, lock=True)
    done = await session.execute(delete(RadioShow).where(RadioShow.id == show_id, RadioShow.channel_id == channel_id))
    if not getattr(done, "rowcount", 0):
        raise NotFound("show not found", code="show_not_found")


def now_playing_key(channel_id: uuid.UUID) -> str:
    return f"radio:now:{channel_id}"


def listeners_key(channel_id: uuid.UUID) -> str:
    return f"radio:listeners:{channel_id}"


def parse_now_playing(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
