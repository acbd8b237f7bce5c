"""Transcoder supervision over a real nginx-rtmp publish: health to the API and the owner's socket,
a killed ffmpeg restarted, a reconnect within the grace period keeping the broadcast, and an end
through the API leaving one recording of the whole broadcast."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from halobuzz.media.plane import plane
from tests.media.conftest import free_port
from tests.media.test_rtmp import wait_for
from tests.realtime.support import SocketClient

pytestmark = pytest.mark.usefixtures("needs_media")


async def test_health_restart_reconnect_and_end(
    live: Any, nginx_rtmp: Any, publisher: Any, make_user: Any, tmp_path: Path
) -> None:
    port = free_port()
    server = await live(
        media={"enabled": True, "rtmp_port": port, "segment_seconds": 1, "grace_seconds": 120,
               "audio_ladder": "32k", "health_interval_seconds": 0.5, "hls_dir": tmp_path / "hls"},
    )  # fmt: skip
    await nginx_rtmp(server.app.runtime.settings, port, server.url)
    http = server.http
    creator = await make_user(roles=["creator"])
    stream = (
        await http.post("/api/v1/streams", json={"title": "Radio", "audio_only": True}, headers=creator.headers)
    ).json()
    sid = stream["id"]
    sock = SocketClient()
    await sock.connect(server, creator.access_token)
    try:
        url = f"rtmp://127.0.0.1:{port}/live/{stream['stream_key']}"
        pub = await publisher(url, audio_only=True)
        supervisor = plane(server.app.runtime).supervisor
        playlist = tmp_path / "hls" / sid / "a32k" / "index.m3u8"

        def segments() -> list[str]:
            text = playlist.read_text() if playlist.exists() else ""
            return [x for x in text.splitlines() if x.endswith(".ts")]

        async def health() -> dict[str, Any]:
            r = await http.get(f"/api/v1/streams/{sid}/media/health", headers=creator.headers)
            assert r.status_code == 200, r.text
            return dict(r.json())

        async def transcoding() -> dict[str, Any] | None:
            h = await health()
            return h if h["state"] == "transcoding" and h["speed"] and segments() else None

        first = await wait_for(transcoding, "health reports transcoding")
        assert first["live"] is True and first["restarts"] == 0 and first["speed"] > 0
        event = await sock.wait_for("stream_health", lambda d: d["stream_id"] == sid and d["state"] == "transcoding")
        assert event["restarts"] == 0
        other = await make_user()
        r = await http.get(f"/api/v1/streams/{sid}/media/health", headers=other.headers)
        assert r.status_code == 403
        broadcast = (await http.get(f"/api/v1/streams/{sid}")).json()["current_broadcast"]["id"]

        # ffmpeg dies: the supervisor starts it again and the playlist goes on.
        before = len(segments())
        proc = supervisor.jobs[uuid.UUID(sid)].proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)

        async def restarted() -> bool:
            h = await health()
            return h["restarts"] == 1 and h["state"] == "transcoding" and len(segments()) > before + 1

        await wait_for(restarted, "ffmpeg restarted")
        assert "#EXT-X-DISCONTINUITY" in playlist.read_text()

        # The publisher drops and comes back within the grace period: same broadcast, same job.
        pub.terminate()
        await pub.wait()

        async def waiting() -> bool:
            return (await health())["state"] == "waiting"

        await wait_for(waiting, "the job waits for the publisher")
        assert (await http.get(f"/api/v1/streams/{sid}")).json()["status"] == "live"
        count = len(segments())
        pub = await publisher(url, audio_only=True)

        async def resumed() -> bool:
            return (await health())["state"] == "transcoding" and len(segments()) > count + 1

        await wait_for(resumed, "transcoding resumes")
        body = (await http.get(f"/api/v1/streams/{sid}")).json()
        assert body["status"] == "live" and body["current_broadcast"]["id"] == broadcast
        total = len(segments())

        # Ending through the API stops the transcoder and records the whole broadcast once.
        assert (await http.post(f"/api/v1/streams/{sid}/end", headers=creator.headers)).status_code == 200

        async def recordings() -> list[dict[str, Any]]:
            return list((await http.get(f"/api/v1/streams/{sid}/recordings")).json()["items"])

        (vod,) = await wait_for(recordings, "one recording")
        assert vod["broadcast_id"] == broadcast and vod["duration_seconds"] >= total - 1
        assert (await health())["state"] == "offline"
        pub.terminate()
        await pub.wait()
    finally:
        await sock.close()
