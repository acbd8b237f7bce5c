"""Routes: ingest callbacks (internal), playback URLs, token-checked HLS, recordings (VOD), health."""

from __future__ import annotations

import hmac
import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path as FsPath
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse
from pydantic import BaseModel
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from halobuzz.accounts.deps import CurrentUser
from halobuzz.core.db import after_commit
from halobuzz.core.deps import PageDep, RequestMetaDep, RuntimeDep, SessionDep
from halobuzz.core.errors import Conflict, Forbidden, InvalidInput, NotFound, error_response
from halobuzz.core.pagination import Page
from halobuzz.core.runtime import Runtime
from halobuzz.core.storage import LocalStorage, ObjectNotFound
from halobuzz.media import guests, ladder, service, tokens
from halobuzz.media.models import Recording, StreamGuest
from halobuzz.media.plane import health_key, plane
from halobuzz.media.supervisor import hls_root
from halobuzz.streams import service as streams
from halobuzz.streams.models import Stream, StreamStatus

router = APIRouter(tags=["media"])
StreamId = Annotated[uuid.UUID, Path(description="stream id")]
RecordingId = Annotated[uuid.UUID, Path(description="recording id")]
UserRef = Annotated[str, Path(min_length=1, max_length=64, description="a user id or username")]

PLAYLIST_CACHE = "public, max-age=1"
SEGMENT_CACHE = "public, max-age=86400, immutable"
SOURCE_SCHEMES = ("rtmp", "http", "srt")


# Storage prefixes that are played only with a token (through the API), never as public files.
PROTECTED_PREFIXES = ("vod/", "radio/")


class PublicStorageFiles(StaticFiles):
    """The local storage backend's public files (``/media/…``: avatars, covers); recordings and
    radio tracks under ``PROTECTED_PREFIXES`` get 403 here and play through signed API URLs."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        clean = path.replace("\\", "/").lstrip("/")
        while "//" in clean:
            clean = clean.replace("//", "/")
        if any(clean.startswith(p) or clean == p.rstrip("/") for p in PROTECTED_PREFIXES):
            message = "this file plays only through a signed playback URL"
            return error_response(Request(scope), 403, "media_needs_token", message)
        return await super().get_response(path, scope)


def check_internal(request: Request, rt: Runtime, ip: str) -> None:
    """Ingest callbacks come from nginx or `halobuzz media`: the shared secret, or an allowed address."""
    media = rt.settings.media
    if media.callback_secret is not None:
        given = request.query_params.get("secret", "")
        if hmac.compare_digest(given.encode(), media.callback_secret.get_secret_value().encode()):
            return
        raise Forbidden("bad callback secret", code="forbidden")
    allowed = {a.strip() for a in media.callback_allow.split(",") if a.strip()}
    if ip not in allowed:
        raise Forbidden("callbacks are internal", code="forbidden")


@router.post("/media/hooks/on_publish", include_in_schema=False)
async def on_publish(request: Request, session: SessionDep, rt: RuntimeDep, meta: RequestMetaDep) -> Response:
    """nginx-rtmp / `halobuzz media` on_publish: 2xx accepts the publisher, 403 refuses it.

    ``name`` is the stream key; `halobuzz media` adds ``source``, where transcoders pull the stream."""
    check_internal(request, rt, meta.ip)
    form = await request.form()
    key = str(form.get("name") or "").split("?", 1)[0]
    source = str(form.get("source") or "") or None
    if source is not None and urlsplit(source).scheme not in SOURCE_SCHEMES:
        raise InvalidInput("source must be an rtmp, http or srt URL", code="invalid_source")
    media = plane(rt)
    stream = await service.publish_started(session=session, key=key, cache=rt.cache, on_air=media.on_air)
    stream_id, audio_only, owner_id = stream.id, stream.audio_only, stream.owner_id
    after_commit(
        session, lambda: media.published(stream_id, key, audio_only=audio_only, owner_id=owner_id, source=source)
    )
    return PlainTextResponse(str(stream_id))


@router.post("/media/hooks/on_publish_done", include_in_schema=False)
async def on_publish_done(request: Request, rt: RuntimeDep, meta: RequestMetaDep) -> Response:
    check_internal(request, rt, meta.ip)
    form = await request.form()
    plane(rt).unpublished(str(form.get("name") or "").split("?", 1)[0])
    return PlainTextResponse("ok")


@router.post("/media/hooks/on_update", include_in_schema=False)
async def on_update(request: Request, session: SessionDep, rt: RuntimeDep, meta: RequestMetaDep) -> Response:
    """nginx-rtmp / `halobuzz media` on_update, every MEDIA_UPDATE_SECONDS per session: a publisher
    whose stream is no longer live (ended through the API, key rotated, stream deleted) gets 403,
    and the ingest drops its connection."""
    check_internal(request, rt, meta.ip)
    form = await request.form()
    if str(form.get("call") or "") != "update_publish":
        return PlainTextResponse("ok")  # players (the transcoders' pulls) are not checked here
    key = str(form.get("name") or "").split("?", 1)[0]
    if not await service.publisher_allowed(session=session, key=key):
        raise Forbidden("the stream is not live", code="not_live")
    return PlainTextResponse("ok")


class PlaybackOut(BaseModel):
    url: str
    expires_at: datetime


def _expiry(rt: Runtime) -> int:
    return int(time.time()) + rt.settings.media.playback_ttl_seconds


@router.get("/streams/{stream_id}/playback", response_model=PlaybackOut, summary="Signed HLS URL of a live stream")
async def playback(stream_id: StreamId, session: SessionDep, rt: RuntimeDep) -> PlaybackOut:
    stream = await session.get(Stream, stream_id)
    if stream is None or stream.deleted_at is not None:
        raise NotFound("stream not found", code="stream_not_found")
    if stream.status != StreamStatus.LIVE:
        raise Conflict("the stream is not live", code="not_live")
    expires = _expiry(rt)
    token = tokens.sign(tokens.playback_secret(rt.settings), stream_id, expires)
    return PlaybackOut(
        url=f"/api/v1/media/hls/{stream_id}/{token}/master.m3u8", expires_at=datetime.fromtimestamp(expires, UTC)
    )


# Cleaned variant playlists by (path, mtime, size): live playlists are re-read only when they change.
_playlists: dict[str, tuple[int, int, bytes]] = {}


def _playlist_bytes(target: FsPath) -> bytes:
    st = target.stat()
    key = str(target)
    cached = _playlists.get(key)
    if cached is not None and cached[0] == st.st_mtime_ns and cached[1] == st.st_size:
        return cached[2]
    data = ladder.clean_playlist(target.read_text()).encode()
    if len(_playlists) > 4096:
        _playlists.clear()
    _playlists[key] = (st.st_mtime_ns, st.st_size, data)
    return data


def serve_hls_file(base: FsPath, path: str) -> Response:
    """A playlist or segment under ``base`` with cache headers a CDN can use."""
    base = base.resolve()
    target = (base / path).resolve()
    if not target.is_relative_to(base) or not target.is_file() or target.suffix not in service.CONTENT_TYPES:
        raise NotFound("no such media file", code="media_not_found")
    if target.suffix == ".m3u8":
        # Playlists change every segment (short max-age); segments never change once written.
        try:
            body = _playlist_bytes(target)
        except OSError as exc:
            raise NotFound("no such media file", code="media_not_found") from exc
        return Response(body, media_type=service.CONTENT_TYPES[".m3u8"], headers={"Cache-Control": PLAYLIST_CACHE})
    cache = "public, max-age=5" if target.suffix == ".jpg" else SEGMENT_CACHE
    return FileResponse(target, media_type=service.CONTENT_TYPES[target.suffix], headers={"Cache-Control": cache})


@router.get("/media/hls/{stream_id}/{token}/{path:path}", include_in_schema=False)
async def hls(stream_id: StreamId, token: str, path: str, rt: RuntimeDep) -> Response:
    """Playlists and segments, only with a valid token (in the path, so relative URIs carry it)."""
    if not tokens.verify(tokens.playback_secret(rt.settings), stream_id, token, now=time.time()):
        raise Forbidden("invalid or expired playback token", code="bad_playback_token")
    return serve_hls_file(hls_root(rt.settings) / str(stream_id), path)


@router.get("/streams/{stream_id}/thumbnail.jpg", include_in_schema=False)
async def live_thumbnail(stream_id: StreamId, rt: RuntimeDep) -> Response:
    """The latest thumbnail of a live stream (refreshed every MEDIA_THUMBNAIL_SECONDS)."""
    return serve_hls_file(hls_root(rt.settings) / str(stream_id), "thumb.jpg")


class HealthOut(BaseModel):
    live: bool
    state: str  # offline | starting | transcoding | waiting | failed
    transcoding: bool
    restarts: int = 0
    input_kbps: float | None = None
    output_kbps: float | None = None
    fps: float | None = None
    speed: float | None = None
    frames: int | None = None
    uptime_seconds: int | None = None
    updated_at: datetime | None = None


@router.get("/streams/{stream_id}/media/health", response_model=HealthOut, summary="Ingest health (owner)")
async def health(stream_id: StreamId, session: SessionDep, user: CurrentUser, rt: RuntimeDep) -> HealthOut:
    """What the transcoder last reported (every MEDIA_HEALTH_INTERVAL_SECONDS, shared through Redis)."""
    stream = await streams.access_stream_for_owner(session=session, stream_id=stream_id, actor=user)
    live = stream.status == StreamStatus.LIVE
    raw = await rt.kv.get(health_key(stream_id))
    if raw is None:
        job = plane(rt).supervisor.jobs.get(stream_id)
        report = job.report() if job is not None else None
    else:
        report = json.loads(raw)
    if report is None:
        return HealthOut(live=live, state="offline", transcoding=False)
    report.pop("stream_id", None)
    updated = report.pop("updated_at", None)
    return HealthOut(live=live, updated_at=datetime.fromtimestamp(updated, UTC) if updated else None, **report)


class RecordingOut(BaseModel):
    id: uuid.UUID
    stream_id: uuid.UUID
    broadcast_id: uuid.UUID | None
    owner_id: uuid.UUID
    title: str
    duration_seconds: int
    audio_only: bool
    size_bytes: int
    url: str  # signed HLS master playlist of the VOD (expires like live playback URLs)
    expires_at: datetime
    thumbnail_url: str | None
    created_at: datetime


def recording_out(r: Recording, rt: Runtime) -> RecordingOut:
    expires = _expiry(rt)
    token = tokens.sign(tokens.playback_secret(rt.settings), r.id, expires, scope="vod")
    ttl = rt.settings.media.vod_url_ttl_seconds
    thumbnail = None
    if r.has_thumbnail:
        thumbnail = (
            f"/api/v1/media/vod/{r.id}/{token}/thumb.jpg"
            if isinstance(rt.storage, LocalStorage)
            else rt.storage.url(f"{r.storage_prefix}/thumb.jpg", ttl)
        )
    return RecordingOut(
        id=r.id,
        stream_id=r.stream_id,
        broadcast_id=r.broadcast_id,
        owner_id=r.owner_id,
        title=r.title,
        duration_seconds=r.duration_seconds,
        audio_only=r.audio_only,
        size_bytes=r.size_bytes,
        url=f"/api/v1/media/vod/{r.id}/{token}/master.m3u8",
        expires_at=datetime.fromtimestamp(expires, UTC),
        thumbnail_url=thumbnail,
        created_at=r.created_at,
    )


@router.get("/streams/{stream_id}/recordings", response_model=Page[RecordingOut], summary="A stream's VODs")
async def recordings(stream_id: StreamId, session: SessionDep, rt: RuntimeDep, page: PageDep) -> Page[RecordingOut]:
    rows, cursor = await service.list_recordings(
        session=session, stream_id=stream_id, limit=page.limit, cursor=page.cursor
    )
    return Page(items=[recording_out(r, rt) for r in rows], next_cursor=cursor)


@router.get("/users/{user_ref}/recordings", response_model=Page[RecordingOut], summary="A creator's channel VODs")
async def channel_recordings(
    user_ref: UserRef, session: SessionDep, rt: RuntimeDep, page: PageDep
) -> Page[RecordingOut]:
    rows, cursor = await service.list_channel_recordings(
        session=session, owner=user_ref, limit=page.limit, cursor=page.cursor
    )
    return Page(items=[recording_out(r, rt) for r in rows], next_cursor=cursor)


@router.get("/recordings/{recording_id}", response_model=RecordingOut, summary="One VOD, with a signed URL")
async def get_recording(recording_id: RecordingId, session: SessionDep, rt: RuntimeDep) -> RecordingOut:
    return recording_out(await service.get_recording(session=session, recording_id=recording_id), rt)


def _vod_playlist(data: bytes, rt: Runtime, key_dir: str) -> bytes:
    """A stored VOD playlist for players: on S3 every segment becomes a presigned GET (segments
    never pass through the API); on the local backend segments stay relative and come through the
    token-checked route like the playlists (the ``/media/vod/…`` files are not public)."""
    if isinstance(rt.storage, LocalStorage):
        return data
    ttl = rt.settings.media.vod_url_ttl_seconds
    out = []
    for line in data.decode().splitlines():
        if line and not line.startswith("#") and not line.endswith(".m3u8"):
            line = rt.storage.url(f"{key_dir}/{line}", ttl)
        out.append(line)
    return ("\n".join(out) + "\n").encode()


@router.get("/media/vod/{recording_id}/{token}/{path:path}", include_in_schema=False)
async def vod(recording_id: RecordingId, token: str, path: str, session: SessionDep, rt: RuntimeDep) -> Response:
    """A recording's playlists (from storage); segments from the local backend's files, or a
    redirect to a presigned storage URL on S3."""
    if not tokens.verify(tokens.playback_secret(rt.settings), recording_id, token, now=time.time(), scope="vod"):
        raise Forbidden("invalid or expired playback token", code="bad_playback_token")
    rec = await service.get_recording(session=session, recording_id=recording_id)
    parts = [p for p in path.split("/") if p]
    rel = "/".join(parts)
    if not parts or any(p in (".", "..") for p in parts) or rel not in rec.files:
        raise NotFound("no such media file", code="media_not_found")
    key = f"{rec.storage_prefix}/{rel}"
    if not rel.endswith(".m3u8") and isinstance(rt.storage, LocalStorage):
        suffix = os.path.splitext(rel)[1]
        stored = rt.storage.path(key)
        if suffix not in service.CONTENT_TYPES or not stored.is_file():
            raise NotFound("no such media file", code="media_not_found")
        return FileResponse(stored, media_type=service.CONTENT_TYPES[suffix], headers={"Cache-Control": SEGMENT_CACHE})
    if not rel.endswith(".m3u8"):
        return RedirectResponse(rt.storage.url(key, rt.settings.media.vod_url_ttl_seconds), status_code=307)
    try:
        data = await rt.storage.get(key)
    except ObjectNotFound as exc:
        raise NotFound("no such media file", code="media_not_found") from exc
    key_dir = os.path.dirname(key)
    ttl = max(1, min(3600, rt.settings.media.vod_url_ttl_seconds // 4))
    return Response(
        _vod_playlist(data, rt, key_dir),
        media_type=service.CONTENT_TYPES[".m3u8"],
        headers={"Cache-Control": f"public, max-age={ttl}"},
    )


@router.delete("/media/recordings/{recording_id}", status_code=204, summary="Delete a VOD (owner or admin)")
async def delete_recording(recording_id: RecordingId, session: SessionDep, user: CurrentUser) -> Response:
    await service.delete_recording(session=session, actor=user, recording_id=recording_id)
    return Response(status_code=204)


@router.delete("/recordings/{recording_id}", status_code=204, summary="Delete a VOD (owner or admin)")
async def delete_recording_v2(recording_id: RecordingId, session: SessionDep, user: CurrentUser) -> Response:
    await service.delete_recording(session=session, actor=user, recording_id=recording_id)
    return Response(status_code=204)


class GuestIn(BaseModel):
    user_id: uuid.UUID


class GuestOut(BaseModel):
    stream_id: uuid.UUID
    user_id: uuid.UUID
    invited_by: uuid.UUID | None
    created_at: datetime


class GuestList(BaseModel):
    items: list[GuestOut]


def _guest_out(g: StreamGuest) -> GuestOut:
    return GuestOut(stream_id=g.stream_id, user_id=g.user_id, invited_by=g.invited_by, created_at=g.created_at)


@router.post("/streams/{stream_id}/guests", response_model=GuestOut, status_code=201, summary="Invite a co-host")
async def invite_guest(stream_id: StreamId, body: GuestIn, session: SessionDep, user: CurrentUser) -> GuestOut:
    guest = await guests.invite_guest(session=session, actor=user, stream_id=stream_id, user_id=body.user_id)
    await session.flush()
    return _guest_out(guest)


@router.get("/streams/{stream_id}/guests", response_model=GuestList, summary="A stream's invited co-hosts")
async def list_guests(stream_id: StreamId, session: SessionDep, user: CurrentUser) -> GuestList:
    rows = await guests.list_guests(session=session, actor=user, stream_id=stream_id)
    return GuestList(items=[_guest_out(g) for g in rows])


@router.delete("/streams/{stream_id}/guests/{user_id}", status_code=204, summary="Withdraw a co-host invitation")
async def remove_guest(stream_id: StreamId, user_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Response:
    await guests.remove_guest(session=session, actor=user, stream_id=stream_id, user_id=user_id)
    return Response(status_code=204)


class RtcTokenIn(BaseModel):
    provider: str


class RtcTokenOut(BaseModel):
    provider: str
    token: str
    channel: str  # the Agora channel / LiveKit room
    uid: int | None  # Agora uid the token is bound to
    identity: str  # LiveKit participant identity (the user id)
    app_id: str | None
    url: str | None  # LiveKit server URL
    role: str  # host | guest
    expires_at: datetime


@router.post("/streams/{stream_id}/rtc-token", response_model=RtcTokenOut, summary="Agora/LiveKit token for co-hosting")
async def rtc_token(
    stream_id: StreamId, body: RtcTokenIn, session: SessionDep, user: CurrentUser, rt: RuntimeDep
) -> RtcTokenOut:
    g = await guests.issue_token(
        session=session, actor=user, stream_id=stream_id, provider=body.provider, settings=rt.settings.rtc
    )
    return RtcTokenOut(
        provider=g.provider, token=g.token, channel=g.channel, uid=g.uid, identity=g.identity, app_id=g.app_id,
        url=g.url, role=g.role, expires_at=datetime.fromtimestamp(g.expires_at, UTC),
    )  # fmt: skip
