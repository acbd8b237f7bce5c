"""Privacy requests through the API: export everything (JSON) and delete the account — personal data
anonymised, sign-ins and sockets ended, follower counts kept right, the ledger still balanced."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from halobuzz.accounts.models import User
from halobuzz.chat.models import ChatMessage
from halobuzz.economy.models import LedgerEntry
from tests.conftest import PASSWORD, assert_error
from tests.economy.conftest import grant_coins, verify
from tests.kyc.support import approve_kyc, document_jpeg, upload
from tests.realtime.support import create_stream, eventually, joined, live, sockets

__all__ = ["live", "sockets"]
API = "/api/v1"


async def test_export_then_delete(app, live, sockets, make_user):
    server = await live()
    http = server.http
    me, friend, fan = await make_user(roles=["creator"]), await make_user(roles=["creator"]), await make_user()
    admin = await make_user(roles=["admin"])
    await http.patch(f"{API}/users/me", json={"bio": "I stream momo recipes from Pokhara"}, headers=me.headers)
    assert (await http.post(f"{API}/users/{friend.id}/follow", headers=me.headers)).status_code == 200
    assert (await http.post(f"{API}/users/{me.id}/follow", headers=fan.headers)).status_code == 200
    my_stream = await create_stream(server, me, title="Cooking momo live")
    friend_stream = await create_stream(server, friend, go_live=True)

    # A chat message, a gift, a report and a KYC document of mine.
    socket = sockets()
    await socket.connect(server, me.access_token)
    await joined(socket, friend_stream)
    sent = await socket.call("send_message", {"stream_id": friend_stream, "text": "hello from my phone"})
    assert sent["ok"], sent
    gift = await http.post(f"{API}/admin/gifts", json={"name": "rose", "coin_price": 10}, headers=admin.headers)
    await grant_coins(app, me.id, 100)
    r = await http.post(
        f"{API}/streams/{friend_stream}/gifts",
        json={"gift_id": gift.json()["id"], "quantity": 2},
        headers={**me.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 200, r.text
    report = {"target_type": "user", "target_id": str(fan.id), "reason": "spam", "details": "links"}
    assert (await http.post(f"{API}/reports", json=report, headers=me.headers)).status_code == 201
    assert (await upload(http, me, document_jpeg())).status_code == 201

    # Export: one JSON file with everything.
    exported = await http.get(f"{API}/users/me/export", headers=me.headers)
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    data = exported.json()
    assert data["profile"]["email"] == me.email and data["profile"]["bio"].startswith("I stream momo")
    assert "password_hash" not in data["profile"] and "totp_secret" not in data["profile"]
    assert [f["user_id"] for f in data["following"]] == [str(friend.id)]
    assert [f["user_id"] for f in data["followers"]] == [str(fan.id)]
    assert data["sessions"] and all("token_hash" not in s for s in data["sessions"])
    assert [s["id"] for s in data["streams"]] == [my_stream]
    await eventually(lambda: _has_message(app, me.id), what="the chat message to be written")
    exported = (await http.get(f"{API}/users/me/export", headers=me.headers)).json()
    assert [m["text"] for m in exported["chat_messages"]] == ["hello from my phone"]
    assert [g["quantity"] for g in exported["gifts_sent"]] == [2]
    kinds = sorted(e["kind"] for e in exported["ledger"]["entries"])
    assert kinds == ["gift", "promotion"] and sum(e["amount"] for e in exported["ledger"]["entries"]) == 80
    assert [r["reason"] for r in exported["reports_made"]] == ["spam"]
    assert len(exported["kyc"]["documents"]) == 1 and "storage_key" not in exported["kyc"]["documents"][0]
    assert any(a["action"] == "kyc.document_uploaded" for a in exported["activity"])
    assert_error(await http.get(f"{API}/users/me/export"), 401)

    # Deletion needs the password and the confirmation words.
    url = f"{API}/users/me/delete"
    assert_error(
        await http.post(url, json={"password": PASSWORD, "confirm": "yes"}, headers=me.headers),
        422,
        "confirmation_required",
    )
    assert_error(
        await http.post(url, json={"password": "wrong", "confirm": "delete my account"}, headers=me.headers),
        403,
        "invalid_password",
    )
    friend_before = (await http.get(f"{API}/users/{friend.id}")).json()["follower_count"]
    gone = await http.post(url, json={"password": PASSWORD, "confirm": "Delete my account"}, headers=me.headers)
    assert gone.status_code == 200, gone.text
    assert gone.json()["deleted"] is True and gone.json()["follows_removed"] == 2

    # Signed out everywhere: the token is refused and the socket was dropped.
    assert (await http.get(f"{API}/users/me", headers=me.headers)).status_code == 401
    await socket.wait_for("session_ended")
    login = await http.post(f"{API}/auth/login", json={"login": me.username, "password": PASSWORD})
    assert_error(login, 401, "invalid_credentials")
    assert_error(await http.get(f"{API}/users/{me.username}"), 404)
    assert (await http.get(f"{API}/users/{friend.id}")).json()["follower_count"] == friend_before - 1
    assert (await http.get(f"{API}/users/{fan.id}")).json()["following_count"] == 0
    assert_error(await http.get(f"{API}/streams/{my_stream}"), 404)
    history = (await http.get(f"{API}/streams/{friend_stream}/chat")).json()["items"]
    assert all(m["user"]["id"] != str(me.id) for m in history)

    async with app.runtime.db.session(write=False) as session:
        row = await session.get(User, me.id)
        assert row is not None and row.status == "deleted"
        assert row.username.startswith("deleted-") and row.email.endswith("@deleted.invalid")
        assert row.display_name == "Deleted user" and row.bio == "" and row.phone is None
        texts = list(await session.scalars(select(ChatMessage.text).where(ChatMessage.user_id == me.id)))
        assert texts == [""]
        entries = list(await session.scalars(select(LedgerEntry)))
    # The ledger keeps every entry and still balances.
    assert len(entries) == 5 and (await verify(app)).ok
    private = app.runtime.settings.data_dir / "private"
    await eventually(lambda: _no_files(private), what="the KYC files to be deleted")
    reconciliation = await http.get(f"{API}/admin/ledger/reconciliation", headers=admin.headers)
    assert reconciliation.json()["ok"] is True


async def _has_message(app, user_id) -> bool:
    async with app.runtime.db.session(write=False) as session:
        return await session.scalar(select(ChatMessage.id).where(ChatMessage.user_id == user_id)) is not None


async def _no_files(path) -> bool:
    return not [p for p in path.rglob("*") if p.is_file()]


async def test_deletion_waits_for_a_live_stream_and_a_pending_payout(app, client, make_user):
    me, fan, admin = await make_user(roles=["creator"]), await make_user(), await make_user(roles=["admin"])
    r = await client.post(f"{API}/streams", json={"title": "on air"}, headers=me.headers)
    stream_id = r.json()["id"]
    await client.post(f"{API}/streams/{stream_id}/start", headers=me.headers)
    body = {"password": PASSWORD, "confirm": "delete my account"}
    assert_error(await client.post(f"{API}/users/me/delete", json=body, headers=me.headers), 409, "stream_live")
    gift = (
        await client.post(f"{API}/admin/gifts", json={"name": "crown", "coin_price": 2000}, headers=admin.headers)
    ).json()
    await grant_coins(app, fan.id, 2000)
    sent = await client.post(
        f"{API}/streams/{stream_id}/gifts",
        json={"gift_id": gift["id"], "quantity": 1},
        headers={**fan.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert sent.status_code == 200, sent.text
    await client.post(f"{API}/streams/{stream_id}/end", headers=me.headers)
    await approve_kyc(client, admin, me)
    payout = {"coins": 1000, "currency": "NPR", "method": "esewa", "destination": "9800001234"}
    r = await client.post(f"{API}/payouts", json=payout, headers={**me.headers, "Idempotency-Key": "p"})
    assert r.status_code == 201, r.text
    assert_error(await client.post(f"{API}/users/me/delete", json=body, headers=me.headers), 409, "payout_pending")
    assert (
        await client.post(f"{API}/admin/payouts/{r.json()['id']}/approve", headers=admin.headers)
    ).status_code == 200
    assert (await client.post(f"{API}/users/me/delete", json=body, headers=me.headers)).status_code == 200
    async with app.runtime.db.session(write=False) as session:
        from halobuzz.economy.payouts_models import Payout

        kept = list(await session.scalars(select(Payout)))
    assert [(p.coins, p.destination) for p in kept] == [(1000, "****1234")]
    assert (await verify(app)).ok
