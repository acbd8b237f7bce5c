"""`halobuzz media` without nginx (ffmpeg listeners behind the key check) and SRT ingest.

The real command runs as a subprocess against a real API server; a generated test pattern is
published over RTMP and over SRT: a bad key is refused, a good one goes live through the callbacks,
the ladder's playlists fill, and stopping ends the broadcast with a recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.media.conftest import free_port
from tests.media.test_rtmp import DEADLINE, ffprobe, wait_for

pytestmark = pytest.mark.usefixtures("needs_media")
SECRET = "ingest-callback-secret"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def ingest_command(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Run `halobuzz media` (ffmpeg mode) until the test ends; returns its ports once it listens."""
    procs: list[asyncio.subprocess.Process] = []
    drains: list[asyncio.Future[None]] = []

    async def start(api_url: str, *, update_seconds: int = 5) -> dict[str, int]:
        ports = {"rtmp": free_port(), "srt": free_udp_port(), "hub": free_port()}
        env = {
            **os.environ,
            "HALOBUZZ_DATA_DIR": str(tmp_path / "ingest"),
            "HALOBUZZ_LOG_FORMAT": "console",
            "MEDIA_INGEST": "ffmpeg",
            "MEDIA_INGEST_BIND": "127.0.0.1",
            "MEDIA_RTMP_PORT": str(ports["rtmp"]),
            "MEDIA_SRT_PORT": str(ports["srt"]),
            "MEDIA_HUB_PORT": str(ports["hub"]),
            "MEDIA_API_BASE_URL": api_url,
            "MEDIA_CALLBACK_SECRET": SECRET,
            "MEDIA_UPDATE_SECONDS": str(update_seconds),
        }
        binary = Path(sys.executable).with_name("halobuzz")
        proc = await asyncio.create_subprocess_exec(
            str(binary), "media", env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        procs.append(proc)
        assert proc.stdout is not None
        seen = b""
        while b"srt_started" not in seen:
            line = await asyncio.wait_for(proc.stdout.readline(), DEADLINE)
            assert line, f"`halobuzz media` exited: {seen.decode(errors='replace')}"
            seen += line

        async def drain() -> None:
            assert proc.stdout is not None
            while await proc.stdout.readline():
                pass

        drains.append(asyncio.ensure_future(drain()))
        return ports

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 20)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def _publish_cycle(server: Any, publisher: Any, url_for: Callable[[str], str], stream: dict[str, Any]) -> None:
    http = server.http
    sid = stream["id"]
    bad = await publisher(url_for("not-a-stream-key"))
    assert await asyncio.wait_for(bad.wait(), DEADLINE) != 0
    assert (await http.get(f"/api/v1/streams/{sid}")).json()["status"] == "offline"

    pub = await publisher(url_for(stream["stream_key"]))

    async def is_live() -> bool:
        return (await http.get(f"/api/v1/streams/{sid}")).json()["status"] == "live"

    await wait_for(is_live, "stream goes live")
    master_url = (await http.get(f"/api/v1/streams/{sid}/playback")).json()["url"]
    base = master_url.rsplit("/", 1)[0]

    async def master() -> str | None:
        r = await http.get(master_url)
        return r.text if r.status_code == 200 else None

    text = await wait_for(master, "master playlist")
    assert "source/index.m3u8" in text and "120p/index.m3u8" in text and "RESOLUTION=320x240" in text
    from halobuzz.media.supervisor import hls_root

    out_dir = hls_root(server.app.runtime.settings) / sid
    for name in ("source", "120p"):

        async def segment(name: str = name) -> str | None:
            r = await http.get(f"{base}/{name}/index.m3u8")
            segs = [x for x in r.text.splitlines() if x.endswith(".ts")] if r.status_code == 200 else []
            return segs[0] if segs else None

        first = await wait_for(segment, f"a segment of {name}")
        kinds = {s["codec_type"] for s in (await ffprobe(out_dir / name / first))["streams"]}
        assert kinds == {"audio", "video"}
    pub.terminate()
    await pub.wait()

    async def is_offline() -> bool:
        return (await http.get(f"/api/v1/streams/{sid}")).json()["status"] == "offline"

    await wait_for(is_offline, "stream ends")

    async def recordings() -> list[dict[str, Any]]:
        return list((await http.get(f"/api/v1/streams/{sid}/recordings")).json()["items"])

    (vod,) = await wait_for(recordings, "recording stored")
    assert vod["duration_seconds"] >= 1


async def test_ffmpeg_ingest_rtmp_and_srt(
    live: Any, ingest_command: Any, publisher: Any, make_user: Any, tmp_path: Path
) -> None:
    server = await live(
        media={"enabled": True, "segment_seconds": 1, "grace_seconds": 0, "ladder": "120p:120k",
               "x264_preset": "ultrafast", "thumbnail_seconds": 1, "hls_dir": tmp_path / "hls",
               "callback_secret": SECRET},
    )  # fmt: skip
    ports = await ingest_command(server.url)
    creator = await make_user(roles=["creator"])

    async def new_stream() -> dict[str, Any]:
        resp = await server.http.post("/api/v1/streams", json={"title": "Pattern"}, headers=creator.headers)
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    await _publish_cycle(
        server, publisher, lambda key: f"rtmp://127.0.0.1:{ports['rtmp']}/live/{key}", await new_stream()
    )
    await _publish_cycle(
        server, publisher, lambda key: f"srt://127.0.0.1:{ports['srt']}?streamid={key}&connect_timeout=8000",
        await new_stream(),
    )  # fmt: skip
