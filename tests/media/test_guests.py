"""Interactive guests: Agora AccessToken2 (the published test vector) and LiveKit tokens, and the
invitation rules of the token endpoint."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import jwt

from halobuzz.media import rtc
from tests.conftest import assert_error

AGORA_APP_ID = "970CA35de60c44645bbae8a215061b33"
AGORA_CERT = "5CFd2fd1755d40ecb72977518be15d3b"


def test_agora_access_token2_reproduces_the_published_vector() -> None:
    # AgoraIO/Tools DynamicKey/AgoraDynamicKey/python3/test/AccessToken2Test.py, test_service_rtc.
    token = rtc.agora_rtc_token(
        app_id=AGORA_APP_ID, app_certificate=AGORA_CERT, channel="7d72365eb983485397e3e3f9d460bdda",
        uid=2882341273, expire_seconds=600, privileges={rtc.PRIV_JOIN_CHANNEL: 600}, issue_ts=1111111, salt=1,
    )  # fmt: skip
    assert token == (
        "007eJxTYBBbsMMnKq7p9Hf/HcIX5kce9b518kCiQgSr5Zrp4X1Tu6UUGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcw"
        "Mk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiVwMRhYWRsYmhkbmxgDCaiTj"
    )
    # uid 0 (any user) gives the vector of test_service_rtc_uid_0.
    any_uid = rtc.agora_rtc_token(
        app_id=AGORA_APP_ID, app_certificate=AGORA_CERT, channel="7d72365eb983485397e3e3f9d460bdda",
        uid=0, expire_seconds=600, privileges={rtc.PRIV_JOIN_CHANNEL: 600}, issue_ts=1111111, salt=1,
    )  # fmt: skip
    assert any_uid == (
        "007eJxTYLhzZP08Lxa1Pg57+TcXb/3cZ3wi4V6kbpbOog0G2dOYk20UGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcw"
        "Mk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiQwMADacImo="
    )


def _agora_fields(token: str) -> dict[str, Any]:
    """Unpack an AccessToken2 the way Agora's parser does."""
    assert token.startswith("007")
    buf = zlib.decompress(base64.b64decode(token[3:]))

    def string(pos: int) -> tuple[bytes, int]:
        n = struct.unpack("<H", buf[pos : pos + 2])[0]
        return buf[pos + 2 : pos + 2 + n], pos + 2 + n

    _, pos = string(0)
    app_id, pos = string(pos)
    _issue_ts, expire, _salt, services = struct.unpack("<IIIH", buf[pos : pos + 14])
    pos += 14
    service_type, count = struct.unpack("<HH", buf[pos : pos + 4])
    pos += 4
    privileges = {}
    for _ in range(count):
        key, value = struct.unpack("<HI", buf[pos : pos + 6])
        privileges[key] = value
        pos += 6
    channel, pos = string(pos)
    uid, pos = string(pos)
    return {"app_id": app_id.decode(), "expire": expire, "services": services, "service": service_type,
            "privileges": privileges, "channel": channel.decode(), "uid": uid.decode()}  # fmt: skip


async def test_rtc_tokens_for_host_and_invited_guests(app_factory: Any, make_user: Any) -> None:
    from tests.conftest import client_for

    app = await app_factory(
        rtc={"agora_app_id": AGORA_APP_ID, "agora_app_certificate": AGORA_CERT, "livekit_api_key": "APIkey123",
             "livekit_api_secret": "livekit-secret-" + "s" * 24, "livekit_url": "wss://lk.example"},
    )  # fmt: skip
    async with client_for(app) as http:
        host = await make_user(roles=["creator"])
        guest = await make_user()
        stranger = await make_user()
        stream = (await http.post("/api/v1/streams", json={"title": "Duet"}, headers=host.headers)).json()
        sid = stream["id"]
        url = f"/api/v1/streams/{sid}/rtc-token"

        r = await http.post(url, json={"provider": "agora"}, headers=host.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["role"] == "host" and body["channel"] == f"stream-{sid}" and body["app_id"] == AGORA_APP_ID
        fields = _agora_fields(body["token"])
        assert fields["app_id"] == AGORA_APP_ID and fields["channel"] == f"stream-{sid}"
        assert fields["uid"] == str(body["uid"]) and fields["service"] == rtc.SERVICE_RTC
        assert set(fields["privileges"]) == {1, 2, 3, 4}

        assert_error(await http.post(url, json={"provider": "agora"}, headers=stranger.headers), 403, "not_a_guest")
        assert_error(await http.post(url, json={"provider": "zoom"}, headers=host.headers), 422, "invalid_provider")
        invite = await http.post(f"/api/v1/streams/{sid}/guests", json={"user_id": str(guest.id)}, headers=host.headers)
        assert invite.status_code == 201, invite.text
        again = await http.post(f"/api/v1/streams/{sid}/guests", json={"user_id": str(guest.id)}, headers=host.headers)
        assert again.status_code == 201 and again.json()["created_at"] == invite.json()["created_at"]
        assert_error(
            await http.post(f"/api/v1/streams/{sid}/guests", json={"user_id": str(guest.id)}, headers=guest.headers),
            403,
            "not_stream_owner",
        )

        r = await http.post(url, json={"provider": "livekit"}, headers=guest.headers)
        assert r.status_code == 200, r.text
        lk = r.json()
        claims = jwt.decode(lk["token"], "livekit-secret-" + "s" * 24, algorithms=["HS256"])
        assert claims["iss"] == "APIkey123" and claims["sub"] == str(guest.id) and lk["url"] == "wss://lk.example"
        assert claims["video"] == {"room": f"stream-{sid}", "roomJoin": True, "canPublish": True,
                                   "canSubscribe": True, "canPublishData": True}  # fmt: skip
        assert claims["exp"] > claims["nbf"] and lk["role"] == "guest"
        listed = (await http.get(f"/api/v1/streams/{sid}/guests", headers=host.headers)).json()["items"]
        assert [g["user_id"] for g in listed] == [str(guest.id)]

        gone = await http.delete(f"/api/v1/streams/{sid}/guests/{guest.id}", headers=host.headers)
        assert gone.status_code == 204
        assert_error(await http.post(url, json={"provider": "livekit"}, headers=guest.headers), 403, "not_a_guest")


async def test_rtc_token_without_credentials(client: Any, make_user: Any) -> None:
    host = await make_user(roles=["creator"])
    sid = (await client.post("/api/v1/streams", json={"title": "T"}, headers=host.headers)).json()["id"]
    for provider in ("agora", "livekit"):
        r = await client.post(f"/api/v1/streams/{sid}/rtc-token", json={"provider": provider}, headers=host.headers)
        assert_error(r, 409, "rtc_not_configured")
