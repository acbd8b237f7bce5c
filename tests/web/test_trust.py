"""Trust, privacy and media pages over HTTP: identity documents and their review, downloading
one's data and deleting the account, appeals, blocked chat terms, the image blocklist, stream
covers, co-hosts, channel recordings and stream health — each form showing the API's error."""

from __future__ import annotations

import io
import json
import re
import uuid
from typing import Any

import httpx
from PIL import Image

from halobuzz.app import HaloBuzzApp
from halobuzz.media.models import Recording
from tests.kyc.support import document_jpeg
from tests.web.conftest import alert_of, csrf_of, sign_in

API = "/api/v1"


def _picture(seed: int = 0, size: tuple[int, int] = (320, 240)) -> bytes:
    """A PNG with shapes (perceptual hashes need structure, not a flat colour)."""
    image = Image.new("RGB", size, (20 + seed * 40 % 200, 30, 60))
    for x in range(size[0]):
        for y in range(0, size[1], 4):
            if (x // (16 + seed)) % 2 == (y // 24) % 2:
                image.putpixel((x, y), (240, 200 - seed * 30 % 150, 40))
                image.putpixel((x, min(y + 1, size[1] - 1)), (240, 200, 40))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def _post_file(
    web: httpx.AsyncClient, page_url: str, action: str, data: bytes, name: str, kind: str, **fields: str
) -> httpx.Response:
    page = await web.get(page_url)
    assert page.status_code == 200, page.text[-1500:]
    return await web.post(action, data={"csrf_token": csrf_of(page.text), **fields}, files={"file": (name, data, kind)})


async def test_kyc_upload_submit_and_admin_review(
    app: HaloBuzzApp, make_user: Any, browser_for: Any, admin_web: httpx.AsyncClient
) -> None:
    creator = await make_user("kycmaker", roles=["creator"])
    viewer = await make_user("kycviewer")
    web = await browser_for(creator)
    page = await web.get("/studio/kyc")
    assert page.status_code == 200 and 'data-status="none"' in page.text and 'id="kyc-upload"' in page.text

    # Not an image or PDF: the API's 415 and message.
    wrong = await _post_file(web, "/studio/kyc", "/studio/kyc/documents", b"hello", "id.txt", "text/plain",
                             document_type="passport")  # fmt: skip
    assert wrong.status_code == 415 and alert_of(wrong.text)
    scan = document_jpeg(7)
    up = await _post_file(web, "/studio/kyc", "/studio/kyc/documents", scan, "id.jpg", "image/jpeg",
                          document_type="passport")  # fmt: skip
    assert up.status_code == 303 and up.headers["location"] == "/studio/kyc?notice=document_uploaded"
    extra = await _post_file(web, "/studio/kyc", "/studio/kyc/documents", document_jpeg(8), "a.jpg", "image/jpeg",
                             document_type="proof_of_address")  # fmt: skip
    assert extra.status_code == 303
    state = (await web.get(f"{API}/kyc", headers=creator.headers)).json()
    assert state["status"] == "draft" and {d["document_type"] for d in state["documents"]} == {
        "passport",
        "proof_of_address",
    }
    shown = (await web.get("/studio/kyc")).text
    assert "Passport" in shown and "Proof of address" in shown and 'id="kyc-submit"' in shown
    address = next(d["id"] for d in state["documents"] if d["document_type"] == "proof_of_address")
    removed = await web.post(f"/studio/kyc/documents/{address}/remove", data={"csrf_token": csrf_of(shown)})
    assert removed.status_code == 303
    sent = await web.post("/studio/kyc/submit", data={"csrf_token": csrf_of(shown)})
    assert sent.status_code == 303 and "notice=kyc_submitted" in sent.headers["location"]
    pending = (await web.get("/studio/kyc")).text
    assert 'data-status="pending"' in pending and 'id="kyc-upload"' not in pending
    # Submitting again: the API refuses, the page says why.
    twice = await web.post("/studio/kyc/submit", data={"csrf_token": csrf_of(pending)})
    assert twice.status_code in (409, 422) and alert_of(twice.text)

    # A viewer (not a creator) sees the status but cannot upload: the API's 403.
    viewer_web = await browser_for(viewer)
    theirs = await viewer_web.get("/studio/kyc")
    assert theirs.status_code == 200 and 'id="kyc-upload"' not in theirs.text
    refused = await _post_file(viewer_web, "/studio/kyc", "/studio/kyc/documents", scan, "id.jpg", "image/jpeg",
                               document_type="passport")  # fmt: skip
    assert refused.status_code == 403 and alert_of(refused.text)

    # The admin's queue, the submission, the document itself (decrypted, as uploaded).
    queue = await admin_web.get("/admin/kyc")
    assert queue.status_code == 200 and "kycmaker" in queue.text
    sub_id = re.search(r'href="/admin/kyc/([0-9a-f-]+)">kycmaker<', queue.text).group(1)  # type: ignore[union-attr]
    detail = await admin_web.get(f"/admin/kyc/{sub_id}")
    assert detail.status_code == 200 and "Passport" in detail.text
    doc_id = re.search(r'href="/admin/kyc/documents/([0-9a-f-]+)/file"', detail.text).group(1)  # type: ignore[union-attr]
    file = await admin_web.get(f"/admin/kyc/documents/{doc_id}/file")
    assert file.status_code == 200 and file.content == scan
    assert file.headers["content-type"] == "image/jpeg" and "attachment" in file.headers["content-disposition"]
    assert file.headers["cache-control"] == "no-store, private"
    # Only admins open documents.
    assert (await web.get(f"/admin/kyc/documents/{doc_id}/file")).status_code == 403

    # A rejection needs a reason; with one, the creator reads it.
    token = csrf_of(detail.text)
    empty = await admin_web.post(f"/admin/kyc/{sub_id}/reject", data={"csrf_token": token, "reason": ""})
    assert empty.status_code == 422 and "reason" in alert_of(empty.text)
    rejected = await admin_web.post(
        f"/admin/kyc/{sub_id}/reject", data={"csrf_token": token, "reason": "the photo is blurred"}
    )
    assert rejected.status_code == 303 and "notice=kyc_rejected" in rejected.headers["location"]
    again = await admin_web.post(f"/admin/kyc/{sub_id}/approve", data={"csrf_token": token, "reason": ""})
    assert again.status_code == 409 and alert_of(again.text)
    mine = (await web.get("/studio/kyc")).text
    assert 'data-status="rejected"' in mine and "the photo is blurred" in mine and 'id="kyc-upload"' in mine


async def test_export_and_delete_account(app: HaloBuzzApp, make_user: Any, browser_for: Any) -> None:
    user = await make_user("leaving")
    web = await browser_for(user)
    account = await web.get("/account")
    assert 'id="delete-form"' in account.text and 'action="/account/export"' in account.text
    token = csrf_of(account.text)
    exported = await web.post("/account/export", data={"csrf_token": token})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/json")
    assert 'filename="halobuzz-leaving.json"' in exported.headers["content-disposition"]
    assert "leaving" in json.dumps(json.loads(exported.content))
    assert (await web.get("/account/export")).status_code == 405  # a download, only from the form

    # Without the confirmation words, or with the wrong password: the API's message, the account stays.
    unconfirmed = await web.post(
        "/account/delete", data={"csrf_token": token, "password": user.password, "confirm": "yes"}
    )
    assert unconfirmed.status_code == 422 and "delete my account" in alert_of(unconfirmed.text)
    wrong = await web.post(
        "/account/delete", data={"csrf_token": token, "password": "nope", "confirm": "delete my account"}
    )
    assert wrong.status_code in (401, 403) and alert_of(wrong.text)
    assert (await web.get("/account")).status_code == 200

    deleted = await web.post(
        "/account/delete", data={"csrf_token": token, "password": user.password, "confirm": " Delete my account "}
    )
    assert deleted.status_code == 303, alert_of(deleted.text)
    assert deleted.headers["location"] == "/?notice=account_deleted"
    assert 'hb_session=""' in deleted.headers.get("set-cookie", "") or "hb_session=;" in deleted.headers.get(
        "set-cookie", ""
    )
    home = await web.get("/?notice=account_deleted")
    assert "Your account has been deleted." in home.text and 'href="/login"' in home.text
    again = await sign_in(web, "leaving", user.password)
    assert again.status_code in (401, 403)


async def test_appeal_a_decision_once(app: HaloBuzzApp, make_user: Any, browser_for: Any) -> None:
    moderator = await make_user(roles=["moderator"])
    reporter = await make_user()
    subject = await make_user("appealer")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        report = await c.post(
            f"{API}/reports", json={"target_type": "user", "target_id": str(subject.id), "reason": "harassment"},
            headers=reporter.headers,
        )  # fmt: skip
        case_id = report.json()["case_id"]
        assert (await c.post(f"{API}/moderation/cases/{case_id}/claim", headers=moderator.headers)).status_code == 200
        action = await c.post(
            f"{API}/moderation/cases/{case_id}/decision", json={"action": "warn", "reason": "mind your words"},
            headers=moderator.headers,
        )  # fmt: skip
        assert action.status_code == 200, action.text
    action_id = action.json()["id"]
    web = await browser_for(subject)
    page = await web.get("/account/appeals")
    assert page.status_code == 200 and "warning" in page.text and "mind your words" in page.text
    assert f'action="/account/appeals/{action_id}"' in page.text
    token = csrf_of(page.text)
    empty = await web.post(f"/account/appeals/{action_id}", data={"csrf_token": token, "text": ""})
    assert empty.status_code == 422 and "text" in alert_of(empty.text)
    sent = await web.post(f"/account/appeals/{action_id}", data={"csrf_token": token, "text": "I was quoting"})
    assert sent.status_code == 303 and sent.headers["location"] == "/account/appeals?notice=appeal_sent"
    after = (await web.get(sent.headers["location"])).text
    assert (
        "Appeal sent." in after
        and "waiting for review" in after
        and f'action="/account/appeals/{action_id}"' not in after
    )
    twice = await web.post(f"/account/appeals/{action_id}", data={"csrf_token": token, "text": "again"})
    assert twice.status_code == 409 and alert_of(twice.text)
    # Someone else's decision cannot be appealed from here.
    other = await browser_for(reporter)
    theirs = await other.post(
        f"/account/appeals/{action_id}", data={"csrf_token": csrf_of((await other.get("/account/appeals")).text),
                                               "text": "not mine"},
    )  # fmt: skip
    assert theirs.status_code in (403, 404) and alert_of(theirs.text)


async def test_blocked_terms_of_a_channel(app: HaloBuzzApp, make_user: Any, browser_for: Any) -> None:
    creator = await make_user("termsowner", roles=["creator"])
    web = await browser_for(creator)
    page = await web.get("/studio/blocked-terms")
    assert page.status_code == 200 and "No blocked words." in page.text
    token = csrf_of(page.text)
    added = await web.post("/studio/blocked-terms", data={"csrf_token": token, "terms": "spoiler, sasto manche\nबकवास"})
    assert added.status_code == 303 and added.headers["location"] == "/studio/blocked-terms?notice=terms_added"
    listed = (await web.get(f"{API}/users/me/blocked-terms", headers=creator.headers)).json()["items"]
    terms = {t["term"] for t in listed}
    assert len(terms) == 3 and "spoiler" in terms
    shown = (await web.get("/studio/blocked-terms")).text
    assert "Blocked (3)" in shown and "बकवास" in shown
    bad = await web.post("/studio/blocked-terms", data={"csrf_token": token, "terms": "x" * 300})
    assert bad.status_code == 422 and alert_of(bad.text) and "x" * 300 in bad.text  # kept as typed
    hindi = next(t for t in terms if t not in ("spoiler", "sasto manche"))
    gone = await web.post("/studio/blocked-terms/remove", data={"csrf_token": token, "term": hindi})
    assert gone.status_code == 303
    left = {
        t["term"] for t in (await web.get(f"{API}/users/me/blocked-terms", headers=creator.headers)).json()["items"]
    }
    assert left == terms - {hindi}
    # A viewer is not a creator: the studio's apply page, and the API's 403 on posting.
    viewer = await browser_for(await make_user())
    assert (await viewer.get("/studio/blocked-terms")).status_code == 403
    refused = await viewer.post(
        "/studio/blocked-terms", data={"csrf_token": csrf_of((await viewer.get("/account")).text), "terms": "a"}
    )
    assert refused.status_code == 403


async def test_image_blocklist_refuses_a_matching_avatar(app: HaloBuzzApp, make_user: Any, browser_for: Any) -> None:
    moderator = await make_user("imgmod", roles=["moderator"])
    panel = await browser_for(moderator)
    page = await panel.get("/admin/images")
    assert page.status_code == 200 and "No blocked images." in page.text
    picture = _picture(1)
    blocked = await _post_file(panel, "/admin/images", "/admin/images/upload", picture, "bad.png", "image/png",
                               reason="known abuse image")  # fmt: skip
    assert blocked.status_code == 303 and "notice=image_blocked" in blocked.headers["location"]
    listed = (await panel.get("/admin/images")).text
    assert "known abuse image" in listed
    block_id = re.search(r'data-block="([0-9a-f-]+)"', listed).group(1)  # type: ignore[union-attr]

    # Hashes the API refuses (not 16 hex digits): its message, the typed values kept.
    token = csrf_of(listed)
    bad = await panel.post(
        "/admin/images/hashes", data={"csrf_token": token, "phash": "xyz", "dhash": "0" * 16, "reason": "r"}
    )
    assert bad.status_code == 422 and "phash" in alert_of(bad.text) and 'value="xyz"' in bad.text

    # The same picture as someone's avatar is refused, with the API's message on the account page.
    user = await make_user()
    web = await browser_for(user)
    refused = await _post_file(web, "/account", "/account/avatar", picture, "me.png", "image/png")
    assert refused.status_code == 422 and alert_of(refused.text)
    unblocked = await panel.post(f"/admin/images/{block_id}/remove", data={"csrf_token": token})
    assert unblocked.status_code == 303
    accepted = await _post_file(web, "/account", "/account/avatar", picture, "me.png", "image/png")
    assert accepted.status_code == 303
    # Viewers do not reach the blocklist.
    assert (await web.get("/admin/images")).status_code == 403


async def test_cover_co_hosts_health_and_channel_recordings(app: HaloBuzzApp, make_user: Any, browser_for: Any) -> None:
    creator = await make_user("coverhost", roles=["creator"])
    guest = await make_user("cohost")
    stranger = await make_user("stranger")
    web = await browser_for(creator)
    made = await web.post(f"{API}/streams", json={"title": "Covered stream"}, headers=creator.headers)
    sid = made.json()["id"]
    page = await web.get(f"/studio/streams/{sid}")
    assert page.status_code == 200 and 'id="no-cover"' in page.text and "No co-hosts invited." in page.text
    assert 'data-k="state"' in page.text and ">offline<" in page.text and 'data-k="input_kbps"' in page.text

    # Cover: not an image → the API's message; an image → shown; removed again.
    wrong = await _post_file(web, f"/studio/streams/{sid}", f"/studio/streams/{sid}/cover", b"no", "c.png", "image/png")
    assert wrong.status_code in (415, 422) and alert_of(wrong.text)
    saved = await _post_file(web, f"/studio/streams/{sid}", f"/studio/streams/{sid}/cover", _picture(2), "c.png",
                             "image/png")  # fmt: skip
    assert saved.status_code == 303 and "notice=cover_saved" in saved.headers["location"]
    shown = (await web.get(f"/studio/streams/{sid}")).text
    cover = re.search(r'<img class="cover" id="cover" src="([^"]+)"', shown)
    assert cover and 'alt="Cover of Covered stream"' in shown
    assert (await web.get(cover.group(1))).status_code == 200
    token = csrf_of(shown)
    assert (await web.post(f"/studio/streams/{sid}/cover/remove", data={"csrf_token": token})).status_code == 303
    assert (await web.get(f"{API}/streams/{sid}/thumbnail")).status_code == 404

    # Co-hosts by username; an unknown one is the API's 404.
    invited = await web.post(f"/studio/streams/{sid}/guests", data={"csrf_token": token, "username": "cohost"})
    assert invited.status_code == 303 and "notice=guest_invited" in invited.headers["location"]
    listed = (await web.get(f"/studio/streams/{sid}")).text
    assert re.search(r'<ul id="guests"><li>cohost ·', listed)
    guests = (await web.get(f"{API}/streams/{sid}/guests", headers=creator.headers)).json()["items"]
    assert [g["user_id"] for g in guests] == [str(guest.id)]
    nobody = await web.post(f"/studio/streams/{sid}/guests", data={"csrf_token": token, "username": "nosuchuser"})
    assert nobody.status_code == 404 and alert_of(nobody.text)
    out = await web.post(f"/studio/streams/{sid}/guests/{guest.id}/remove", data={"csrf_token": token})
    assert out.status_code == 303
    assert (await web.get(f"{API}/streams/{sid}/guests", headers=creator.headers)).json()["items"] == []

    # The channel page lists recordings; only the owner gets (and may use) the delete button.
    async with app.runtime.db.session() as session:
        rec = Recording(stream_id=uuid.UUID(sid), owner_id=creator.id, title="Last night", storage_prefix="vod/x",
                        duration_seconds=125)  # fmt: skip
        session.add(rec)
        await session.flush()
        rid = str(rec.id)
    other = await browser_for(stranger)
    public = (await other.get("/users/coverhost")).text
    assert f'href="/streams/{sid}/recordings/{rid}"' in public and "Last night" in public and "2:05" in public
    assert f"/recordings/{rid}/delete" not in public
    refused = await other.post(f"/users/coverhost/recordings/{rid}/delete", data={"csrf_token": csrf_of(public)})
    assert refused.status_code in (403, 404)
    own = (await web.get("/users/coverhost")).text
    assert f'action="/users/coverhost/recordings/{rid}/delete"' in own
    deleted = await web.post(f"/users/coverhost/recordings/{rid}/delete", data={"csrf_token": csrf_of(own)})
    assert deleted.status_code == 303
    assert "Last night" not in (await web.get("/users/coverhost")).text
