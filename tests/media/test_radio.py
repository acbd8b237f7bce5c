"""Radio channels with real ffmpeg: tracks uploaded and transcoded, the auto-DJ playout, a scheduled
host going live over RTMP (nginx-rtmp) and back, listener tokens and counts, schedule rules."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.media.conftest import free_port
from tests.media.test_rtmp import ffprobe, wait_for

pytestmark = pytest.mark.usefixtures("needs_media")
WEEKDAYS = 7


async def sine_file(tmp_path: Path, name: str, seconds: float, frequency: int, fmt: str = "mp3") -> bytes:
    out = tmp_path / f"{name}.{fmt}"
    proc = await asyncio.create_subprocess_exec(
        shutil.which("ffmpeg") or "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
        "-i", f"sine=frequency={frequency}:sample_rate=44100:duration={seconds}", str(out),
    )  # fmt: skip
    assert await proc.wait() == 0
    return out.read_bytes()


async def upload(http: httpx.AsyncClient, cid: str, headers: dict[str, str], name: str, data: bytes) -> httpx.Response:
    return await http.post(
        f"/api/v1/radio/channels/{cid}/tracks", files={"file": (name, data)}, data={"title": name}, headers=headers
    )


def segments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.endswith(".ts")]


def media_sequence(text: str) -> int:
    return int(next(x for x in text.splitlines() if x.startswith("#EXT-X-MEDIA-SEQUENCE:")).split(":")[1])


async def test_radio_channel_auto_dj_host_and_listeners(
    live: Any, nginx_rtmp: Any, publisher: Any, make_user: Any, tmp_path: Path
) -> None:
    port = free_port()
    server = await live(
        media={"enabled": True, "rtmp_port": port, "segment_seconds": 1, "grace_seconds": 0,
               "audio_ladder": "64k,128k,256k", "hls_dir": tmp_path / "hls", "radio_playout": True,
               "radio_poll_seconds": 0.5, "radio_list_size": 4, "radio_track_max_seconds": 10},
    )  # fmt: skip
    await nginx_rtmp(server.app.runtime.settings, port, server.url)
    http: httpx.AsyncClient = server.http
    owner = await make_user(roles=["creator"])
    other = await make_user(roles=["creator"])

    resp = await http.post(
        "/api/v1/radio/channels",
        json={"name": "Awaz Pulse", "description": "Chai and news", "language": "ur", "category": "talk",
              "timezone": "Asia/Karachi"},
        headers=owner.headers,
    )  # fmt: skip
    assert resp.status_code == 201, resp.text
    channel = resp.json()
    cid = channel["id"]
    assert channel["listener_count"] == 0 and channel["now_playing"] is None

    # Bad input: 4xx, nothing changes.
    bad_zone = await http.post(
        "/api/v1/radio/channels", json={"name": "X", "timezone": "Mars/Olympus"}, headers=owner.headers
    )
    assert bad_zone.status_code == 422 and bad_zone.json()["error"]["code"] == "invalid_timezone"
    video = await sine_file(tmp_path, "video", 1, 440, fmt="mp4")  # sine in mp4: audio, accepted below
    not_audio = await upload(http, cid, owner.headers, "junk.bin", b"not audio at all" * 100)
    assert not_audio.status_code == 422 and not_audio.json()["error"]["code"] == "invalid_audio"
    too_long = await upload(http, cid, owner.headers, "long.mp3", await sine_file(tmp_path, "long", 12, 300))
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "track_too_long"
    foreign = await upload(http, cid, other.headers, "a.mp3", video)
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "not_channel_owner"
    assert (await http.get(f"/api/v1/radio/channels/{cid}/tracks")).json()["items"] == []

    # Two tracks: transcoded once to every rendition of the ladder.
    t1 = await upload(http, cid, owner.headers, "first.mp3", await sine_file(tmp_path, "first", 3, 440))
    assert t1.status_code == 201, t1.text
    t2 = await upload(http, cid, owner.headers, "second.m4a", video)
    assert t2.status_code == 201, t2.text
    first, second = t1.json(), t2.json()
    assert first["renditions"] == ["a64k", "a128k", "a256k"] and 2.5 <= first["duration_seconds"] <= 3.5
    assert first["position"] == 0 and second["position"] == 1
    bad_order = await http.put(
        f"/api/v1/radio/channels/{cid}/playlist", json={"track_ids": [first["id"]]}, headers=owner.headers
    )
    assert bad_order.status_code == 422 and bad_order.json()["error"]["code"] == "invalid_playlist"
    order = await http.put(
        f"/api/v1/radio/channels/{cid}/playlist", json={"track_ids": [second["id"], first["id"]]},
        headers=owner.headers,
    )  # fmt: skip
    assert [t["id"] for t in order.json()["items"]] == [second["id"], first["id"]]

    # Listening: a signed URL; playlists of each rendition fill and ffprobe reads the segments.
    play = (await http.get(f"/api/v1/radio/channels/{cid}/playback")).json()
    master_url = play["url"]
    base = master_url.rsplit("/", 1)[0]

    async def master() -> str | None:
        r = await http.get(master_url)
        return r.text if r.status_code == 200 else None

    text = await wait_for(master, "radio master playlist")
    for name in ("a64k", "a128k", "a256k"):
        assert f"{name}/index.m3u8" in text
    from halobuzz.media.radio import radio_root

    out = radio_root(server.app.runtime) / cid
    for name in ("a64k", "a256k"):

        async def variant(name: str = name) -> str | None:
            r = await http.get(f"{base}/{name}/index.m3u8")
            return r.text if r.status_code == 200 and segments(r.text) else None

        playlist = await wait_for(variant, f"segments of {name}")
        assert r_cache(await http.get(f"{base}/{name}/index.m3u8")) == "public, max-age=1"
        seg = segments(playlist)[0]
        got = await http.get(f"{base}/{name}/{seg}")
        assert got.status_code == 200 and got.headers["cache-control"].endswith("immutable")
        kinds = {s["codec_type"] for s in (await ffprobe(out / name / seg))["streams"]}
        assert kinds == {"audio"}

    async def now_playing(kind: str) -> dict[str, Any] | None:
        body = (await http.get(f"/api/v1/radio/channels/{cid}")).json()
        np = body["now_playing"]
        return body if np and np["kind"] == kind else None

    body = await wait_for(lambda: now_playing("track"), "now playing a track")
    assert body["now_playing"]["track_id"] in (first["id"], second["id"])
    assert body["listener_count"] == 1

    # Auto-DJ loops through both tracks: numbering continues, discontinuities at track changes.
    async def looped() -> str | None:
        r = await http.get(f"{base}/a128k/index.m3u8")
        return r.text if media_sequence(r.text) >= 6 and "#EXT-X-DISCONTINUITY\n" in r.text else None

    looped_text = await wait_for(looped, "auto-DJ moves on to the next track")
    numbers = [int(s.removeprefix("seg_").removesuffix(".ts")) for s in segments(looped_text)]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:" in looped_text

    # A second listener (signed in) counts once more; forged and expired tokens get 403.
    play2 = (await http.get(f"/api/v1/radio/channels/{cid}/playback", headers=other.headers)).json()
    assert play2["listener_id"] == other.id.hex
    assert (await http.get(play2["url"])).status_code == 200
    assert (await http.get(f"/api/v1/radio/channels/{cid}")).json()["listener_count"] == 2
    token = master_url.split("/")[-2]
    expires, lid, mac = token.split(".")
    forged = f"/api/v1/media/radio/{cid}/{expires}.someoneelse.{mac}/master.m3u8"
    expired_token = f"{int(time.time()) - 5}.{lid}.{mac}"
    seg_name = segments(looped_text)[-1]
    assert (await http.get(f"{base}/a128k/{seg_name}")).status_code == 200
    for url in (forged, f"/api/v1/media/radio/{cid}/{expired_token}/a64k/index.m3u8",
                f"/api/v1/media/radio/{cid}/{expires}.someoneelse.{mac}/a128k/{seg_name}",
                f"/api/v1/media/radio/{cid}/{expired_token}/a128k/{seg_name}",
                f"/api/v1/media/radio/{cid}/garbage/master.m3u8"):  # fmt: skip
        r = await http.get(url)
        assert r.status_code == 403 and r.json()["error"]["code"] == "bad_playback_token", url
    other_channel = (await http.post("/api/v1/radio/channels", json={"name": "B"}, headers=other.headers)).json()
    r = await http.get(f"/api/v1/media/radio/{other_channel['id']}/{token}/master.m3u8")
    assert r.status_code == 403

    # The schedule: a show now (weekly slot in Karachi time) with the owner's audio stream.
    stream = (
        await http.post("/api/v1/streams", json={"title": "Morning show", "audio_only": True}, headers=owner.headers)
    ).json()
    video_stream = (await http.post("/api/v1/streams", json={"title": "Cam"}, headers=owner.headers)).json()
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Karachi"))
    slot = {"title": "Morning", "host_id": str(owner.id), "stream_id": stream["id"], "weekday": local.weekday(),
            "start_time": f"{local.hour:02d}:00", "duration_minutes": 120}  # fmt: skip
    not_audio_stream = await http.post(
        f"/api/v1/radio/channels/{cid}/shows", json={**slot, "stream_id": video_stream["id"]}, headers=owner.headers
    )
    assert not_audio_stream.status_code == 422 and not_audio_stream.json()["error"]["code"] == "stream_not_audio"
    not_hosts = await http.post(
        f"/api/v1/radio/channels/{cid}/shows", json={**slot, "host_id": str(other.id)}, headers=owner.headers
    )
    assert not_hosts.status_code == 422 and not_hosts.json()["error"]["code"] == "invalid_stream"
    both = await http.post(
        f"/api/v1/radio/channels/{cid}/shows", json={**slot, "starts_at": "2027-01-01T10:00:00"}, headers=owner.headers
    )
    assert both.status_code == 422
    show = await http.post(f"/api/v1/radio/channels/{cid}/shows", json=slot, headers=owner.headers)
    assert show.status_code == 201, show.text
    # Overlaps are refused: the same weekly slot shifted, and a dated slot inside it.
    shifted = {**slot, "start_time": f"{(local.hour + 1) % 24:02d}:30"}
    if local.hour == 23:
        shifted["weekday"] = (local.weekday() + 1) % WEEKDAYS
    clash = await http.post(f"/api/v1/radio/channels/{cid}/shows", json=shifted, headers=owner.headers)
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "show_overlap"
    dated = {k: v for k, v in slot.items() if k not in ("weekday", "start_time")}
    inside = local.replace(minute=30, second=0, microsecond=0, tzinfo=None).isoformat()
    clash2 = await http.post(
        f"/api/v1/radio/channels/{cid}/shows", json={**dated, "starts_at": inside}, headers=owner.headers
    )
    assert clash2.status_code == 409
    later = (local.replace(hour=0, minute=0, tzinfo=None)).isoformat().replace(str(local.year), str(local.year + 2))
    ok_dated = await http.post(
        f"/api/v1/radio/channels/{cid}/shows", json={**dated, "starts_at": later, "duration_minutes": 30},
        headers=owner.headers,
    )  # fmt: skip
    assert ok_dated.status_code == 201, ok_dated.text
    past = await http.post(
        f"/api/v1/radio/channels/{cid}/shows", json={**dated, "starts_at": "2020-01-01T10:00:00"},
        headers=owner.headers,
    )  # fmt: skip
    assert past.status_code == 422 and past.json()["error"]["code"] == "slot_in_past"
    # Another creator's stream is carried only once they invite the channel's owner to it.
    guest_stream = (
        await http.post("/api/v1/streams", json={"title": "Guest", "audio_only": True}, headers=other.headers)
    ).json()
    elsewhere = {**slot, "host_id": str(other.id), "stream_id": guest_stream["id"],
                 "weekday": (local.weekday() + 3) % WEEKDAYS}  # fmt: skip
    no_consent = await http.post(f"/api/v1/radio/channels/{cid}/shows", json=elsewhere, headers=owner.headers)
    assert no_consent.status_code == 403 and no_consent.json()["error"]["code"] == "host_not_consenting"
    invited = await http.post(
        f"/api/v1/streams/{guest_stream['id']}/guests", json={"user_id": str(owner.id)}, headers=other.headers
    )
    assert invited.status_code == 201, invited.text
    guest_show = await http.post(f"/api/v1/radio/channels/{cid}/shows", json=elsewhere, headers=owner.headers)
    assert guest_show.status_code == 201, guest_show.text
    shows = (await http.get(f"/api/v1/radio/channels/{cid}/shows")).json()["items"]
    assert {s["kind"] for s in shows} == {"weekly", "dated"} and len(shows) == 3
    gone = await http.delete(f"/api/v1/radio/channels/{cid}/shows/{guest_show.json()['id']}", headers=owner.headers)
    assert gone.status_code == 204
    assert len((await http.get(f"/api/v1/radio/channels/{cid}/shows")).json()["items"]) == 2

    # The host goes live: the channel carries the show, then returns to the auto-DJ.
    before = media_sequence((await http.get(f"{base}/a64k/index.m3u8")).text)
    pub = await publisher(f"rtmp://127.0.0.1:{port}/live/{stream['stream_key']}", audio_only=True)
    body = await wait_for(lambda: now_playing("show"), "channel carries the live host")
    assert body["now_playing"]["show_id"] == show.json()["id"]
    assert body["now_playing"]["stream_id"] == stream["id"]
    switched_at = media_sequence((await http.get(f"{base}/a64k/index.m3u8")).text)

    async def host_segment() -> str | None:
        r = await http.get(f"{base}/a256k/index.m3u8")
        fresh = [s for s in segments(r.text) if int(s[4:10]) > switched_at + 1]
        return fresh[-1] if fresh else None

    seg = await wait_for(host_segment, "host segments in the channel")
    probe = await ffprobe(out / "a256k" / seg)
    assert [s["codec_type"] for s in probe["streams"]] == ["audio"]
    assert switched_at >= before
    pub.terminate()
    await pub.wait()
    body = await wait_for(lambda: now_playing("track"), "back to the auto-DJ")
    after = media_sequence((await http.get(f"{base}/a64k/index.m3u8")).text)
    assert after >= switched_at

    # The owner deletes the channel: gone from the list and its playback.
    listing = (await http.get("/api/v1/radio/channels")).json()["items"]
    assert {c["id"] for c in listing} >= {cid, other_channel["id"]}
    assert (await http.delete(f"/api/v1/radio/channels/{cid}", headers=other.headers)).status_code == 403
    assert (await http.delete(f"/api/v1/radio/channels/{cid}", headers=owner.headers)).status_code == 204
    assert (await http.get(f"/api/v1/radio/channels/{cid}")).status_code == 404
    assert (await http.get(f"/api/v1/radio/channels/{cid}/playback")).status_code == 404


def r_cache(resp: httpx.Response) -> str:
    return resp.headers.get("cache-control", "")


async def test_radio_crud_uploads_and_bad_input(app_factory: Any, make_user: Any, tmp_path: Path) -> None:
    """Owner CRUD and the upload checks, without playout: non-audio, playlists referencing other
    files, over-size uploads are refused with nothing stored; deleting a track purges its segments."""
    from tests.conftest import client_for

    app = await app_factory(
        media={"radio_track_max_bytes": 200_000, "segment_seconds": 1, "audio_ladder": "32k,64k"},
        jobs={"in_process": True, "relay_poll_seconds": 0.1},
    )
    owner = await make_user(roles=["creator"])
    viewer = await make_user()
    async with client_for(app) as http:
        refused = await http.post("/api/v1/radio/channels", json={"name": "Mine"}, headers=viewer.headers)
        assert refused.status_code == 403
        blank = await http.post("/api/v1/radio/channels", json={"name": "  "}, headers=owner.headers)
        assert blank.status_code == 422
        bad_lang = await http.post(
            "/api/v1/radio/channels", json={"name": "A", "language": "x!"}, headers=owner.headers
        )
        assert bad_lang.status_code == 422
        cid = (await http.post("/api/v1/radio/channels", json={"name": "Mine"}, headers=owner.headers)).json()["id"]
        patched = await http.patch(
            f"/api/v1/radio/channels/{cid}", json={"name": "Renamed", "timezone": "Asia/Kathmandu"},
            headers=owner.headers,
        )  # fmt: skip
        assert patched.status_code == 200 and patched.json()["timezone"] == "Asia/Kathmandu"
        not_owner = await http.patch(f"/api/v1/radio/channels/{cid}", json={"name": "X"}, headers=viewer.headers)
        assert not_owner.status_code == 403
        bad_zone = await http.patch(f"/api/v1/radio/channels/{cid}", json={"timezone": "Nope"}, headers=owner.headers)
        assert bad_zone.status_code == 422
        assert (await http.get(f"/api/v1/radio/channels/{cid}")).json()["name"] == "Renamed"

        # A video, a playlist pointing at a local file, and an over-size file: refused.
        video_path = tmp_path / "clip.mp4"
        proc = await asyncio.create_subprocess_exec(
            "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:duration=1",
            "-pix_fmt", "yuv420p", str(video_path),
        )  # fmt: skip
        assert await proc.wait() == 0
        clip = await upload(http, cid, owner.headers, "clip.mp4", video_path.read_bytes())
        assert clip.status_code == 422 and clip.json()["error"]["code"] == "invalid_audio"
        small = await sine_file(tmp_path, "small", 2, 500)
        (tmp_path / "ref.mp3").write_bytes(small)
        playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nfile://{tmp_path / 'ref.mp3'}\n#EXT-X-ENDLIST\n"
        hls = await upload(http, cid, owner.headers, "list.m3u8", playlist.encode())
        assert hls.status_code == 422 and hls.json()["error"]["code"] == "invalid_audio"
        concat = f"ffconcat version 1.0\nfile '{tmp_path / 'ref.mp3'}'\n"
        listed = await upload(http, cid, owner.headers, "list.txt", concat.encode())
        assert listed.status_code == 422
        big = await upload(http, cid, owner.headers, "big.wav", await sine_file(tmp_path, "big", 4, 300, fmt="wav"))
        assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"  # the body limit
        over = await upload(
            http, cid, owner.headers, "over.wav", await sine_file(tmp_path, "over", 2.5, 300, fmt="wav")
        )
        assert over.status_code == 413 and over.json()["error"]["code"] == "track_too_large"  # the track limit
        assert (await http.get(f"/api/v1/radio/channels/{cid}/tracks")).json()["items"] == []
        root = app.runtime.settings.data_dir / "media"
        assert not (root / "radio").exists()

        ok = await upload(http, cid, owner.headers, "small.mp3", small)
        assert ok.status_code == 201, ok.text
        track = ok.json()
        stored = sorted(p.relative_to(root).as_posix() for p in (root / "radio").rglob("*.ts"))
        assert stored and all(p.startswith(f"radio/{cid}/tracks/{track['id']}/") for p in stored)
        assert {p.split("/")[4] for p in stored} == {"a32k", "a64k"}
        # Track files are not public on the local backend.
        public = await http.get(f"/media/{stored[0]}")
        assert public.status_code == 403 and public.json()["error"]["code"] == "media_needs_token"
        gone = await http.delete(f"/api/v1/radio/channels/{cid}/tracks/{track['id']}", headers=viewer.headers)
        assert gone.status_code == 403
        gone = await http.delete(f"/api/v1/radio/channels/{cid}/tracks/{track['id']}", headers=owner.headers)
        assert gone.status_code == 204
        assert (await http.get(f"/api/v1/radio/channels/{cid}/tracks")).json()["items"] == []

        async def purged() -> bool:
            return not list((root / "radio").rglob("*.ts"))

        await wait_for(purged, "track segments purged")
        missing = await http.delete(f"/api/v1/radio/channels/{cid}/tracks/{track['id']}", headers=owner.headers)
        assert missing.status_code == 404


def test_weekly_slots_wrap_around_the_week() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from halobuzz.media.radio_service import Slot, overlaps, slot_running

    tz = ZoneInfo("Asia/Karachi")
    sunday_night = Slot(120, week_start=6 * 1440 + 23 * 60)  # Sunday 23:00-01:00
    monday_early = Slot(30, week_start=30)  # Monday 00:30
    monday_late = Slot(30, week_start=60)  # Monday 01:00
    assert overlaps(sunday_night, monday_early, tz) and overlaps(monday_early, sunday_night, tz)
    assert not overlaps(sunday_night, monday_late, tz)
    # 2026-12-06 is a Sunday; 18:30 UTC is 23:30 in Karachi.
    at = datetime(2026, 12, 6, 18, 30, tzinfo=UTC)
    assert slot_running(sunday_night, at, tz) and not slot_running(monday_late, at, tz)
    dated = Slot(60, start=datetime(2026, 12, 6, 18, 0, tzinfo=UTC))  # Sunday 23:00 Karachi
    assert overlaps(dated, monday_early, tz) is False and overlaps(dated, sunday_night, tz)
