"""The media plane inside a process: supervisor, grace timers, VOD hand-off (runtime.extras["media"])."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from pathlib import Path

import structlog

from halobuzz.core.runtime import Runtime
from halobuzz.media import service
from halobuzz.media.supervisor import Supervisor, find_ffmpeg
from halobuzz.streams import service as streams

log = structlog.get_logger("halobuzz.media")


class MediaPlane:
    def __init__(self, rt: Runtime, on_air: streams.OnAir | None) -> None:
        self.rt = rt
        self.on_air = on_air
        self.supervisor = Supervisor(rt.settings, on_finished=self._finished)
        self.grace: dict[uuid.UUID, asyncio.Task[None]] = {}
        self.keys: dict[str, uuid.UUID] = {}
        self.enabled = self._enabled()

    def _enabled(self) -> bool:
        setting = self.rt.settings.media.enabled
        return bool(find_ffmpeg(self.rt.settings)) if setting is None else setting

    def published(self, stream_id: uuid.UUID, key: str, *, audio_only: bool) -> None:
        """After the on_publish commit: cancel a pending end and start the transcoder."""
        self.keys[key] = stream_id
        pending = self.grace.pop(stream_id, None)
        if pending is not None:
            pending.cancel()
        if self.enabled:
            source = f"rtmp://127.0.0.1:{self.rt.settings.media.rtmp_port}/live/{key}"
            self.supervisor.start(stream_id, source, audio_only=audio_only)

    def unpublished(self, key: str) -> None:
        stream_id = self.keys.pop(key, None)
        if stream_id is None:
            return
        if stream_id in self.grace:
            return
        self.grace[stream_id] = asyncio.create_task(self._end_after_grace(stream_id))

    async def _end_after_grace(self, stream_id: uuid.UUID) -> None:
        await asyncio.sleep(self.rt.settings.media.grace_seconds)
        self.grace.pop(stream_id, None)
        try:
            async with self.rt.db.session() as session:
                await service.publish_ended(
                    session=session, stream_id=stream_id, cache=self.rt.cache, on_air=self.on_air
                )
        except Exception:
            log.exception("media.end_failed", stream_id=str(stream_id))
        await self.supervisor.stop(stream_id)

    async def _finished(self, stream_id: uuid.UUID, out_dir: Path, seconds: float) -> None:
        if stream_id in self.grace or stream_id in self.keys.values():
            # the input ended but the publisher may come back; the grace timer ends it.
            pass
        async with self.rt.db.session() as session:
            rec = await service.store_recording(
                session=session, storage=self.rt.storage, stream_id=stream_id, out_dir=out_dir, seconds=seconds
            )
        log.info("media.recorded", stream_id=str(stream_id), recording=str(rec.id) if rec else None)
        await asyncio.to_thread(shutil.rmtree, out_dir, True)

    async def close(self) -> None:
        for task in list(self.grace.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.supervisor.close()


def plane(rt: Runtime) -> MediaPlane:
    existing = rt.extras.get("media")
    if isinstance(existing, MediaPlane):
        return existing
    from halobuzz.streams.api import _announcer

    created = MediaPlane(rt, _announcer(rt))
    rt.extras["media"] = created
    return created


async def close(rt: Runtime) -> None:
    existing = rt.extras.pop("media", None)
    if isinstance(existing, MediaPlane):
        await existing.close()
