"""The creator studio over HTTP: streams, the key with OBS set-up, going live, editing, chat
moderation (modes, deletions, timeouts, bans, channel moderators), numbers per broadcast,
recordings, earnings and payouts — each form showing the API's error when it refuses."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import httpx

from halobuzz.app import HaloBuzzApp
from halobuzz.chat.models import ChatMessage
from halobuzz.core.clock import utcnow
from halobuzz.core.ids import uuid7
from halobuzz.media.models import Recording
from halobuzz.streams.models import Stream
from tests.conftest import client_for
from tests.economy.conftest import grant_coins
from tests.kyc.support import approve_kyc
from tests.web.conftest import alert_of, csrf_of

API = "/api/v1"


async def _chat(app: HaloBuzzApp, stream_id: str, user: Any, text: str, seq: int) -> str:
    """A chat line as the gateway's writer stores it."""
    async with app.runtime.db.session() as session:
        stream = await session.get(Stream, uuid.UUID(stream_id))
        assert stream is not None
        mid = uuid7()
        session.add(
            ChatMessage(
                id=mid,
                stream_id=uuid.UUID(stream_id),
                broadcast_id=stream.current_broadcast_id,
                user_id=user.id,
                text=text,
                epoch="t",
                seq=seq,
                created_at=utcnow() - timedelta(seconds=5 - seq),
            )
        )
    return str(mid)


async def _create(web: httpx.AsyncClient, **fields: str) -> tuple[str, str, str]:
    """(stream id, key, page) of a stream created through the studio form."""
    studio = await web.get("/studio")
    created = await web.post("/studio/streams", data={"csrf_token": csrf_of(studio.text), **fields})
    assert created.status_code == 200, created.text[-1500:]
    key = re.search(r'id="stream-key">([^<]+)<', created.text).group(1)  # type: ignore[union-attr]
    sid = re.search(r'action="/studio/streams/([0-9a-f-]+)/rotate"', created.text).group(1)  # type: ignore[union-attr]
    return sid, key, created.text


async def test_create_edit_go_live_rotate_and_delete(app: HaloBuzzApp, make_user: Any, browser_for: Any) -> None:
    admin = await make_user(roles=["admin"])
    async with client_for(app) as c:
        await c.post(f"{API}/categories", json={"slug": "talk", "name": "Talk"}, headers=admin.headers)
    creator = await make_user("studiocreator", roles=["creator"])
    web = await browser_for(creator)
    studio = await web.get("/studio")
    assert studio.status_code == 200 and 'id="new-stream"' in studio.text and '<option value="talk"' in studio.text
    empty = await web.post("/studio/streams", data={"csrf_token": csrf_of(studio.text), "title": "   "})
    assert empty.status_code == 422 and "title" in alert_of(empty.text)
    bad_time = await web.post(
        "/studio/streams", data={"csrf_token": csrf_of(studio.text), "title": "Later", "scheduled_start_at": "soon"}
    )
    assert bad_time.status_code == 422 and 'value="Later"' in bad_time.text

    when = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    sid, key, page = await _create(
        web, title="Evening radio", category="talk", tags="ghazal, Live", audio_only="1", scheduled_start_at=when
    )
    assert "Copy the key now" in page and "OBS" in page and re.search(r"rtmp://[^<]+/live<", page)
    assert len(key) >= 20
    stream = (await web.get(f"{API}/streams/{sid}")).json()
    assert stream["category"] == "talk" and stream["tags"] == ["ghazal", "live"] and stream["audio_only"] is True
    assert stream["scheduled_start_at"].startswith(when)
    listed = await web.get("/studio")
    assert f'href="/studio/streams/{sid}"' in listed.text and "Evening radio" in listed.text

    # The key is shown once: reopening the page shows no key, rotating shows a new one.
    again = await web.get(f"/studio/streams/{sid}")
    assert 'id="stream-key"' not in again.text
    rotated = await web.post(f"/studio/streams/{sid}/rotate", data={"csrf_token": csrf_of(again.text)})
    second = re.search(r'id="stream-key">([^<]+)<', rotated.text).group(1)  # type: ignore[union-attr]
    assert second != key and "New stream key" in rotated.text

    edited = await web.post(
        f"/studio/streams/{sid}/edit",
        data={
            "csrf_token": csrf_of(again.text),
            "title": "Morning radio",
            "description": "News",
            "category": "",
            "tags": "",
            "language": "ne",
        },
    )
    assert edited.status_code == 303 and edited.headers["location"] == f"/studio/streams/{sid}?notice=saved"
    stream = (await web.get(f"{API}/streams/{sid}")).json()
    assert (stream["title"], stream["category"], stream["tags"], stream["language"], stream["audio_only"]) == (
        "Morning radio", None, [], "ne", False
    )  # fmt: skip
    assert stream["scheduled_start_at"] is None
    refused = await web.post(
        f"/studio/streams/{sid}/edit", data={"csrf_token": csrf_of(again.text), "title": "x", "language": "english"}
    )
    assert refused.status_code == 422 and "language" in alert_of(refused.text)

    live = await web.post(f"/studio/streams/{sid}/start", data={"csrf_token": csrf_of(again.text)})
    assert live.status_code == 303 and live.headers["location"].endswith("notice=live")
    page = (await web.get(f"/studio/streams/{sid}")).text
    assert 'data-status="live"' in page and "End broadcast" in page and 'id="health"' in page
    twice = await web.post(f"/studio/streams/{sid}/start", data={"csrf_token": csrf_of(page)})
    assert twice.status_code == 409 and alert_of(twice.text)
    cannot = await web.post(f"/studio/streams/{sid}/delete", data={"csrf_token": csrf_of(page)})
    assert cannot.status_code == 409
    ended = await web.post(f"/studio/streams/{sid}/end", data={"csrf_token": csrf_of(page)})
    assert ended.status_code == 303 and ended.headers["location"].endswith("notice=ended")
    deleted = await web.post(f"/studio/streams/{sid}/delete", data={"csrf_token": csrf_of(page)})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/studio?notice=stream_deleted"
    assert (await web.get(f"/studio/streams/{sid}")).status_code == 404
    assert (await web.get("/studio/streams/not-an-id")).status_code == 404


async def test_chat_moderation_from_the_studio(app: HaloBuzzApp, make_user: Any, browser_for: Any) -> None:
    creator = await make_user("modhost", roles=["creator"])
    helper = await make_user("modhelper")
    troll = await make_user("modtroll")
    stranger = await make_user("modstranger", roles=["creator"])
    web = await browser_for(creator)
    sid, _, page = await _create(web, title="Moderated")
    await web.post(f"/studio/streams/{sid}/start", data={"csrf_token": csrf_of(page)})
    bad_line = await _chat(app, sid, troll, "spam spam spam", 1)
    await _chat(app, sid, helper, "hello", 2)
    page = (await web.get(f"/studio/streams/{sid}")).text
    assert f"/studio/streams/{sid}/messages/{bad_line}/delete" in page and 'id="mod-actions"' in page
    token = csrf_of(page)

    modes = await web.post(
        f"/studio/streams/{sid}/modes",
        data={
            "csrf_token": token,
            "slow_mode_seconds": "10",
            "followers_only": "1",
            "followers_only_minutes": "30",
            "emote_only": "1",
        },
    )
    assert modes.status_code == 303
    got = (await web.get(f"{API}/streams/{sid}/chat/modes")).json()
    assert got == {"slow_mode_seconds": 10, "followers_only_minutes": 30, "subscribers_only": False, "emote_only": True}
    off = await web.post(f"/studio/streams/{sid}/modes", data={"csrf_token": token, "slow_mode_seconds": "0"})
    assert off.status_code == 303
    assert (await web.get(f"{API}/streams/{sid}/chat/modes")).json()["followers_only_minutes"] is None
    nonsense = await web.post(f"/studio/streams/{sid}/modes", data={"csrf_token": token, "slow_mode_seconds": "ten"})
    assert nonsense.status_code == 422 and "slow_mode_seconds" in alert_of(nonsense.text)

    gone = await web.post(f"/studio/streams/{sid}/messages/{bad_line}/delete", data={"csrf_token": token})
    assert gone.status_code == 303 and gone.headers["location"].endswith("notice=message_deleted")
    history = (await web.get(f"{API}/streams/{sid}/chat")).json()["items"]
    assert [m["text"] for m in history] == ["hello"]

    timed = await web.post(
        f"/studio/streams/{sid}/timeout",
        data={"csrf_token": token, "user_id": str(troll.id), "duration_seconds": "600"},
    )
    assert timed.status_code == 303 and timed.headers["location"].endswith("notice=timed_out")
    too_long = await web.post(
        f"/studio/streams/{sid}/timeout",
        data={"csrf_token": token, "username": "modtroll", "duration_seconds": str(10**8)},
    )
    assert too_long.status_code == 422 and alert_of(too_long.text)
    banned = await web.post(
        f"/studio/streams/{sid}/ban", data={"csrf_token": token, "username": "modtroll", "reason": "spam"}
    )
    assert banned.status_code == 303 and banned.headers["location"].endswith("notice=banned")
    page = (await web.get(f"/studio/streams/{sid}")).text
    assert "modtroll · banned · spam" in page
    nobody = await web.post(f"/studio/streams/{sid}/ban", data={"csrf_token": token, "username": "no_such_user"})
    assert nobody.status_code == 404 and alert_of(nobody.text)
    itself = await web.post(f"/studio/streams/{sid}/ban", data={"csrf_token": token, "username": "modhost"})
    assert itself.status_code in (403, 409, 422) and alert_of(itself.text)
    lifted = await web.post(f"/studio/streams/{sid}/bans/{troll.id}/lift", data={"csrf_token": token})
    assert lifted.status_code == 303
    assert (await web.get(f"{API}/streams/{sid}/chat/bans", headers=creator.headers)).json()["items"] == []

    # A channel moderator reaches the moderation tools (not the key or the edit form); others do not.
    appointed = await web.post(f"/studio/streams/{sid}/moderators", data={"csrf_token": token, "username": "modhelper"})
    assert appointed.status_code == 303
    helper_web = await browser_for(helper)
    helper_page = await helper_web.get(f"/studio/streams/{sid}")
    assert helper_page.status_code == 200 and 'id="modes-form"' in helper_page.text
    assert 'id="rotate-key"' not in helper_page.text and 'id="edit-stream"' not in helper_page.text
    viewer_page = await helper_web.get(f"/streams/{sid}")
    assert f'href="/studio/streams/{sid}"' in viewer_page.text  # the "moderate chat" link
    helper_ban = await helper_web.post(
        f"/studio/streams/{sid}/ban", data={"csrf_token": csrf_of(helper_page.text), "username": "modtroll"}
    )
    assert helper_ban.status_code == 303
    stranger_web = await browser_for(stranger)
    assert (await stranger_web.get(f"/studio/streams/{sid}")).status_code == 403
    forbidden = await stranger_web.post(
        f"/studio/streams/{sid}/rotate", data={"csrf_token": csrf_of((await stranger_web.get("/studio")).text)}
    )
    assert forbidden.status_code == 403
    removed = await web.post(f"/studio/streams/{sid}/moderators/{helper.id}/remove", data={"csrf_token": token})
    assert removed.status_code == 303
    assert (await helper_web.get(f"/studio/streams/{sid}")).status_code == 403


async def test_numbers_gifts_and_recordings(app: HaloBuzzApp, make_user: Any, browser_for: Any) -> None:
    creator = await make_user("numbershost", roles=["creator"])
    fan = await make_user("numbersfan")
    web = await browser_for(creator)
    sid, _, page = await _create(web, title="Counted")
    await web.post(f"/studio/streams/{sid}/start", data={"csrf_token": csrf_of(page)})
    await _chat(app, sid, fan, "one", 1)
    await _chat(app, sid, fan, "two", 2)
    await grant_coins(app, fan.id, 100)
    async with client_for(app) as c:
        gift = (await c.get(f"{API}/gifts")).json()["items"][1]
        r = await c.post(
            f"{API}/streams/{sid}/gifts",
            json={"gift_id": gift["id"], "quantity": 2},
            headers={**fan.headers, "Idempotency-Key": "n1"},
        )
        assert r.status_code == 200, r.text
    page = (await web.get(f"/studio/streams/{sid}")).text
    row = re.search(r'<tr data-broadcast="[^"]+">(.*?)</tr>', page, re.S).group(1)  # type: ignore[union-attr]
    cells = re.findall(r'<td class="num">(\d+)</td>', row)
    assert cells == ["0", "2", "1", "2", str(2 * gift["coin_price"])], row  # peak, chat, chatters, gifts, coins
    assert re.search(rf"numbersfan · {2 * gift['coin_price']} coins · 2 gifts<", page), re.findall(
        r"<ol id=\"leaderboard\">.*?</ol>", page, re.S
    )

    async with app.runtime.db.session() as session:
        rec = Recording(stream_id=uuid.UUID(sid), owner_id=creator.id, title="Counted", storage_prefix=f"vod/{sid}/r")
        session.add(rec)
        await session.flush()
        rid = str(rec.id)
    page = (await web.get(f"/studio/streams/{sid}")).text
    assert f"/studio/streams/{sid}/recordings/{rid}/delete" in page
    deleted = await web.post(f"/studio/streams/{sid}/recordings/{rid}/delete", data={"csrf_token": csrf_of(page)})
    assert deleted.status_code == 303 and deleted.headers["location"].endswith("notice=recording_deleted")
    assert (await web.get(f"{API}/streams/{sid}/recordings")).json()["items"] == []


async def test_earnings_and_payout_requests(
    app: HaloBuzzApp, make_user: Any, browser_for: Any, make_admin: Any
) -> None:
    creator = await make_user("payhost", roles=["creator"])
    fan = await make_user("payfan")
    admin = await make_admin()
    web = await browser_for(creator)
    sid, _, page = await _create(web, title="Paid")
    await web.post(f"/studio/streams/{sid}/start", data={"csrf_token": csrf_of(page)})
    await grant_coins(app, fan.id, 5000)
    async with client_for(app) as c:
        dragon = next(g for g in (await c.get(f"{API}/gifts")).json()["items"] if g["name"] == "Dragon")
        await c.post(
            f"{API}/streams/{sid}/gifts",
            json={"gift_id": dragon["id"]},
            headers={**fan.headers, "Idempotency-Key": "p1"},
        )
    earned = dragon["coin_price"] * 7 // 10
    earnings = await web.get("/studio/earnings")
    assert earnings.status_code == 200 and f'id="available">{earned}<' in earnings.text
    assert 'id="earnings-chart"' in earnings.text and "last 24 h" in earnings.text
    token = csrf_of(earnings.text)
    form = {
        "csrf_token": token,
        "coins": str(earned),
        "currency": "NPR",
        "method": "esewa",
        "destination": "9800000001",
    }
    no_kyc = await web.post("/studio/payouts", data=form)
    assert no_kyc.status_code == 403 and "KYC" in alert_of(no_kyc.text) and 'value="9800000001"' in no_kyc.text
    async with client_for(app) as c:
        await approve_kyc(c, admin, creator)
    too_small = await web.post("/studio/payouts", data={**form, "coins": "5"})
    assert too_small.status_code == 422 and alert_of(too_small.text)
    not_a_number = await web.post("/studio/payouts", data={**form, "coins": "lots"})
    assert not_a_number.status_code == 422 and "coins" in alert_of(not_a_number.text)
    done = await web.post("/studio/payouts", data=form)
    assert done.status_code == 303 and done.headers["location"] == "/studio/earnings?notice=payout_requested"
    page = (await web.get("/studio/earnings")).text
    assert 'id="available">0<' in page and "9800000001" in page and "pending" in page
    assert f"0 coins available, {earned} earned in all" in (await web.get("/studio")).text
