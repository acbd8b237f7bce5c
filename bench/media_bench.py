"""Media plane benchmark: ffmpeg speed factor and CPU cores for the default video ladder on a 720p30
source, CPU per channel for the AAC audio ladder (speech-like source: a tone under noise), and the
radio playout's CPU per auto-DJ channel (tracks are transcoded once at upload; playout copies).
Usage: python bench/media_bench.py [seconds] [video|audio|radio|both]"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from halobuzz.config import MediaSettings
from halobuzz.media import ladder


def _run(argv: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    which = sys.argv[2] if len(sys.argv) > 2 else "both"
    media = MediaSettings()
    with tempfile.TemporaryDirectory() as tmp:
        if which in ("video", "both"):
            _video(media, seconds, Path(tmp))
        if which in ("audio", "both"):
            _audio(media, seconds, Path(tmp))
        if which in ("radio", "both"):
            asyncio.run(_radio(seconds, Path(tmp)))


def _video(media: MediaSettings, seconds: int, tmp: Path) -> None:
    src = tmp / "src.flv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-preset",
         "veryfast", "-b:v", "2500k", "-pix_fmt", "yuv420p", "-g", "60", "-c:a", "aac", "-b:a", "128k", str(src)],
        check=True,
    )  # fmt: skip
    out = tmp / "video"
    argv, variants = ladder.video_command(media, str(src), out, src_width=1280, src_height=720, src_kbps=2500)
    for r, _ in variants:
        (out / r.name).mkdir(parents=True, exist_ok=True)
    wall, cpu = _run(argv)
    names = ", ".join(r.name for r, _ in variants)
    print(f"video ladder [{names}] preset={media.x264_preset}: speed {seconds / wall:.2f}x real time, "
          f"{cpu / wall:.2f} cores while running, {cpu / seconds:.2f} cores per real-time stream")  # fmt: skip


def _audio(media: MediaSettings, seconds: int, tmp: Path) -> None:
    src = tmp / "audio.m4a"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-f", "lavfi",
         "-i", f"anoisesrc=d={seconds}:a=0.1", "-filter_complex", "amix=inputs=2", "-c:a", "aac", "-b:a", "192k",
         str(src)],
        check=True,
    )  # fmt: skip
    # The audio ladder on one core, with ffmpeg's default AAC search as the reference in the same run.
    for coder in ("twoloop", "fast"):
        out = tmp / f"audio-{coder}"
        argv, audio = ladder.audio_command(media.model_copy(update={"aac_coder": coder}), str(src), out)
        for r in audio:
            (out / r.name).mkdir(parents=True, exist_ok=True)
        wall, cpu = _run(["taskset", "-c", "1", *argv])
        print(f"audio ladder [{', '.join(r.name for r in audio)}] aac_coder={coder}: speed {seconds / wall:.1f}x, "
              f"{100 * cpu / seconds:.2f}% of one core per real-time channel")  # fmt: skip


async def _radio(seconds: int, tmp: Path, channels: int = 20) -> None:
    """The playout's steady state: ``channels`` auto-DJ channels each releasing ``seconds`` of audio
    (segment fetch from local storage + three renditions written + playlists rewritten), timed
    without the real-time pacing; the CPU of this process per second of audio is the per-channel cost.
    The one-off transcode at upload and the schedule poll (a few queries per MEDIA_RADIO_POLL_SECONDS
    for all channels) are reported separately / not included."""
    from types import SimpleNamespace

    from halobuzz.config import Settings
    from halobuzz.core.storage import LocalStorage
    from halobuzz.media import radio, radio_service

    settings = Settings(data_dir=tmp / "radio-var")
    src = tmp / "track.m4a"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=60", "-f", "lavfi",
         "-i", "anoisesrc=d=60:a=0.1", "-filter_complex", "amix=inputs=2", "-c:a", "aac", "-b:a", "192k", str(src)],
        check=True,
    )  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    prepared = await radio_service.prepare_track(settings=settings, data=src.read_bytes())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    upload_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    storage = LocalStorage(tmp / "radio-storage")
    prefix = "radio/bench/tracks/t"
    for r in prepared.renditions:
        for i in range(len(prepared.segments)):
            data = (prepared.out_dir / r / f"seg_{i:05d}.ts").read_bytes()
            await storage.put(radio_service.track_segment_key(prefix, r, i), data, "video/mp2t")
    playout = radio.Playout(SimpleNamespace(settings=settings, storage=storage))  # type: ignore[arg-type]
    track = radio.TrackInfo(uuid.uuid4(), "bench", prefix, prepared.segments, prepared.renditions)
    states = []
    for _ in range(channels):
        state = playout._open(uuid.uuid4())
        state.tracks = [track]
        states.append(state)
    start_cpu = time.process_time()
    start = time.perf_counter()
    audio = 0.0
    while audio < seconds:
        for state in states:
            state.next_at = 0.0  # release the next segments now (no real-time wait)
            before_seq = state.seq
            await playout._advance_dj(state)
            emitted = state.seq - before_seq
        audio += emitted * playout.seg_seconds
    cpu = time.process_time() - start_cpu
    wall = time.perf_counter() - start
    per_channel = cpu / (audio * channels)
    print(f"radio playout ({channels} auto-DJ channels, {audio:.0f} s of audio each, {len(prepared.renditions)} "
          f"renditions, {playout.seg_seconds} s segments): {100 * per_channel:.3f}% of one core per real-time "
          f"channel ({wall:.1f} s wall); upload transcode of a 60 s track: {upload_cpu:.2f} s CPU once")  # fmt: skip
    prepared.cleanup()


if __name__ == "__main__":
    main()
