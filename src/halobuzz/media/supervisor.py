"""One transcoder job per live broadcast: ffmpeg HLS ladder, thumbnails, restarts, health.

A job lives as long as the broadcast, not as long as one ffmpeg: when the publisher drops, the job
waits (the grace period is the plane's business); when it comes back, or when ffmpeg crashes, the
next run appends to the same playlists after an ``#EXT-X-DISCONTINUITY``. ``on_finished`` runs once,
after the job is stopped, with the HLS directory that becomes the recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from halobuzz.config import Settings
from halobuzz.media import ladder

log = structlog.get_logger("halobuzz.media")

OnFinished = Callable[[uuid.UUID, Path, float], Awaitable[None]]
OnHealth = Callable[["Job"], None]

# A run that lasted this long was healthy: its crash starts the failure count afresh.
HEALTHY_RUN_SECONDS = 30.0
# After ffmpeg ends cleanly (the input ended) this long without word of the publisher leaving, the
# input is pulled again.
INPUT_END_WAIT_SECONDS = 3.0


def find_ffmpeg(settings: Settings) -> str | None:
    return shutil.which(settings.media.ffmpeg)


def find_ffprobe(settings: Settings) -> str:
    sibling = Path(shutil.which(settings.media.ffmpeg) or settings.media.ffmpeg).with_name("ffprobe")
    return str(sibling) if sibling.is_file() else (shutil.which("ffprobe") or "ffprobe")


def hls_root(settings: Settings) -> Path:
    return settings.media.hls_dir or (settings.data_dir / "media" / "hls")


@dataclass(frozen=True, slots=True)
class SourceInfo:
    has_video: bool
    width: int = 0
    height: int = 0
    kbps: int = 0
    video_codec: str = ladder.LADDER_VIDEO_CODEC
    has_audio: bool = True
    audio_codec: str = ladder.AAC_LC
    audio_kbps: int = 0

    @property
    def codecs(self) -> str:
        return f"{self.video_codec},{self.audio_codec}" if self.has_audio else self.video_codec


def parse_probe(raw: bytes) -> SourceInfo | None:
    """The input's shape from ffprobe's ``-show_streams`` JSON; None when it has no usable stream."""
    try:
        streams = json.loads(raw or b"{}").get("streams", [])
    except ValueError:
        return None
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None and audio is None:
        return None
    audio_fields: dict[str, Any] = {"has_audio": audio is not None}
    if audio is not None:
        audio_fields["audio_codec"] = ladder.audio_codec(audio.get("codec_name"), audio.get("profile"))
        audio_fields["audio_kbps"] = int(audio.get("bit_rate") or 0) // 1000
    if video is None or not video.get("width"):
        return SourceInfo(has_video=False, **audio_fields)
    level = video.get("level")
    return SourceInfo(
        has_video=True,
        width=int(video["width"]),
        height=int(video["height"]),
        kbps=int(video.get("bit_rate") or 0) // 1000 or 2500,
        video_codec=ladder.avc_codec(video.get("profile"), int(level) if isinstance(level, int) else None),
        **audio_fields,
    )


@dataclass
class Job:
    stream_id: uuid.UUID
    owner_id: uuid.UUID | None
    source: str
    audio_only: bool
    out_dir: Path
    health: dict[str, str] = field(default_factory=dict)
    restarts: int = 0
    state: str = "starting"  # starting | transcoding | waiting | failed
    publishing: bool = True
    stopping: bool = False
    runs: int = 0
    info: SourceInfo | None = None
    started_at: float = field(default_factory=time.monotonic)
    updated_at: float = field(default_factory=time.time)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    proc: asyncio.subprocess.Process | None = None
    probe_proc: asyncio.subprocess.Process | None = None

    def report(self) -> dict[str, Any]:
        """What the creator sees: state, input bitrate, fps, speed, restarts."""
        h = self.health
        return {
            "stream_id": str(self.stream_id),
            "state": self.state,
            "transcoding": self.state == "transcoding",
            "restarts": self.restarts,
            "input_kbps": input_kbps(self),
            "output_kbps": _kbps(h.get("bitrate")),
            "fps": _float(h.get("fps")),
            "speed": _float((h.get("speed") or "").rstrip("x")),
            "frames": _int(h.get("frame")),
            "uptime_seconds": int(time.monotonic() - self.started_at),
            "updated_at": self.updated_at,
        }


def _float(value: str | None) -> float | None:
    try:
        return round(float(value), 3) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


def _kbps(value: str | None) -> float | None:
    """ffmpeg's progress ``bitrate=1234.5kbits/s``."""
    if not value or not value.endswith("kbits/s"):
        return None
    return _float(value[: -len("kbits/s")])


def input_kbps(job: Job) -> float | None:
    """The publisher's bitrate: measured on the passed-through source rendition (its segments are
    the input, remuxed), or the audio bitrate the input declares for audio-only streams."""
    playlist = job.out_dir / "source" / "index.m3u8"
    if job.info is not None and not job.info.has_video:
        return float(job.info.audio_kbps) or None
    try:
        lines = playlist.read_text().splitlines()
    except OSError:
        return None
    pairs: list[tuple[float, str]] = []
    duration = 0.0
    for line in lines:
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",", 1)[0] or 0)
        elif line and not line.startswith("#"):
            pairs.append((duration, line))
    total_bytes, total_seconds = 0, 0.0
    for seconds, name in pairs[-3:]:
        with contextlib.suppress(OSError):
            total_bytes += (playlist.parent / name).stat().st_size
            total_seconds += seconds
    return round(total_bytes * 8 / 1000 / total_seconds, 1) if total_seconds > 0 else None


class Supervisor:
    """Runs and restarts the transcoders; ``on_finished(stream_id, out_dir, seconds)`` after a job ends."""

    def __init__(
        self, settings: Settings, *, on_finished: OnFinished | None = None, on_health: OnHealth | None = None
    ) -> None:
        self.settings = settings
        self.root = hls_root(settings)
        self.jobs: dict[uuid.UUID, Job] = {}
        self.on_finished = on_finished
        self.on_health = on_health
        self.ffprobe = find_ffprobe(settings)

    def start(self, stream_id: uuid.UUID, source: str, *, audio_only: bool, owner_id: uuid.UUID | None = None) -> Job:
        """Start transcoding a broadcast, or resume its job when the publisher reconnected."""
        existing = self.jobs.get(stream_id)
        if existing is not None and not existing.stopping:
            existing.source = source
            existing.publishing = True
            existing.wake.set()
            return existing
        out_dir = self.root / str(stream_id)
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        job = Job(stream_id, owner_id, source, audio_only, out_dir)
        self.jobs[stream_id] = job
        job.task = asyncio.create_task(self._run(job), name=f"media-{stream_id}")
        return job

    def publisher_left(self, stream_id: uuid.UUID) -> None:
        """The publisher disconnected: stop pulling until it comes back (or the job is stopped)."""
        job = self.jobs.get(stream_id)
        if job is None:
            return
        job.publishing = False
        job.wake.set()
        _kill(job.probe_proc)

    async def stop(self, stream_id: uuid.UUID) -> None:
        """End the job (broadcast over): stop ffmpeg, then ``on_finished``."""
        job = self.jobs.get(stream_id)
        if job is None:
            return
        first = not job.stopping
        job.stopping = True
        job.wake.set()
        _kill(job.probe_proc)
        proc = job.proc
        # One SIGTERM only: ffmpeg takes a second signal as "quit now" and leaves its playlists
        # truncated (the recording would lose them).
        if first and proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), 15)
            except TimeoutError:
                _kill(proc)
        if job.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await job.task

    async def close(self) -> None:
        for stream_id in list(self.jobs):
            await self.stop(stream_id)

    async def _probe(self, job: Job) -> SourceInfo | None:
        """The live input's shape, read with ffprobe (killed if the publisher leaves meanwhile)."""
        proc = await asyncio.create_subprocess_exec(
            self.ffprobe, "-v", "error", "-rw_timeout", "15000000", "-show_streams", "-of", "json", job.source,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        job.probe_proc = proc
        try:
            out, _ = await proc.communicate()
        finally:
            job.probe_proc = None
        return parse_probe(out) if proc.returncode == 0 else None

    async def _pause(self, job: Job, seconds: float) -> None:
        """Sleep, but wake at once when the publisher changes or the job stops."""
        job.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.wake.wait(), seconds)

    def _command(self, job: Job, info: SourceInfo) -> tuple[list[str], str]:
        media = self.settings.media
        resume = job.runs > 0
        if info.has_video and not job.audio_only:
            argv, variants = ladder.video_command(
                media, job.source, job.out_dir, src_width=info.width, src_height=info.height,
                src_kbps=info.kbps, resume=resume, has_audio=info.has_audio,
            )  # fmt: skip
            master = ladder.master_playlist(variants, None, source_codecs=info.codecs, has_audio=info.has_audio)
            names = [r.name for r, _ in variants]
            argv += [
                "-map", "0:v:0", "-vf", f"fps=1/{media.thumbnail_seconds},scale=-2:180", "-update", "1",
                "-f", "image2", str(job.out_dir / "thumb.jpg"),
            ]  # fmt: skip
        else:
            argv, audio = ladder.audio_command(media, job.source, job.out_dir, resume=resume)
            master = ladder.master_playlist(None, audio)
            names = [r.name for r in audio]
        for name in names:
            (job.out_dir / name).mkdir(exist_ok=True)
        return argv, master

    def _health(self, job: Job, state: str | None = None) -> None:
        if state is not None:
            job.state = state
        job.updated_at = time.time()
        if self.on_health is not None:
            try:
                self.on_health(job)
            except Exception:
                log.exception("media.health_failed", stream_id=str(job.stream_id))

    async def _transcode(self, job: Job, info: SourceInfo) -> tuple[int, str]:
        argv, master = self._command(job, info)
        (job.out_dir / "master.m3u8").write_text(master)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        job.proc = proc
        if job.stopping:  # stopped while it was starting: end it the same single-signal way
            proc.terminate()
        self._health(job, "transcoding")
        interval = self.settings.media.health_interval_seconds
        last = time.monotonic()
        assert proc.stdout is not None
        stderr_task = asyncio.create_task(proc.stderr.read()) if proc.stderr else None
        async for raw in proc.stdout:
            key, _, value = raw.decode(errors="replace").strip().partition("=")
            if key in ("bitrate", "fps", "speed", "out_time", "frame"):
                job.health[key] = value
            elif key == "progress" and time.monotonic() - last >= interval:
                last = time.monotonic()
                self._health(job)
        code = await proc.wait()
        err = (await stderr_task).decode(errors="replace")[-500:] if stderr_task else ""
        job.proc = None
        return code, err

    async def _run(self, job: Job) -> None:
        started = time.monotonic()
        failures = 0
        try:
            while not job.stopping:
                if not job.publishing:
                    self._health(job, "waiting")
                    job.wake.clear()
                    await job.wake.wait()
                    continue
                info = await self._probe(job)
                if job.stopping:
                    break
                if info is None:
                    if job.publishing:  # the input is not there (yet): try again shortly
                        failures += 1
                        await self._pause(job, min(5.0, 0.5 * failures))
                    continue
                job.info = info
                run_started = time.monotonic()
                log.info("media.ffmpeg_start", stream_id=str(job.stream_id), run=job.runs, source=job.source)
                code, err = await self._transcode(job, info)
                job.runs += 1
                log.info("media.ffmpeg_end", stream_id=str(job.stream_id), code=code, publishing=job.publishing)
                if job.stopping:
                    break
                if code == 0:  # the input ended: the publisher left, or the ingest dropped us
                    self._health(job, "waiting")
                    await self._pause(job, INPUT_END_WAIT_SECONDS)
                    continue
                if time.monotonic() - run_started >= HEALTHY_RUN_SECONDS:
                    failures = 0
                failures += 1
                job.restarts += 1
                log.warning("media.ffmpeg_exit", stream_id=str(job.stream_id), code=code, stderr=err)
                if failures > self.settings.media.max_restarts:
                    log.error("media.ffmpeg_gave_up", stream_id=str(job.stream_id), restarts=job.restarts)
                    job.publishing = False  # wait for the publisher to connect again
                    self._health(job, "failed")
                    failures = 0
                    continue
                self._health(job, "starting")
                await self._pause(job, min(5.0, 0.25 * failures))
        finally:
            self.jobs.pop(job.stream_id, None)
            self._health(job, "stopped")
            if self.on_finished is not None:
                try:
                    await self.on_finished(job.stream_id, job.out_dir, time.monotonic() - started)
                except Exception:
                    log.exception("media.finish_failed", stream_id=str(job.stream_id))


def _kill(proc: asyncio.subprocess.Process | None) -> None:
    if proc is not None and proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
