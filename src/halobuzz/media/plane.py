"""The media plane inside a process: supervisor, grace timers, health reports, VOD hand-off.

It lives in ``runtime.extras["media"]`` of the process that receives the ingest callbacks
(``halobuzz serve`` / ``halobuzz api`` with ``MEDIA_ENABLED``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import structlog

from halobuzz.core.runtime import Runtime
from halobuzz.core.tasks import cancel_and_wait
from halobuzz.media import service
from halobuzz.media.supervisor import Job, Supervisor, find_ffmpeg
from halobuzz.streams import service as streams

log = structlog.get_logger("halobuzz.media")


def health_key(stream_id: uuid.UUID) -> str:
    return f"media:health:{stream_id}"


class MediaPlane:
    def __init__(self, rt: Runtime, on_air: streams.OnAir | None) -> None:
        self.rt = rt
        self.on_air = on_air
        self.supervisor = Supervisor(rt.settings, on_finished=self._finished, on_health=self._health)
        self.grace: dict[uuid.UUID, asyncio.Task[None]] = {}
        self.keys: dict[str, uuid.UUID] = {}
        self.enabled = self._enabled()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.radio: Any = None  # halobuzz.media.radio.Playout when radio playout runs here

    def _enabled(self) -> bool:
        setting = self.rt.settings.media.enabled
        return bool(find_ffmpeg(self.rt.settings)) if setting is None else setting

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def default_source(self, key: str) -> str:
        media = self.rt.settings.media
        return f"rtmp://{media.ingest_host}:{media.rtmp_port}/live/{key}"

    def published(
        self,
        stream_id: uuid.UUID,
        key: str,
        *,
        audio_only: bool,
        owner_id: uuid.UUID | None = None,
        source: str | None = None,
    ) -> None:
        """After the on_publish commit: cancel a pending end and start (or resume) the transcoder."""
        self.keys[key] = stream_id
        pending = self.grace.pop(stream_id, None)
        if pending is not None:
            pending.cancel()
        if self.enabled:
            self.supervisor.start(
                stream_id, source or self.default_source(key), audio_only=audio_only, owner_id=owner_id
            )
        if self.radio is not None:
            self.radio.poke()

    def unpublished(self, key: str) -> None:
        """on_publish_done: the broadcast ends unless the publisher is back within the grace period."""
        stream_id = self.keys.pop(key, None)
        if stream_id is None:
            return
        self.supervisor.publisher_left(stream_id)
        if stream_id in self.grace:
            return
        self.grace[stream_id] = asyncio.create_task(self._end_after_grace(stream_id))

    def on_air_change(self, change: streams.AirChange) -> None:
        """A stream went off air (grace over, or ended by its owner through the API): stop its job."""
        if change.live:
            return
        self.keys = {k: v for k, v in self.keys.items() if v != change.stream_id}
        pending = self.grace.pop(change.stream_id, None)
        if pending is not None and pending is not asyncio.current_task():
            pending.cancel()
        self._spawn(self.supervisor.stop(change.stream_id))
        if self.radio is not None:
            self.radio.poke()

    async def _end_after_grace(self, stream_id: uuid.UUID) -> None:
        await asyncio.sleep(self.rt.settings.media.grace_seconds)
        if self.grace.get(stream_id) is asyncio.current_task():
            self.grace.pop(stream_id, None)
        try:
            async with self.rt.db.session() as session:
                await service.publish_ended(
                    session=session, stream_id=stream_id, cache=self.rt.cache, on_air=self.on_air
                )
        except Exception:
            log.exception("media.end_failed", stream_id=str(stream_id))
        await self.supervisor.stop(stream_id)

    def _health(self, job: Job) -> None:
        """Health to the shared store (any API instance answers the health endpoint) and to the
        owner's sockets (``stream_health``)."""
        report = job.report()
        ttl = int(self.rt.settings.media.health_interval_seconds * 3) + 10
        kv = self.rt.kv
        if job.state == "stopped":
            self._spawn(kv.delete(health_key(job.stream_id)))
        else:
            self._spawn(kv.set(health_key(job.stream_id), json.dumps(report), ttl))
        if job.owner_id is None:
            return
        from halobuzz.realtime.asgi import gateway_of

        gateway = gateway_of(self.rt)
        if gateway is not None:
            gateway.emit_to_user(job.owner_id, "stream_health", report)

    async def _finished(self, stream_id: uuid.UUID, out_dir: Path, seconds: float) -> None:
        async with self.rt.db.session() as session:
            rec = await service.store_recording(
                session=session, storage=self.rt.storage, stream_id=stream_id, out_dir=out_dir, seconds=seconds
            )
        log.info("media.recorded", stream_id=str(stream_id), recording=str(rec.id) if rec else None)
        await asyncio.to_thread(shutil.rmtree, out_dir, True)

    async def close(self) -> None:
        await cancel_and_wait(list(self.grace.values()))
        if self.radio is not None:
            await self.radio.close()
        await self.supervisor.close()
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task


def plane(rt: Runtime) -> MediaPlane:
    existing = rt.extras.get("media")
    if isinstance(existing, MediaPlane):
        return existing
    from halobuzz.streams.api import _announcer

    created = MediaPlane(rt, _announcer(rt))
    rt.extras["media"] = created
    return created


def start(rt: Runtime) -> None:
    """At start-up: the radio playout runs in this process when the media plane is enabled here
    and ``MEDIA_RADIO_PLAYOUT`` is on."""
    if not rt.settings.media.radio_playout:
        return
    media = plane(rt)
    if not media.enabled or media.radio is not None:
        return
    from halobuzz.media.radio import Playout

    media.radio = Playout(rt)
    media.radio.start()


async def close(rt: Runtime) -> None:
    existing = rt.extras.pop("media", None)
    if isinstance(existing, MediaPlane):
        await existing.close()
