"""Publish a generated test pattern over RTMP through nginx-rtmp: live, HLS ladder, VOD, bad key."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from halobuzz.media.supervisor import hls_root
from tests.media.conftest import free_port

pytestmark = pytest.mark.usefixtures("needs_media")
DEADLINE = 60.0


async def wait_for(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.2)


async def ffprobe(path: Path) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        shutil.which("ffprobe") or "ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 0, path
    return dict(json.loads(out))


async def _setup(live: Any, nginx_rtmp: Any, make_user: Any, tmp_path: Path, *, audio_only: bool) -> Any:
    port = free_port()
    server = await live(
        media={"enabled": True, "rtmp_port": port, "segment_seconds": 1, "grace_seconds": 0,
               "ladder": "180p:200k,120p:120k", "audio_ladder": "32k,64k", "x264_preset": "ultrafast",
               "thumbnail_seconds": 1, "hls_dir": tmp_path / "hls"},
    )  # fmt: skip
    await nginx_rtmp(server.app.runtime.settings, port, server.url)
    creator = await make_user(roles=["creator"])
    resp = await server.http.post(
        "/api/v1/streams", json={"title": "Pattern", "audio_only": audio_only}, headers=creator.headers
    )
    assert resp.status_code == 201, resp.text
    return server, port, creator, resp.json()


async def _run_publish(
    live: Any, nginx_rtmp: Any, publisher: Any, make_user: Any, tmp_path: Path, *, audio_only: bool
) -> None:
    server, port, creator, stream = await _setup(live, nginx_rtmp, make_user, tmp_path, audio_only=audio_only)
    http: httpx.AsyncClient = server.http
    sid = stream["id"]

    # A bad key is refused: nginx drops the publisher and the stream stays offline.
    bad = await publisher(f"rtmp://127.0.0.1:{port}/live/not-a-key", audio_only=audio_only)
    assert await asyncio.wait_for(bad.wait(), DEADLINE) != 0
    assert (await http.get(f"/api/v1/streams/{sid}")).json()["status"] == "offline"

    pub = await publisher(f"rtmp://127.0.0.1:{port}/live/{stream['stream_key']}", audio_only=audio_only)

    async def is_live() -> bool:
        return (await http.get(f"/api/v1/streams/{sid}")).json()["status"] == "live"

    await wait_for(is_live, "stream goes live")
    playback = (await http.get(f"/api/v1/streams/{sid}/playback")).json()
    master_url = playback["url"]
    base = master_url.rsplit("/", 1)[0]

    async def master() -> str | None:
        r = await http.get(master_url)
        return r.text if r.status_code == 200 else None

    text = await wait_for(master, "master playlist")
    expected = ["a32k", "a64k"] if audio_only else ["source", "180p", "120p"]
    for name in expected:
        assert f"{name}/index.m3u8" in text
    assert "BANDWIDTH=" in text and "CODECS=" in text
    if not audio_only:
        assert "RESOLUTION=320x240" in text and "RESOLUTION=240x180" in text

    out_dir = hls_root(server.app.runtime.settings) / sid
    for name in expected:

        async def segment(name: str = name) -> str | None:
            r = await http.get(f"{base}/{name}/index.m3u8")
            segs = [line for line in r.text.splitlines() if line.endswith(".ts")] if r.status_code == 200 else []
            return segs[0] if segs else None

        first = await wait_for(segment, f"a segment of {name}")
        seg = await http.get(f"{base}/{name}/{first}")
        assert seg.status_code == 200 and "immutable" in seg.headers["cache-control"]
        info = await ffprobe(out_dir / name / first)
        kinds = {s["codec_type"] for s in info["streams"]}
        assert "audio" in kinds and (audio_only or "video" in kinds)

    # Stopping the publish ends the broadcast (grace 0) and leaves a VOD in storage.
    pub.terminate()
    await pub.wait()

    async def is_offline() -> bool:
        return (await http.get(f"/api/v1/streams/{sid}")).json()["status"] == "offline"

    await wait_for(is_offline, "stream ends")

    async def recordings() -> list[dict[str, Any]]:
        return list((await http.get(f"/api/v1/streams/{sid}/recordings")).json()["items"])

    (vod,) = await wait_for(recordings, "recording stored")
    assert vod["audio_only"] is audio_only and vod["duration_seconds"] >= 0
    storage_root = server.app.runtime.settings.data_dir
    stored = list(storage_root.rglob(f"{vod['id']}/master.m3u8"))
    assert stored, "VOD master playlist in storage"
    variant = stored[0].parent / expected[-1] / "index.m3u8"
    assert "#EXT-X-ENDLIST" in variant.read_text()
    first_seg = next(line for line in variant.read_text().splitlines() if line.endswith(".ts"))
    await ffprobe(variant.parent / first_seg)
    if not audio_only:
        assert vod["thumbnail_url"]

    # Owner deletes the VOD.
    assert (await http.delete(f"/api/v1/media/recordings/{vod['id']}", headers=creator.headers)).status_code == 204
    assert await recordings() == []


async def test_video_publish_live_hls_vod(
    live: Any, nginx_rtmp: Any, publisher: Any, make_user: Any, tmp_path: Path
) -> None:
    await _run_publish(live, nginx_rtmp, publisher, make_user, tmp_path, audio_only=False)


async def test_audio_only_publish(live: Any, nginx_rtmp: Any, publisher: Any, make_user: Any, tmp_path: Path) -> None:
    await _run_publish(live, nginx_rtmp, publisher, make_user, tmp_path, audio_only=True)
