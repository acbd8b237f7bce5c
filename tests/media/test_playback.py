"""Playback tokens and the internal ingest callbacks, through the HTTP API."""

from __future__ import annotations

import time
import uuid
from typing import Any

from halobuzz.media import tokens
from halobuzz.media.supervisor import hls_root
from tests.conftest import assert_error


async def _live_stream(client: Any, make_user: Any) -> tuple[Any, dict[str, Any]]:
    creator = await make_user(roles=["creator"])
    stream = (await client.post("/api/v1/streams", json={"title": "T"}, headers=creator.headers)).json()
    resp = await client.post(f"/api/v1/streams/{stream['id']}/start", headers=creator.headers)
    assert resp.status_code == 200
    return creator, stream


async def test_playback_token_valid_forged_expired(app: Any, client: Any, make_user: Any) -> None:
    _, stream = await _live_stream(client, make_user)
    sid = stream["id"]
    out_dir = hls_root(app.runtime.settings) / sid
    out_dir.mkdir(parents=True)
    (out_dir / "master.m3u8").write_text("#EXTM3U\n")
    body = (await client.get(f"/api/v1/streams/{sid}/playback")).json()
    assert set(body) == {"url", "expires_at"}
    ok = await client.get(body["url"])
    assert ok.status_code == 200 and ok.text == "#EXTM3U\n" and "max-age" in ok.headers["cache-control"]

    token = body["url"].split("/")[-2]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert_error(await client.get(f"/api/v1/media/hls/{sid}/{forged}/master.m3u8"), 403, "bad_playback_token")
    other = str(uuid.uuid4())
    assert_error(await client.get(f"/api/v1/media/hls/{other}/{token}/master.m3u8"), 403, "bad_playback_token")
    secret = tokens.playback_secret(app.runtime.settings)
    expired = tokens.sign(secret, uuid.UUID(sid), int(time.time()) - 1)
    assert_error(await client.get(f"/api/v1/media/hls/{sid}/{expired}/master.m3u8"), 403, "bad_playback_token")
    assert_error(await client.get(f"/api/v1/media/hls/{sid}/{token}/../../x.m3u8"), 404)


async def test_playback_of_offline_stream(client: Any, make_user: Any) -> None:
    creator = await make_user(roles=["creator"])
    stream = (await client.post("/api/v1/streams", json={"title": "T"}, headers=creator.headers)).json()
    assert_error(await client.get(f"/api/v1/streams/{stream['id']}/playback"), 409, "not_live")


async def test_callbacks_need_secret(app_factory: Any, make_settings: Any, make_user: Any) -> None:
    import httpx

    app = await app_factory(media={"callback_secret": "s3cret", "enabled": False})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        creator = await make_user(roles=["creator"])
        created = await http.post("/api/v1/streams", json={"title": "T"}, headers=creator.headers)
        key = created.json()["stream_key"]
        hook = "/api/v1/media/hooks/on_publish"
        assert (await http.post(hook, data={"name": key})).status_code == 403
        assert (await http.post(hook + "?secret=nope", data={"name": key})).status_code == 403
        assert (await http.post(hook + "?secret=s3cret", data={"name": "bad"})).status_code == 403
        assert (await http.post(hook + "?secret=s3cret", data={"name": key})).status_code == 200
        sid = created.json()["id"]
        assert (await http.get(f"/api/v1/streams/{sid}")).json()["status"] == "live"
