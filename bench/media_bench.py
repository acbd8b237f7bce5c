"""Media plane benchmark: ffmpeg speed factor and CPU cores for the default video ladder on a 720p30
source, and CPU per channel for the AAC audio ladder (speech-like source: a tone under noise).
Usage: python bench/media_bench.py [seconds] [video|audio|both]"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
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


if __name__ == "__main__":
    main()
