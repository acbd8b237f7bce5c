"""Real nginx-rtmp, ffmpeg publishers and the API server for the media plane tests."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from halobuzz.config import Settings
from halobuzz.media.nginx import find_nginx, render_conf, rtmp_module
from tests.realtime.support import live  # noqa: F401  (fixture)

FFMPEG = shutil.which("ffmpeg")


@pytest.fixture
def needs_media() -> None:
    """The media tests fail (never skip) without ffmpeg and nginx-rtmp: `make test` installs them."""
    assert FFMPEG is not None and rtmp_module() is not None, (
        "ffmpeg and nginx with libnginx-mod-rtmp are required: run scripts/system-deps.sh"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def nginx_rtmp(tmp_path: Path) -> AsyncIterator[Callable[[Settings, int, str], Awaitable[None]]]:
    """Start nginx (non-root, generated config under tmp_path); stopped when the test ends."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(settings: Settings, port: int, api_url: str) -> None:
        work = tmp_path / "nginx"
        work.mkdir(exist_ok=True)
        conf = work / "nginx.conf"
        conf.write_text(render_conf(settings, work, rtmp_port=port, api_base_url=api_url))
        binary = find_nginx(settings)
        assert binary is not None
        proc = await asyncio.create_subprocess_exec(
            binary, "-p", str(work), "-c", str(conf), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        procs.append(proc)
        for _ in range(500):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
            if proc.returncode is not None:
                raise RuntimeError((work / "error.log").read_text() if (work / "error.log").exists() else "nginx died")
            await asyncio.sleep(0.02)
        raise TimeoutError("nginx did not listen")

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


@pytest.fixture
async def publisher() -> AsyncIterator[Callable[..., Awaitable[asyncio.subprocess.Process]]]:
    """ffmpeg publishing a small generated test pattern (+ sine) over RTMP; stopped at the end."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(url: str, *, audio_only: bool = False, seconds: float | None = None) -> asyncio.subprocess.Process:
        assert FFMPEG is not None
        argv = [FFMPEG, "-hide_banner", "-loglevel", "error", "-re"]
        if not audio_only:
            argv += ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=15"]
        argv += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
        if not audio_only:
            argv += [
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
                "-g",
                "15",
                "-b:v",
                "300k",
                "-pix_fmt",
                "yuv420p",
            ]
        if seconds is not None:
            argv += ["-t", str(seconds)]
        container = "mpegts" if url.startswith("srt:") else "flv"
        argv += ["-c:a", "aac", "-b:a", "64k", "-f", container, url]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
