"""Ending a stream through the API disconnects its encoder (the ingest's on_update check), over
nginx-rtmp and over the ffmpeg front (RTMP and SRT), so the broadcast does not come back live."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.media.conftest import free_port
from tests.media.test_ingest import SECRET, ingest_command  # noqa: F401  (fixture)
from tests.media.test_rtmp import DEADLINE, wait_for

pytestmark = pytest.mark.usefixtures("needs_media")
MEDIA = {"enabled": True, "segment_seconds": 1, "grace_seconds": 0, "audio_ladder": "32k", "update_seconds": 1}


async def _end_drops_publisher(server: Any, publisher: Any, creator: Any, url_for: Any) -> None:
    http: httpx.AsyncClient = server.http
    resp = await http.post("/api/v1/streams", json={"title": "Drop me", "audio_only": True}, headers=creator.headers)
    assert resp.status_code == 201, resp.text
    stream = resp.json()
    sid = stream["id"]
    pub = await publisher(url_for(stream["stream_key"]), audio_only=True)

    async def status() -> str:
        return str((await http.get(f"/api/v1/streams/{sid}")).json()["status"])

    await wait_for(lambda: _is(status, "live"), "stream goes live")
    base = (await http.get(f"/api/v1/streams/{sid}/playback")).json()["url"].rsplit("/", 1)[0]

    async def segment() -> bool:
        r = await http.get(f"{base}/a32k/index.m3u8")
        return r.status_code == 200 and ".ts" in r.text

    await wait_for(segment, "the transcoder writes segments")
    ended = await http.post(f"/api/v1/streams/{sid}/end", headers=creator.headers)
    assert ended.status_code == 200, ended.text
    # The encoder is disconnected by the ingest: ffmpeg exits on its own (it was told to run forever).
    code = await asyncio.wait_for(pub.wait(), DEADLINE)
    assert code != 0 or pub.returncode is not None
    assert await status() == "offline"

    async def recordings() -> list[Any]:
        return list((await http.get(f"/api/v1/streams/{sid}/recordings")).json()["items"])

    assert len(await wait_for(recordings, "one recording")) == 1
    assert await status() == "offline"


async def _is(check: Any, value: str) -> bool:
    return bool(await check() == value)


async def test_end_disconnects_nginx_publisher(
    live: Any, nginx_rtmp: Any, publisher: Any, make_user: Any, tmp_path: Path
) -> None:
    port = free_port()
    server = await live(media={**MEDIA, "rtmp_port": port, "hls_dir": tmp_path / "hls"})
    await nginx_rtmp(server.app.runtime.settings, port, server.url)
    creator = await make_user(roles=["creator"])
    await _end_drops_publisher(server, publisher, creator, lambda key: f"rtmp://127.0.0.1:{port}/live/{key}")


async def test_end_disconnects_ffmpeg_front_publishers(
    live: Any,
    ingest_command: Any,  # noqa: F811
    publisher: Any,
    make_user: Any,
    tmp_path: Path,
) -> None:
    server = await live(media={**MEDIA, "hls_dir": tmp_path / "hls", "callback_secret": SECRET})
    ports = await ingest_command(server.url, update_seconds=1)
    creator = await make_user(roles=["creator"])
    await _end_drops_publisher(server, publisher, creator, lambda key: f"rtmp://127.0.0.1:{ports['rtmp']}/live/{key}")
    await _end_drops_publisher(
        server, publisher, creator, lambda key: f"srt://127.0.0.1:{ports['srt']}?streamid={key}&connect_timeout=8000"
    )
