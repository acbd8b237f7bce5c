"""Routes: ingest callbacks (internal), playback URLs, token-checked HLS, recordings, health."""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import BaseModel

from halobuzz.accounts.deps import CurrentUser
from halobuzz.core.db import after_commit
from halobuzz.core.deps import RequestMetaDep, RuntimeDep, SessionDep
from halobuzz.core.errors import Conflict, Forbidden, NotFound
from halobuzz.core.runtime import Runtime
from halobuzz.media import service, tokens
from halobuzz.media.plane import plane
from halobuzz.media.supervisor import hls_root
from halobuzz.streams import service as streams
from halobuzz.streams.models import Stream, StreamStatus

router = APIRouter(tags=["media"])
StreamId = Annotated[uuid.UUID, Path(description="stream id")]


def _check_internal(request: Request, rt: Runtime, ip: str) -> None:
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
    """nginx-rtmp on_publish: 2xx accepts the publisher, 403 refuses it."""
    _check_internal(request, rt, meta.ip)
    form = await request.form()
    key = str(form.get("name") or "")
    media = plane(rt)
    stream = await service.publish_started(session=session, key=key, cache=rt.cache, on_air=media.on_air)
    stream_id, audio_only = stream.id, stream.audio_only
    after_commit(session, lambda: media.published(stream_id, key, audio_only=audio_only))
    return PlainTextResponse("ok")


@router.post("/media/hooks/on_publish_done", include_in_schema=False)
async def on_publish_done(request: Request, rt: RuntimeDep, meta: RequestMetaDep) -> Response:
    _check_internal(request, rt, meta.ip)
    form = await request.form()
    plane(rt).unpublished(str(form.get("name") or ""))
    return PlainTextResponse("ok")


class PlaybackOut(BaseModel):
    url: str
    expires_at: datetime


@router.get("/streams/{stream_id}/playback", response_model=PlaybackOut, summary="Signed HLS URL of a live stream")
async def playback(stream_id: StreamId, session: SessionDep, rt: RuntimeDep) -> PlaybackOut:
    stream = await session.get(Stream, stream_id)
    if stream is None or stream.deleted_at is not None:
        raise NotFound("stream not found", code="stream_not_found")
    if stream.status != StreamStatus.LIVE:
        raise Conflict("the stream is not live", code="not_live")
    expires = int(time.time()) + rt.settings.media.playback_ttl_seconds
    token = tokens.sign(tokens.playback_secret(rt.settings), stream_id, expires)
    return PlaybackOut(
        url=f"/api/v1/media/hls/{stream_id}/{token}/master.m3u8", expires_at=datetime.fromtimestamp(expires, UTC)
    )


@router.get("/media/hls/{stream_id}/{token}/{path:path}", include_in_schema=False)
async def hls(stream_id: StreamId, token: str, path: str, rt: RuntimeDep) -> Response:
    """Playlists and segments, only with a valid token (in the path, so relative URIs carry it)."""
    if not tokens.verify(tokens.playback_secret(rt.settings), stream_id, token, now=time.time()):
        raise Forbidden("invalid or expired playback token", code="bad_playback_token")
    base = (hls_root(rt.settings) / str(stream_id)).resolve()
    target = (base / path).resolve()
    if not target.is_relative_to(base) or not target.is_file() or target.suffix not in service.CONTENT_TYPES:
        raise NotFound("no such media file", code="media_not_found")
    # Playlists change every segment; segments never change once written.
    if target.suffix == ".m3u8":
        # Read whole: the transcoder replaces playlists while they are served, and a length taken
        # before the read would not match the file that is then sent.
        text = await asyncio.to_thread(target.read_bytes)
        return Response(text, media_type=service.CONTENT_TYPES[".m3u8"], headers={"Cache-Control": "public, max-age=1"})
    cache = "public, max-age=86400, immutable"
    return FileResponse(
        FsPath(target), media_type=service.CONTENT_TYPES[target.suffix], headers={"Cache-Control": cache}
    )


class HealthOut(BaseModel):
    live: bool
    transcoding: bool
    restarts: int
    bitrate: str | None = None
    fps: str | None = None
    speed: str | None = None


@router.get("/streams/{stream_id}/media/health", response_model=HealthOut, summary="Ingest health (owner)")
async def health(stream_id: StreamId, session: SessionDep, user: CurrentUser, rt: RuntimeDep) -> HealthOut:
    stream = await streams.access_stream_for_owner(session=session, stream_id=stream_id, actor=user)
    job = plane(rt).supervisor.jobs.get(stream_id)
    h = job.health if job else {}
    return HealthOut(
        live=stream.status == StreamStatus.LIVE,
        transcoding=job is not None,
        restarts=job.restarts if job else 0,
        bitrate=h.get("bitrate"),
        fps=h.get("fps"),
        speed=h.get("speed"),
    )


class RecordingOut(BaseModel):
    id: uuid.UUID
    stream_id: uuid.UUID
    broadcast_id: uuid.UUID | None
    title: str
    duration_seconds: int
    audio_only: bool
    url: str
    thumbnail_url: str | None
    created_at: datetime


class RecordingList(BaseModel):
    items: list[RecordingOut]


@router.get("/streams/{stream_id}/recordings", response_model=RecordingList, summary="A channel's VODs")
async def recordings(stream_id: StreamId, session: SessionDep, rt: RuntimeDep) -> RecordingList:
    rows = await service.list_recordings(session=session, stream_id=stream_id)
    st = rt.storage
    return RecordingList(
        items=[
            RecordingOut(
                id=r.id,
                stream_id=r.stream_id,
                broadcast_id=r.broadcast_id,
                title=r.title,
                duration_seconds=r.duration_seconds,
                audio_only=r.audio_only,
                url=st.url(f"{r.storage_prefix}/master.m3u8"),
                thumbnail_url=st.url(f"{r.storage_prefix}/thumb.jpg") if r.has_thumbnail else None,
                created_at=r.created_at,
            )
            for r in rows
        ]
    )


@router.delete("/media/recordings/{recording_id}", status_code=204, summary="Delete a VOD (owner or admin)")
async def delete_recording(recording_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Response:
    await service.delete_recording(session=session, actor=user, recording_id=recording_id)
    return Response(status_code=204)
