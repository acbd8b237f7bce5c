"""Radio pages over HTTP: the directory, a channel's page (player URL, now playing, listeners,
schedule, tracks) and the studio (create, edit, delete, upload tracks — real audio made by ffmpeg —,
reorder the playlist with up/down buttons, delete tracks, schedule and remove shows), with the API's
error messages and statuses, CSRF and owner checks."""

from __future__ import annotations

import asyncio
import html
import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx

from halobuzz.app import HaloBuzzApp
from halobuzz.media.radio_service import now_playing_key
from tests.web.conftest import alert_of, csrf_of

API = "/api/v1"


async def sine(tmp_path: Path, name: str, seconds: float = 1, frequency: int = 440, fmt: str = "mp3") -> bytes:
    out = tmp_path / f"{name}.{fmt}"
    proc = await asyncio.create_subprocess_exec(
        shutil.which("ffmpeg") or "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
        "-i", f"sine=frequency={frequency}:sample_rate=44100:duration={seconds}", str(out),
    )  # fmt: skip
    assert await proc.wait() == 0
    return out.read_bytes()


async def _ok(response: httpx.Response, *codes: int) -> Any:
    assert response.status_code in (codes or (200, 201)), (response.request.url, response.status_code, response.text)
    return response.json() if response.content else None


async def _channel(c: httpx.AsyncClient, owner: Any, **fields: Any) -> dict[str, Any]:
    body = {"name": "Awaz Pulse", "description": "Chai and news", "language": "ur", "timezone": "Asia/Karachi"}
    created: dict[str, Any] = await _ok(
        await c.post(f"{API}/radio/channels", json={**body, **fields}, headers=owner.headers)
    )
    return created


async def _post(c: httpx.AsyncClient, page_url: str, action: str, files: Any = None, **data: Any) -> httpx.Response:
    page = await c.get(page_url)
    assert page.status_code == 200, (page_url, page.status_code, page.text[-1500:])
    return await c.post(action, data={"csrf_token": csrf_of(page.text), **data}, files=files)


async def _track_titles(c: httpx.AsyncClient, cid: str) -> list[str]:
    return [t["title"] for t in (await _ok(await c.get(f"{API}/radio/channels/{cid}/tracks")))["items"]]


async def test_directory_and_channel_page(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any, browser_for: Any, tmp_path: Path
) -> None:
    owner = await make_user("radiohost", roles=["creator"])
    channel = await _channel(client, owner)
    cid = channel["id"]
    upload = await client.post(
        f"{API}/radio/channels/{cid}/tracks", files={"file": ("chai.mp3", await sine(tmp_path, "chai"))},
        data={"title": "Morning chai"}, headers=owner.headers,
    )  # fmt: skip
    await _ok(upload)

    home = await client.get("/")
    assert 'href="/radio"' in home.text  # the header links to the directory
    listing = await client.get("/radio")
    assert listing.status_code == 200
    assert f'href="/radio/{cid}"' in listing.text and "Awaz Pulse" in listing.text
    assert "Nothing is playing right now." in listing.text and "0 listening" in listing.text
    assert "radiohost" in listing.text
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", listing.text) is None

    page = await client.get(f"/radio/{cid}")
    assert page.status_code == 200
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) is None and re.search(r"\sstyle=", page.text) is None
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<audio id="media"' in page.text and "/static/js/radio.js" in page.text and "hls.min.js" in page.text
    url = html.unescape(re.search(r'data-hls-url="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
    assert url.startswith(f"/api/v1/media/radio/{cid}/") and url.endswith("/master.m3u8")
    assert re.search(r'data-expires-at="\d{4}-\d\d-\d\dT', page.text)
    assert "Morning chai" in page.text and "No shows scheduled." in page.text and "Chai and news" in page.text
    assert "Nothing is playing right now." in page.text
    assert "Manage the channel" not in page.text  # only for its owner

    # What the playout publishes shows on both pages.
    now = {"kind": "track", "track_id": upload.json()["id"], "title": "Morning chai", "started_at": None}
    await app.runtime.kv.set(now_playing_key(uuid.UUID(cid)), json.dumps(now), 60)
    assert "Now playing: Morning chai" in (await client.get(f"/radio/{cid}")).text
    assert "Now playing: Morning chai" in (await client.get("/radio")).text
    assert 'aria-current="true"' in (await client.get(f"/radio/{cid}")).text

    # A signed-in listener's URL names them (one listener on every device); the owner may manage.
    web = await browser_for(owner)
    mine = await web.get(f"/radio/{cid}")
    signed = html.unescape(re.search(r'data-hls-url="([^"]+)"', mine.text).group(1))  # type: ignore[union-attr]
    assert signed.split("/")[6].split(".")[1] == uuid.UUID(str(owner.id)).hex
    assert f'href="/studio/radio/{cid}"' in mine.text
    # The listener URL plays: the token is accepted by the media route (404 until playout writes).
    assert (await client.get(signed)).status_code in (200, 404)
    assert (await client.get(signed.replace("/master.m3u8", "x/master.m3u8").replace(".", "-", 1))).status_code == 403

    # Other languages, right to left included.
    urdu = await client.get(f"/radio/{cid}?lang=ur")
    assert 'dir="rtl"' in urdu.text and "ابھی چل رہا ہے: Morning chai" in urdu.text

    # Unknown channels: 404 pages.
    assert (await client.get("/radio/not-an-id")).status_code == 404
    missing = await client.get(f"/radio/{uuid.uuid4()}")
    assert missing.status_code == 404 and "radio channel not found" in missing.text


async def test_studio_channel_tracks_playlist_and_delete(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any, browser_for: Any, tmp_path: Path
) -> None:
    owner = await make_user("studioradio", roles=["creator"])
    other = await make_user("otherradio", roles=["creator"])
    viewer = await make_user("plainlistener")
    web = await browser_for(owner)
    intruder = await browser_for(other)

    # Not a creator: the page offers the creator application instead.
    plain = await (await browser_for(viewer)).get("/studio/radio")
    assert plain.status_code == 200 and 'id="new-channel"' not in plain.text
    signed_out = await client.get("/studio/radio")
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/login?next=%2Fstudio%2Fradio")

    empty = await web.get("/studio/radio")
    assert "You have no radio channels yet." in empty.text
    bad = await _post(web, "/studio/radio", "/studio/radio", name="Pulse", timezone="Mars/Olympus")
    assert bad.status_code == 422 and "unknown time zone" in alert_of(bad.text)
    assert 'value="Mars/Olympus"' in bad.text and 'value="Pulse"' in bad.text
    blank = await _post(web, "/studio/radio", "/studio/radio", name="")
    assert blank.status_code == 422 and "name" in alert_of(blank.text)
    forged = await web.post("/studio/radio", data={"csrf_token": "forged", "name": "Sneaky"})
    assert forged.status_code == 403
    assert (await _ok(await client.get(f"{API}/radio/channels", params={"owner_id": str(owner.id)})))["items"] == []

    made = await _post(
        web, "/studio/radio", "/studio/radio", name="Awaz Pulse", description="News", language="ur",
        category="talk", timezone="Asia/Karachi",
    )  # fmt: skip
    assert made.status_code == 303, made.text
    location = made.headers["location"]
    cid = re.fullmatch(r"/studio/radio/([0-9a-f-]{36})\?notice=radio_created", location).group(1)  # type: ignore[union-attr]
    studio = await web.get(location)
    assert "Radio channel created." in studio.text and "No tracks yet." in studio.text
    assert "Awaz Pulse" in (await web.get("/studio/radio")).text
    url = f"/studio/radio/{cid}"

    # Someone else's channel: 403 pages, nothing changes.
    assert (await intruder.get(url)).status_code == 403
    csrf = csrf_of((await intruder.get("/studio/radio")).text)
    assert (await intruder.post(f"{url}/delete", data={"csrf_token": csrf})).status_code == 403
    assert (await client.get(f"{API}/radio/channels/{cid}")).status_code == 200

    # Uploads: real audio is transcoded; anything else gets the API's message and nothing is stored.
    no_file = await _post(web, url, f"{url}/tracks")
    assert no_file.status_code == 422 and "Choose an audio file" in alert_of(no_file.text)
    junk = await _post(web, url, f"{url}/tracks", files={"file": ("junk.mp3", b"not audio" * 200, "audio/mpeg")})
    assert junk.status_code == 422 and "not an audio file" in alert_of(junk.text)
    assert await _track_titles(client, cid) == []
    for name, freq in (("first", 440), ("second", 660), ("third", 880)):
        sent = await _post(
            web, url, f"{url}/tracks", files={"file": (f"{name}.mp3", await sine(tmp_path, name, 1, freq), "audio/mpeg")},
            title=f"Track {name}" if name != "third" else "",
        )  # fmt: skip
        assert sent.status_code == 303, sent.text[-2000:]
        assert sent.headers["location"] == f"{url}?notice=track_uploaded"
    assert await _track_titles(client, cid) == ["Track first", "Track second", "third"]
    page = await web.get(url)
    ids = re.findall(rf'action="{url}/tracks/([0-9a-f-]{{36}})/move"', page.text)[::2]
    assert len(ids) == 3
    assert 'aria-label="Move Track first up" disabled' in page.text
    assert 'aria-label="Move third down" disabled' in page.text

    # Reorder with the buttons (no script needed).
    moved = await _post(web, url, f"{url}/tracks/{ids[2]}/move", direction="up")
    assert moved.status_code == 303 and moved.headers["location"] == f"{url}?notice=playlist_saved"
    assert await _track_titles(client, cid) == ["Track first", "third", "Track second"]
    await _post(web, url, f"{url}/tracks/{ids[0]}/move", direction="down")
    assert await _track_titles(client, cid) == ["third", "Track first", "Track second"]
    edge = await _post(web, url, f"{url}/tracks/{ids[1]}/move", direction="down")  # already last
    assert edge.status_code == 303 and await _track_titles(client, cid) == ["third", "Track first", "Track second"]
    unknown = await _post(web, url, f"{url}/tracks/{uuid.uuid4()}/move", direction="up")
    assert unknown.status_code == 404
    gone = await _post(web, url, f"{url}/tracks/{ids[1]}/delete")
    assert gone.status_code == 303 and await _track_titles(client, cid) == ["third", "Track first"]
    again = await _post(web, url, f"{url}/tracks/{ids[1]}/delete")
    assert again.status_code == 404 and "track not found" in alert_of(again.text)

    # Edit: the API's errors keep what was typed.
    wrong = await _post(web, url, f"{url}/edit", name="Awaz", timezone="Nowhere/City")
    assert (
        wrong.status_code == 422
        and "unknown time zone" in alert_of(wrong.text)
        and 'value="Nowhere/City"' in wrong.text
    )
    saved = await _post(web, url, f"{url}/edit", name="Awaz Pulse FM", description="", language="ur",
                        category="talk", timezone="Asia/Kathmandu")  # fmt: skip
    assert saved.status_code == 303
    after = await _ok(await client.get(f"{API}/radio/channels/{cid}"))
    assert after["name"] == "Awaz Pulse FM" and after["timezone"] == "Asia/Kathmandu" and after["description"] == ""

    # Delete: off the directory at once.
    deleted = await _post(web, url, f"{url}/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/studio/radio?notice=radio_deleted"
    assert (await client.get(f"{API}/radio/channels/{cid}")).status_code == 404
    assert (await web.get(url)).status_code == 404
    assert "Awaz Pulse FM" not in (await client.get("/radio")).text


async def test_studio_schedule_shows_with_the_apis_errors(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any, browser_for: Any
) -> None:
    owner = await make_user("schedowner", roles=["creator"])
    guest = await make_user("schedguest", roles=["creator"])
    web = await browser_for(owner)
    channel = await _channel(client, owner)
    cid = channel["id"]
    url = f"/studio/radio/{cid}"

    async def stream(who: Any, audio: bool) -> str:
        made = await _ok(
            await client.post(f"{API}/streams", json={"title": "On air", "audio_only": audio}, headers=who.headers)
        )
        return str(made["id"])

    mine, video, theirs = await stream(owner, True), await stream(owner, False), await stream(guest, True)
    page = await web.get(url)
    assert f'<option value="{mine}">On air</option>' in page.text and video not in page.text  # audio streams offered

    weekly = {"title": "Chai hour", "host": "", "stream_id": mine, "kind": "weekly", "weekday": "0",
              "start_time": "08:00", "duration_minutes": "60"}  # fmt: skip
    made = await _post(web, url, f"{url}/shows", **weekly)
    assert made.status_code == 303 and made.headers["location"] == f"{url}?notice=show_scheduled"
    shown = await web.get(made.headers["location"])
    assert "Show scheduled." in shown.text and "Every Monday at 08:00" in shown.text and "60 minutes" in shown.text
    assert "Asia/Karachi" in shown.text
    public = await client.get(f"/radio/{cid}")
    assert (
        "Chai hour" in public.text
        and "Every Monday at 08:00" in public.text
        and 'href="/users/schedowner"' in public.text
    )

    overlap = await _post(web, url, f"{url}/shows", **{**weekly, "title": "Clash", "start_time": "08:30"})
    assert overlap.status_code == 409 and "overlaps another show" in alert_of(overlap.text)
    assert 'value="Clash"' in overlap.text and 'value="08:30"' in overlap.text
    not_audio = await _post(web, url, f"{url}/shows", **{**weekly, "start_time": "12:00", "stream_id": video})
    assert not_audio.status_code == 422 and "audio-only" in alert_of(not_audio.text)
    past = await _post(web, url, f"{url}/shows", **{**weekly, "kind": "dated", "starts_at": "2020-01-01T10:00"})
    assert past.status_code == 422 and "over already" in alert_of(past.text)
    refused = await _post(
        web, url, f"{url}/shows", **{**weekly, "start_time": "15:00", "host": "schedguest", "stream_id": theirs}
    )
    assert refused.status_code == 403 and alert_of(refused.text)
    nobody = await _post(web, url, f"{url}/shows", **{**weekly, "host": "no-such-host"})
    assert nobody.status_code == 404
    bad_time = await _post(web, url, f"{url}/shows", **{**weekly, "start_time": ""})
    assert bad_time.status_code == 422 and alert_of(bad_time.text)
    shows = (await _ok(await client.get(f"{API}/radio/channels/{cid}/shows")))["items"]
    assert [s["title"] for s in shows] == ["Chai hour"]

    # The guest consents (invites the owner as a co-host): their show goes on the schedule.
    await _ok(
        await client.post(f"{API}/streams/{theirs}/guests", json={"user_id": str(owner.id)}, headers=guest.headers)
    )
    dated = await _post(web, url, f"{url}/shows", **{**weekly, "title": "Guest night", "host": "schedguest",
                                                       "stream_id": theirs, "kind": "dated", "starts_at": "2099-05-01T21:00"})  # fmt: skip
    assert dated.status_code == 303, dated.text[-2000:]
    shows = (await _ok(await client.get(f"{API}/radio/channels/{cid}/shows")))["items"]
    assert {s["title"]: s["kind"] for s in shows} == {"Chai hour": "weekly", "Guest night": "dated"}
    listed = await web.get(url)
    assert "2099-05-01 16:00 UTC" in listed.text  # 21:00 in Karachi (UTC+5)

    removed = await _post(web, url, f"{url}/shows/{shows[0]['id']}/delete")
    assert removed.status_code == 303 and removed.headers["location"] == f"{url}?notice=show_removed"
    left = (await _ok(await client.get(f"{API}/radio/channels/{cid}/shows")))["items"]
    assert [s["id"] for s in left] == [shows[1]["id"]]
    twice = await _post(web, url, f"{url}/shows/{shows[0]['id']}/delete")
    assert twice.status_code == 404 and "show not found" in alert_of(twice.text)
