"""Routes: radio channels, their tracks, playlist and schedule, listener playback (docs/media.md)."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Response, UploadFile
from pydantic import BaseModel, Field, model_validator

from halobuzz.accounts.deps import CreatorUser, CurrentUser, OptionalUser
from halobuzz.core.db import after_commit
from halobuzz.core.deps import PageDep, RuntimeDep, SessionDep
from halobuzz.core.errors import Forbidden
from halobuzz.core.pagination import Page
from halobuzz.core.runtime import Runtime
from halobuzz.media import radio_service as service
from halobuzz.media import tokens
from halobuzz.media.api import serve_hls_file
from halobuzz.media.models import RadioChannel, RadioShow, RadioTrack
from halobuzz.media.plane import plane

router = APIRouter(tags=["radio"])
# Track uploads may exceed HTTP_MAX_UPLOAD_BYTES, up to MEDIA_RADIO_TRACK_MAX_BYTES.
RADIO_TRACK_UPLOAD = re.compile(r"^/api/v1/radio/channels/[^/]+/tracks$")
ChannelId = Annotated[uuid.UUID, Path(description="radio channel id")]
Name = Annotated[str, Field(min_length=1, max_length=80)]
Description = Annotated[str, Field(max_length=1000)]
Language = Annotated[str, Field(min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]
CategoryName = Annotated[str, Field(min_length=1, max_length=40)]
Zone = Annotated[str, Field(min_length=1, max_length=64)]


class NowPlaying(BaseModel):
    kind: Literal["track", "show"]
    title: str
    track_id: uuid.UUID | None = None
    show_id: uuid.UUID | None = None
    host_id: uuid.UUID | None = None
    stream_id: uuid.UUID | None = None
    started_at: datetime | None = None


class ChannelOut(BaseModel):
    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str
    language: str
    category: str
    timezone: str
    listener_count: int
    now_playing: NowPlaying | None
    created_at: datetime


class ChannelIn(BaseModel):
    name: Name
    description: Description = ""
    language: Language = "en"
    category: CategoryName = "radio"
    timezone: Zone = "UTC"


class ChannelPatch(BaseModel):
    name: Name | None = None
    description: Description | None = None
    language: Language | None = None
    category: CategoryName | None = None
    timezone: Zone | None = None


async def channel_out(c: RadioChannel, rt: Runtime) -> ChannelOut:
    window = rt.settings.media.listener_window_seconds
    listeners = await rt.kv.seen(service.listeners_key(c.id), "", window)
    now = service.parse_now_playing(await rt.kv.get(service.now_playing_key(c.id)))
    return ChannelOut(
        id=c.id, owner_id=c.owner_id, name=c.name, description=c.description, language=c.language,
        category=c.category, timezone=c.timezone, listener_count=listeners,
        now_playing=NowPlaying(**now) if now else None, created_at=c.created_at,
    )  # fmt: skip


def _poke(session: Any, rt: Runtime) -> None:
    """Changes reach the playout of this process at once (others poll every MEDIA_RADIO_POLL_SECONDS)."""

    def wake() -> None:
        radio = plane(rt).radio if "media" in rt.extras else None
        if radio is not None:
            radio.poke()

    after_commit(session, wake)


@router.post("/radio/channels", response_model=ChannelOut, status_code=201, summary="Create a radio channel")
async def create_channel(body: ChannelIn, session: SessionDep, user: CreatorUser, rt: RuntimeDep) -> ChannelOut:
    channel = await service.create_channel(session=session, actor=user, **body.model_dump())
    _poke(session, rt)
    return await channel_out(channel, rt)


@router.get("/radio/channels", response_model=Page[ChannelOut], summary="Radio channels, with now playing")
async def list_channels(
    session: SessionDep, rt: RuntimeDep, page: PageDep, owner_id: uuid.UUID | None = None
) -> Page[ChannelOut]:
    rows, cursor = await service.list_channels(session=session, limit=page.limit, cursor=page.cursor, owner_id=owner_id)
    return Page(items=[await channel_out(c, rt) for c in rows], next_cursor=cursor)


@router.get("/radio/channels/{channel_id}", response_model=ChannelOut, summary="A radio channel")
async def get_channel(channel_id: ChannelId, session: SessionDep, rt: RuntimeDep) -> ChannelOut:
    return await channel_out(await service.get_channel(session=session, channel_id=channel_id), rt)


@router.patch("/radio/channels/{channel_id}", response_model=ChannelOut, summary="Change a channel (owner)")
async def update_channel(
    channel_id: ChannelId, body: ChannelPatch, session: SessionDep, user: CurrentUser, rt: RuntimeDep
) -> ChannelOut:
    changes: service.ChannelChanges = body.model_dump(exclude_none=True)  # type: ignore[assignment]
    channel = await service.update_channel(session=session, actor=user, channel_id=channel_id, changes=changes)
    _poke(session, rt)
    return await channel_out(channel, rt)


@router.delete("/radio/channels/{channel_id}", status_code=204, summary="Delete a channel (owner)")
async def delete_channel(channel_id: ChannelId, session: SessionDep, user: CurrentUser, rt: RuntimeDep) -> Response:
    await service.delete_channel(session=session, actor=user, channel_id=channel_id)
    _poke(session, rt)
    return Response(status_code=204)


class TrackOut(BaseModel):
    id: uuid.UUID
    channel_id: uuid.UUID
    title: str
    position: int
    duration_seconds: float
    size_bytes: int
    renditions: list[str]
    created_at: datetime


def _track_out(t: RadioTrack) -> TrackOut:
    return TrackOut(
        id=t.id, channel_id=t.channel_id, title=t.title, position=t.position, duration_seconds=t.duration_ms / 1000,
        size_bytes=t.size_bytes, renditions=list(t.renditions), created_at=t.created_at,
    )  # fmt: skip


class TrackList(BaseModel):
    items: list[TrackOut]


@router.post(
    "/radio/channels/{channel_id}/tracks", response_model=TrackOut, status_code=201, summary="Upload a track (owner)"
)
async def upload_track(
    channel_id: ChannelId,
    session: SessionDep,
    user: CurrentUser,
    rt: RuntimeDep,
    file: Annotated[UploadFile, File(description="an audio file (anything ffmpeg reads)")],
    title: Annotated[str, Form(max_length=140)] = "",
) -> TrackOut:
    await service.access_channel_for_owner(session=session, channel_id=channel_id, actor=user)
    data = await file.read(rt.settings.media.radio_track_max_bytes + 1)
    # The transcode takes a while: end the read transaction (on SQLite it holds the write lock)
    # before it, and store the result in a new one.
    await session.commit()
    prepared = await service.prepare_track(settings=rt.settings, data=data)
    try:
        default_title = (file.filename or "").rsplit(".", 1)[0][:140]
        track = await service.add_track(
            session=session, storage=rt.storage, actor=user, channel_id=channel_id,
            title=title or default_title, prepared=prepared,
        )  # fmt: skip
    finally:
        prepared.cleanup()
    _poke(session, rt)
    return _track_out(track)


@router.get("/radio/channels/{channel_id}/tracks", response_model=TrackList, summary="A channel's playlist")
async def list_tracks(channel_id: ChannelId, session: SessionDep) -> TrackList:
    return TrackList(items=[_track_out(t) for t in await service.list_tracks(session=session, channel_id=channel_id)])


class PlaylistIn(BaseModel):
    track_ids: list[uuid.UUID] = Field(max_length=10_000)


@router.put("/radio/channels/{channel_id}/playlist", response_model=TrackList, summary="Order the playlist (owner)")
async def reorder(
    channel_id: ChannelId, body: PlaylistIn, session: SessionDep, user: CurrentUser, rt: RuntimeDep
) -> TrackList:
    rows = await service.reorder_tracks(session=session, actor=user, channel_id=channel_id, track_ids=body.track_ids)
    _poke(session, rt)
    return TrackList(items=[_track_out(t) for t in rows])


@router.delete("/radio/channels/{channel_id}/tracks/{track_id}", status_code=204, summary="Remove a track (owner)")
async def delete_track(
    channel_id: ChannelId, track_id: uuid.UUID, session: SessionDep, user: CurrentUser, rt: RuntimeDep
) -> Response:
    await service.delete_track(session=session, actor=user, channel_id=channel_id, track_id=track_id)
    _poke(session, rt)
    return Response(status_code=204)


class ShowIn(BaseModel):
    title: Annotated[str, Field(min_length=1, max_length=140)]
    host_id: uuid.UUID
    stream_id: uuid.UUID
    duration_minutes: Annotated[int, Field(ge=1, le=1440)]
    weekday: Annotated[int | None, Field(ge=0, le=6, description="0 = Monday (weekly slots)")] = None
    start_time: Annotated[
        str | None, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM local (weekly slots)")
    ] = None
    starts_at: Annotated[datetime | None, Field(description="a dated slot; without offset: channel-local")] = None

    @model_validator(mode="after")
    def _one_kind(self) -> ShowIn:
        weekly = self.weekday is not None or self.start_time is not None
        if weekly == (self.starts_at is not None) or (weekly and (self.weekday is None or self.start_time is None)):
            raise ValueError("give either weekday and start_time (weekly) or starts_at (dated)")
        return self


class ShowOut(BaseModel):
    id: uuid.UUID
    channel_id: uuid.UUID
    title: str
    host_id: uuid.UUID
    stream_id: uuid.UUID
    kind: Literal["weekly", "dated"]
    weekday: int | None
    start_time: str | None
    starts_at: datetime | None
    duration_minutes: int


class ShowList(BaseModel):
    items: list[ShowOut]


def _show_out(s: RadioShow) -> ShowOut:
    start = f"{s.start_minute // 60:02d}:{s.start_minute % 60:02d}" if s.start_minute is not None else None
    return ShowOut(
        id=s.id, channel_id=s.channel_id, title=s.title, host_id=s.host_id, stream_id=s.stream_id,
        kind="dated" if s.starts_at is not None else "weekly", weekday=s.weekday, start_time=start,
        starts_at=s.starts_at, duration_minutes=s.duration_minutes,
    )  # fmt: skip


@router.post(
    "/radio/channels/{channel_id}/shows", response_model=ShowOut, status_code=201, summary="Schedule a show (owner)"
)
async def create_show(
    channel_id: ChannelId, body: ShowIn, session: SessionDep, user: CurrentUser, rt: RuntimeDep
) -> ShowOut:
    start_minute = None
    if body.start_time is not None:
        hh, mm = body.start_time.split(":")
        start_minute = int(hh) * 60 + int(mm)
    show = await service.create_show(
        session=session, actor=user, channel_id=channel_id, title=body.title, host_id=body.host_id,
        stream_id=body.stream_id, duration_minutes=body.duration_minutes, weekday=body.weekday,
        start_minute=start_minute, starts_at=body.starts_at,
    )  # fmt: skip
    _poke(session, rt)
    return _show_out(show)


@router.get("/radio/channels/{channel_id}/shows", response_model=ShowList, summary="A channel's schedule")
async def list_shows(channel_id: ChannelId, session: SessionDep) -> ShowList:
    return ShowList(items=[_show_out(s) for s in await service.list_shows(session=session, channel_id=channel_id)])


@router.delete("/radio/channels/{channel_id}/shows/{show_id}", status_code=204, summary="Unschedule a show (owner)")
async def delete_show(
    channel_id: ChannelId, show_id: uuid.UUID, session: SessionDep, user: CurrentUser, rt: RuntimeDep
) -> Response:
    await service.delete_show(session=session, actor=user, channel_id=channel_id, show_id=show_id)
    _poke(session, rt)
    return Response(status_code=204)


class RadioPlaybackOut(BaseModel):
    url: str
    expires_at: datetime
    listener_id: str


@router.get(
    "/radio/channels/{channel_id}/playback", response_model=RadioPlaybackOut, summary="Signed HLS URL of a channel"
)
async def playback(channel_id: ChannelId, session: SessionDep, rt: RuntimeDep, user: OptionalUser) -> RadioPlaybackOut:
    """A listener token (a signed-in user counts once on every device; others get a fresh id)."""
    await service.get_channel(session=session, channel_id=channel_id)
    expires = int(time.time()) + rt.settings.media.playback_ttl_seconds
    listener = user.id.hex if user is not None else None
    token = tokens.sign_listener(tokens.playback_secret(rt.settings), channel_id, expires, listener)
    return RadioPlaybackOut(
        url=f"/api/v1/media/radio/{channel_id}/{token}/master.m3u8",
        expires_at=datetime.fromtimestamp(expires, UTC),
        listener_id=token.split(".")[1],
    )


@router.get("/media/radio/{channel_id}/{token}/{path:path}", include_in_schema=False)
async def radio_hls(channel_id: ChannelId, token: str, path: str, rt: RuntimeDep) -> Response:
    """A channel's playlists and segments, only with a valid listener token (counted as listening)."""
    listener = tokens.verify_listener(tokens.playback_secret(rt.settings), channel_id, token, now=time.time())
    if listener is None:
        raise Forbidden("invalid or expired playback token", code="bad_playback_token")
    from halobuzz.media.radio import radio_root

    response = serve_hls_file(radio_root(rt) / str(channel_id), path)
    await rt.kv.seen(service.listeners_key(channel_id), listener, rt.settings.media.listener_window_seconds)
    return response
