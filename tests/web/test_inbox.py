"""Notifications in the web app over HTTP: the bell's count in the header, the list with cursor
pages, marking one or all read, deleting, the preferences grid with quiet hours and the digest,
this browser's push subscriptions and the service worker served from the site's root."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from halobuzz.app import HaloBuzzApp
from halobuzz.notifications.models import Notification
from tests.web.conftest import alert_of, csrf_of

API = "/api/v1"


async def _notify(app: HaloBuzzApp, user: Any, count: int, kind: str = "new_follower") -> list[str]:
    """Notifications as the consumers write them (oldest first)."""
    ids: list[str] = []
    async with app.runtime.db.session() as session:
        for n in range(count):
            row = Notification(
                recipient_id=user.id,
                type=kind,
                data={"follower": {"id": str(uuid.uuid4()), "username": f"fan{n:02d}"}},
                dedupe_key=f"test:{kind}:{n}",
            )
            session.add(row)
            await session.flush()
            ids.append(str(row.id))
    return ids


def _bell(html: str) -> str:
    match = re.search(r'id="bell-count" class="count"[^>]*>(\d+)<', html)
    assert match, html[:3000]
    return match.group(1)


async def test_bell_list_paging_read_and_delete(app: HaloBuzzApp, make_user: Any, browser_for: Any) -> None:
    user = await make_user("inboxowner")
    other = await make_user("someoneelse")
    ids = await _notify(app, user, 25)
    foreign = await _notify(app, other, 1)
    web = await browser_for(user)

    home = await web.get("/")
    assert _bell(home.text) == "25" and 'aria-label="25 unread notifications"' in home.text
    assert '<script src="/static/js/bell.js" defer></script>' in home.text

    first = await web.get("/notifications")
    assert first.status_code == 200
    shown = re.findall(r'<li id="n-([0-9a-f-]+)"', first.text)
    assert len(shown) == 20 and set(shown) <= set(ids)  # 20 a page
    assert re.search(r'<a href="/users/(fan\d\d)">\1 followed you</a>', first.text)
    more = re.search(r'href="(/notifications\?cursor=[^"]+)" rel="next"', first.text)
    assert more
    second = await web.get(more.group(1).replace("&amp;", "&"))
    rest = re.findall(r'<li id="n-([0-9a-f-]+)"', second.text)
    assert len(rest) == 5 and set(rest) | set(shown) == set(ids)
    assert 'rel="next"' not in second.text

    # Mark one read: the count drops, the item stays (read), the unread filter leaves it out.
    token = csrf_of(first.text)
    done = await web.post(f"/notifications/{ids[-1]}/read", data={"csrf_token": token, "next": "/notifications"})
    assert done.status_code == 303 and done.headers["location"] == "/notifications?notice=marked_read"
    after = await web.get(done.headers["location"])
    assert _bell(after.text) == "24" and "Marked as read." in after.text
    unread = await web.get("/notifications?unread=1")
    assert f'id="n-{ids[-1]}"' not in unread.text and f'id="n-{ids[-2]}"' in unread.text

    # Deleting: gone from the list and from the API.
    gone = await web.post(f"/notifications/{ids[-2]}/delete", data={"csrf_token": token, "next": "/notifications"})
    assert gone.status_code == 303
    listed = (await web.get(f"{API}/notifications", headers=user.headers)).json()
    assert ids[-2] not in [n["id"] for n in listed["items"]] and listed["unread_count"] == 23

    # Someone else's notification: the API's 404, shown with its message; nothing changes.
    refused = await web.post(f"/notifications/{foreign[0]}/delete", data={"csrf_token": token})
    assert refused.status_code == 404 and "notification" in alert_of(refused.text).lower()
    theirs = (await web.get(f"{API}/notifications", headers=other.headers)).json()
    assert theirs["unread_count"] == 1

    # Without the CSRF token nothing is marked.
    forged = await web.post("/notifications/read-all", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert (await web.get(f"{API}/notifications/unread-count", headers=user.headers)).json()["unread_count"] == 23

    everything = await web.post("/notifications/read-all", data={"csrf_token": token, "next": "/notifications"})
    assert everything.status_code == 303 and "notice=all_read" in everything.headers["location"]
    page = await web.get("/notifications")
    assert _bell(page.text) == "0" and 'id="bell-count" class="count" hidden' in page.text
    assert 'id="read-all"' not in page.text
    assert (await web.get(f"{API}/notifications/unread-count", headers=user.headers)).json()["unread_count"] == 0

    # Signed out: to the sign-in page, coming back here.
    anonymous = await web.post("/logout", data={"csrf_token": token})
    assert anonymous.status_code == 303
    assert (await web.get("/notifications")).headers["location"] == "/login?next=%2Fnotifications"


async def test_every_type_reads_as_a_sentence_with_its_link(app: HaloBuzzApp, make_user: Any, browser_for: Any) -> None:
    user = await make_user("readsall")
    sid = str(uuid.uuid4())
    rows = [
        ("stream_live", {"stream_id": sid, "title": "Dashain special", "creator": {"id": "x", "username": "asha"}}),
        (
            "gift_received",
            {"gift": {"name": "Rose"}, "quantity": 3, "stream_id": sid, "sender": {"username": "bikash"}},
        ),
        ("payment_completed", {"coins": 500, "provider": "sandbox"}),
        ("raid_incoming", {"stream_id": sid, "viewer_count": 40, "raider": {"username": "chandra"}}),
        ("moderation", {"kind": "action", "action_id": "a", "action": "timeout", "reason": "spam links"}),
        (
            "moderation",
            {"kind": "appeal", "action_id": "a", "action": "suspend", "outcome": "reversed", "reason": "ok"},
        ),
        ("subscription_started", {"tier": "gold"}),
        ("brand_new_type", {}),
    ]
    async with app.runtime.db.session() as session:
        for n, (kind, data) in enumerate(rows):
            session.add(Notification(recipient_id=user.id, type=kind, data=data, dedupe_key=f"t:{n}"))
    web = await browser_for(user)
    page = (await web.get("/notifications")).text
    assert f'<a href="/streams/{sid}">asha is live: Dashain special</a>' in page
    assert f'<a href="/studio/streams/{sid}">bikash sent you Rose \u00d7 3</a>' in page
    assert '<a href="/wallet">Payment completed: 500 coins added</a>' in page
    assert "chandra is raiding your stream with 40 viewers" in page
    assert '<a href="/account/appeals">Moderation decision: chat time-out. spam links</a>' in page
    assert "Your appeal was accepted: the account suspended was undone. ok" in page
    assert "Your gold subscription has started" in page
    assert "brand_new_type" in page  # an unknown type still shows, by its name
    nepali = (await web.get("/notifications?lang=ne")).text
    assert "asha लाइभ छन्: Dashain special" in nepali


def _push_keys() -> dict[str, str]:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {"p256dh": b64(point), "auth": b64(b"0123456789abcdef")}


async def test_preferences_quiet_hours_digest_and_push(app: HaloBuzzApp, make_user: Any, browser_for: Any) -> None:
    user = await make_user("prefs", timezone="Asia/Kathmandu")
    web = await browser_for(user)
    page = await web.get("/notifications/preferences")
    assert page.status_code == 200
    assert 'name="stream_live:web_push" value="1" id="p-stream_live-web_push"' in page.text
    assert re.search(r'name="moderation:in_app"[^>]*checked[^>]*disabled', page.text)  # locked on
    assert "Asia/Kathmandu" in page.text and 'id="push-toggle" hidden' in page.text
    token = csrf_of(page.text)

    # Every box the form leaves unticked is off; quiet hours and the digest are saved too.
    ticked = {f"{t}:in_app": "1" for t in ("stream_live", "new_follower", "gift_received")}
    saved = await web.post(
        "/notifications/preferences",
        data={"csrf_token": token, **ticked, "new_follower:email": "1", "quiet_start": "22:00", "quiet_end": "07:00",
              "email_digest": "1"},
    )  # fmt: skip
    assert saved.status_code == 303 and saved.headers["location"] == "/notifications/preferences?notice=saved"
    prefs = (await web.get(f"{API}/notifications/preferences", headers=user.headers)).json()
    assert prefs["types"]["stream_live"]["in_app"] is True and prefs["types"]["stream_live"]["web_push"] is False
    assert prefs["types"]["new_follower"]["email"] is True and prefs["types"]["payment_completed"]["in_app"] is False
    assert prefs["types"]["moderation"]["in_app"] is True
    assert prefs["quiet_hours"] == {"start": "22:00", "end": "07:00"} and prefs["email_digest"] is True
    shown = (await web.get("/notifications/preferences")).text
    assert 'value="22:00"' in shown and re.search(r'id="email_digest"\s+checked', shown)

    # Quiet hours the API refuses: its message, the typed values kept, nothing changed.
    bad = await web.post(
        "/notifications/preferences", data={"csrf_token": token, "quiet_start": "25:00", "quiet_end": "07:00"}
    )
    assert bad.status_code == 422 and "quiet_hours" in alert_of(bad.text) and 'value="25:00"' in bad.text
    again = (await web.get(f"{API}/notifications/preferences", headers=user.headers)).json()
    assert again == prefs
    # Both times empty: no quiet hours.
    cleared = await web.post("/notifications/preferences", data={"csrf_token": token, **ticked})
    assert cleared.status_code == 303
    after = (await web.get(f"{API}/notifications/preferences", headers=user.headers)).json()
    assert after["quiet_hours"] is None and after["email_digest"] is False

    # A browser's subscription (as push.js registers it) is listed and can be removed here.
    endpoint = "http://127.0.0.1:9/push/abc"
    sub = await web.post(
        f"{API}/notifications/push-subscriptions", json={"endpoint": endpoint, "keys": _push_keys()},
        headers=user.headers,
    )  # fmt: skip
    assert sub.status_code == 201, sub.text
    listed = await web.get("/notifications/preferences")
    assert "127.0.0.1:9" in listed.text
    sub_id = sub.json()["id"]
    removed = await web.post(f"/notifications/push/{sub_id}/remove", data={"csrf_token": token})
    assert removed.status_code == 303 and "notice=push_removed" in removed.headers["location"]
    assert (await web.get(f"{API}/notifications/push-subscriptions", headers=user.headers)).json() == []
    missing = await web.post(f"/notifications/push/{sub_id}/remove", data={"csrf_token": token})
    assert missing.status_code == 404 and alert_of(missing.text)


async def test_service_worker_and_vapid_key(client: Any) -> None:
    worker = await client.get("/sw.js")
    assert worker.status_code == 200 and worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["service-worker-allowed"] == "/"
    assert 'addEventListener("push"' in worker.text and "showNotification" in worker.text
    key = await client.get(f"{API}/notifications/vapid-public-key")
    assert key.status_code == 200 and len(base64.urlsafe_b64decode(key.json()["public_key"] + "==")) == 65
