"""One ffmpeg per live stream: HLS ladder, thumbnails, restarts, health; recording → VOD on end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from halobuzz.config import Settings
from halobuzz.media import ladder

log = structlog.get_logger("halobuzz.media")

OnFinished = Callable[[uuid.UUID, Path, float], Awaitable[None]]


def find_ffmpeg(settings: Settings) -> str | None:
    return shutil.which(settings.media.ffmpeg)


def hls_root(settings: Settings) -> Path:
    return settings.media.hls_dir or (settings.data_dir / "media" / "hls")


@dataclass
class Job:
    stream_id: uuid.UUID
    source: str
    audio_only: bool
    out_dir: Path
    health: dict[str, str] = field(default_factory=dict)
    restarts: int = 0
    stopping: bool = False
    task: asyncio.Task[None] | None = None
    proc: asyncio.subprocess.Process | None = None


class Supervisor:
    """Runs and restarts the transcoders; ``on_finished(stream_id, out_dir, seconds)`` after the last exit."""

    def __init__(self, settings: Settings, *, on_finished: OnFinished | None = None) -> None:
        self.settings = settings
        self.root = hls_root(settings)
        self.jobs: dict[uuid.UUID, Job] = {}
        self.on_finished = on_finished
        sibling = Path(shutil.which(settings.media.ffmpeg) or settings.media.ffmpeg).with_name("ffprobe")
        self.ffprobe = str(sibling) if sibling.is_file() else (shutil.which("ffprobe") or "ffprobe")

    def start(self, stream_id: uuid.UUID, source: str, *, audio_only: bool) -> Job:
        existing = self.jobs.get(stream_id)
        if existing is not None and not existing.stopping:
            return existing
        out_dir = self.root / str(stream_id)
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        job = Job(stream_id, source, audio_only, out_dir)
        self.jobs[stream_id] = job
        job.task = asyncio.create_task(self._run(job), name=f"media-{stream_id}")
        return job

    async def stop(self, stream_id: uuid.UUID) -> None:
        job = self.jobs.get(stream_id)
        if job is None:
            return
        job.stopping = True
        proc = job.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        if job.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await job.task

    async def close(self) -> None:
        for stream_id in list(self.jobs):
            await self.stop(stream_id)

    async def _probe(self, source: str) -> tuple[int, int, int, bool]:
        """(width, height, kbps, has_video) of the live input, read with ffprobe."""
        ffprobe = self.ffprobe
        proc = await asyncio.create_subprocess_exec(
            ffprobe, "-v", "error", "-rw_timeout", "15000000", "-show_streams", "-of", "json", source,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        job_out, _ = await proc.communicate()
        info = json.loads(job_out or b"{}")
        for s in info.get("streams", []):
            if s.get("codec_type") == "video":
                kbps = int(s.get("bit_rate") or 0) // 1000 or 2500
                return int(s["width"]), int(s["height"]), kbps, True
        return 0, 0, 0, False

    async def _run(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        media = self.settings.media
        try:
            while not job.stopping:
                width, height, kbps, has_video = (0, 0, 0, False)
                if not job.audio_only:
                    width, height, kbps, has_video = await self._probe(job.source)
                if has_video:
                    argv, variants = ladder.video_command(
                        media, job.source, job.out_dir, src_width=width, src_height=height, src_kbps=kbps
                    )
                    master = ladder.master_playlist(variants, None)
                    names = [r.name for r, _ in variants]
                else:
                    argv, audio = ladder.audio_command(media, job.source, job.out_dir)
                    master = ladder.master_playlist(None, audio)
                    names = [r.name for r in audio]
                for name in names:
                    (job.out_dir / name).mkdir(exist_ok=True)
                if has_video:
                    argv += [
                        "-map", "0:v:0", "-vf", f"fps=1/{media.thumbnail_seconds},scale=-2:180", "-update", "1",
                        "-f", "image2", str(job.out_dir / "thumb.jpg"),
                    ]  # fmt: skip
                (job.out_dir / "master.m3u8").write_text(master)
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )  # fmt: skip
                job.proc = proc
                assert proc.stdout is not None
                async for raw in proc.stdout:
                    key, _, value = raw.decode(errors="replace").strip().partition("=")
                    if key in ("bitrate", "fps", "speed", "out_time", "frame"):
                        job.health[key] = value
                code = await proc.wait()
                err = (await proc.stderr.read()).decode(errors="replace")[-500:] if proc.stderr else ""
                if job.stopping or code == 0:
                    break
                job.restarts += 1
                log.warning("media.ffmpeg_exit", stream_id=str(job.stream_id), code=code, stderr=err)
                if job.restarts > 5:
                    break
                await asyncio.sleep(min(5.0, 0.5 * job.restarts))
        finally:
            self.jobs.pop(job.stream_id, None)
            if self.on_finished is not None:
                try:
                    await self.on_finished(job.stream_id, job.out_dir, loop.time() - started)
                except Exception:
                    log.exception("media.finish_failed", stream_id=str(job.stream_id))
