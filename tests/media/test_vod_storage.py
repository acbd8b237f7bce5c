"""Recordings as VODs in storage, through the API: on the local backend and on S3 (SeaweedFS) with
presigned segment URLs; listed per stream and per channel; deleted by the owner with their objects."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from halobuzz.media import service
from tests.conftest import assert_error, client_for
from tests.core.conftest import SeaweedS3, seaweedfs  # noqa: F401  (fixture)


def _hls_dir(root: Path) -> Path:
    """A small finished HLS ladder as the transcoder leaves it (two AAC renditions, 1 s segments)."""
    out = root / "hls"
    for name in ("a32k", "a64k"):
        (out / name).mkdir(parents=True)
    subprocess.run(
        [shutil.which("ffmpeg") or "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
         "-map", "0:a", "-map", "0:a", "-c:a", "aac", "-b:a:0", "32k", "-b:a:1", "64k", "-f", "hls", "-hls_time", "1",
         "-hls_list_size", "0", "-hls_playlist_type", "event", "-hls_flags", "omit_endlist",
         "-hls_segment_filename", str(out / "%v" / "seg_%05d.ts"), "-var_stream_map", "a:0,name:a32k a:1,name:a64k",
         str(out / "%v" / "index.m3u8")],
        check=True,
    )  # fmt: skip
    (out / "master.m3u8").write_text('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=35200,CODECS="mp4a.40.2"\na32k/index.m3u8\n')
    return out


async def _recorded(app: Any, http: httpx.AsyncClient, creator: Any, tmp_path: Path) -> dict[str, Any]:
    stream = (
        await http.post("/api/v1/streams", json={"title": "Show", "audio_only": True}, headers=creator.headers)
    ).json()
    assert (await http.post(f"/api/v1/streams/{stream['id']}/start", headers=creator.headers)).status_code == 200
    assert (await http.post(f"/api/v1/streams/{stream['id']}/end", headers=creator.headers)).status_code == 200
    rt = app.runtime
    async with rt.db.session() as session:
        rec = await service.store_recording(
            session=session,
            storage=rt.storage,
            stream_id=uuid.UUID(stream["id"]),
            out_dir=_hls_dir(tmp_path),
            seconds=3,
        )
    assert rec is not None
    return dict(stream)


async def _play_and_delete(app: Any, creator: Any, tmp_path: Path, fetch: Any, gone: Any) -> None:
    async with client_for(app) as http:
        stream = await _recorded(app, http, creator, tmp_path)
        (item,) = (await http.get(f"/api/v1/users/{creator.username}/recordings")).json()["items"]
        assert (await http.get(f"/api/v1/streams/{stream['id']}/recordings")).json()["items"][0]["id"] == item["id"]
        assert item["duration_seconds"] == 3 and item["audio_only"] is True and item["size_bytes"] > 0
        master = await http.get(item["url"])
        assert master.status_code == 200 and "a32k/index.m3u8" in master.text
        base = item["url"].rsplit("/", 1)[0]
        variant = await http.get(f"{base}/a32k/index.m3u8")
        assert (
            variant.status_code == 200
            and "#EXT-X-ENDLIST" in variant.text
            and "max-age" in variant.headers["cache-control"]
        )
        segment_urls = [x for x in variant.text.splitlines() if x and not x.startswith("#")]
        assert len(segment_urls) >= 3
        for url in segment_urls:
            data = await fetch(http, url, base)
            assert data[:1] == b"G"  # an MPEG-TS sync byte
        forged = item["url"].replace("/master.m3u8", "x/master.m3u8")
        assert_error(await http.get(forged), 403, "bad_playback_token")
        assert_error(await http.get(f"{base}/a32k/not-stored.ts"), 404, "media_not_found")

        assert (await http.delete(f"/api/v1/recordings/{item['id']}", headers=creator.headers)).status_code == 204
        assert (await http.get(f"/api/v1/users/{creator.username}/recordings")).json()["items"] == []
        assert_error(await http.get(item["url"]), 404, "recording_not_found")
        deadline = time.monotonic() + 30
        while not await gone(segment_urls[0], stream["id"]):
            assert time.monotonic() < deadline, "stored objects removed after deletion"
            await asyncio.sleep(0.1)


async def test_vod_on_local_storage(app_factory: Any, make_user: Any, tmp_path: Path) -> None:
    """Local backend: segments come through the token-checked route (relative URIs in the
    playlist); the stored files are not public under /media, and a forged token gets 403."""
    app = await app_factory(jobs={"in_process": True, "relay_poll_seconds": 0.1})
    creator = await make_user(roles=["creator"])
    root = app.runtime.settings.data_dir / "media"

    async def fetch(http: httpx.AsyncClient, url: str, base: str) -> bytes:
        assert url.endswith(".ts") and "/" not in url
        r = await http.get(f"{base}/a32k/{url}")
        assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=86400, immutable"
        token = base.split("/")[-1]
        forged = base.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
        assert_error(await http.get(f"{forged}/a32k/{url}"), 403, "bad_playback_token")
        (stored,) = [p for p in root.rglob(url) if "a32k" in p.parts]
        public = "/media/" + stored.relative_to(root).as_posix()
        assert_error(await http.get(public), 403, "media_needs_token")
        assert_error(await http.get(public.replace("/media/", "/media//")), 403, "media_needs_token")
        return r.content

    async def gone(url: str, stream_id: str) -> bool:
        return not [p for p in (root / "vod" / stream_id).rglob(url)]

    await _play_and_delete(app, creator, tmp_path, fetch, gone)


async def test_vod_on_s3_with_presigned_urls(
    app_factory: Any,
    make_user: Any,
    tmp_path: Path,
    seaweedfs: SeaweedS3,  # noqa: F811
) -> None:
    app = await app_factory(s3=seaweedfs.settings(), jobs={"in_process": True, "relay_poll_seconds": 0.1})
    creator = await make_user(roles=["creator"])

    async def fetch(http: httpx.AsyncClient, url: str, base: str) -> bytes:
        assert url.startswith(seaweedfs.endpoint) and "X-Amz-Signature=" in url
        async with httpx.AsyncClient() as raw:
            r = await raw.get(url)
            assert r.status_code == 200
            unsigned = await raw.get(url.split("?", 1)[0])
            assert unsigned.status_code == 403
            return r.content

    async def gone(url: str, stream_id: str) -> bool:
        async with httpx.AsyncClient() as raw:
            return (await raw.get(url)).status_code == 404

    await _play_and_delete(app, creator, tmp_path, fetch, gone)
