"""Report → review → action → notification → appeal → reversal, over the HTTP API."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from halobuzz.core.events import OutboxEvent
from tests.conftest import assert_error

API = "/api/v1"


async def test_report_review_action_appeal_reversal(app, client, make_user):
    target = await make_user()
    reporters = [await make_user(), await make_user()]
    mod_a, mod_b = await make_user(roles=["moderator"]), await make_user(roles=["moderator"])

    body = {"target_type": "user", "target_id": str(target.id), "reason": "harassment", "details": "rude"}
    first = await client.post(f"{API}/reports", json=body, headers=reporters[0].headers)
    assert first.status_code == 201, first.text
    again = await client.post(f"{API}/reports", json=body, headers=reporters[0].headers)
    second = await client.post(f"{API}/reports", json=body, headers=reporters[1].headers)
    case_id = first.json()["case_id"]
    assert again.json() == {"case_id": case_id, "duplicate": True}
    assert second.json() == {"case_id": case_id, "duplicate": False}

    assert_error(await client.get(f"{API}/moderation/queue", headers=target.headers), 403)
    queue = (await client.get(f"{API}/moderation/queue", headers=mod_a.headers)).json()
    assert [c["id"] for c in queue] == [case_id] and queue[0]["report_count"] == 2

    decision = {"action": "suspend", "reason": "harassment in chat", "duration_days": 3}
    assert_error(
        await client.post(f"{API}/moderation/cases/{case_id}/decision", json=decision, headers=mod_a.headers),
        409,
        "case_not_claimed",
    )
    assert (await client.post(f"{API}/moderation/cases/{case_id}/claim", headers=mod_a.headers)).status_code == 200
    assert_error(
        await client.post(f"{API}/moderation/cases/{case_id}/claim", headers=mod_b.headers), 409, "case_claimed"
    )
    note = await client.post(f"{API}/moderation/cases/{case_id}/notes", json={"note": "checked"}, headers=mod_a.headers)
    assert note.status_code == 204
    ctx = (await client.get(f"{API}/moderation/cases/{case_id}", headers=mod_a.headers)).json()
    assert len(ctx["reports"]) == 2 and ctx["reputation"] == 100

    action = await client.post(f"{API}/moderation/cases/{case_id}/decision", json=decision, headers=mod_a.headers)
    assert action.status_code == 200, action.text
    assert action.json()["action"] == "suspend" and action.json()["duration_days"] == 3
    # The suspension signed the user out; the notification went to the outbox with the reason.
    assert (await client.get(f"{API}/users/me", headers=target.headers)).status_code == 401
    async with app.runtime.db.session(write=False) as session:
        rows = list(await session.scalars(select(OutboxEvent).where(OutboxEvent.type == "moderation.action")))
    assert any(r.data.get("reason") == "harassment in chat" for r in rows), [r.data for r in rows]

    # Reputation fell; the case left the queue; the log has who/what/why.
    assert (await client.get(f"{API}/moderation/queue", headers=mod_a.headers)).json() == []
    log = (await client.get(f"{API}/moderation/log", headers=mod_a.headers)).json()
    assert {e["action"] for e in log} >= {"moderation.claim", "moderation.note", "moderation.suspend"}


async def test_warn_appeal_is_decided_by_another_moderator_and_reversed(app, client, make_user):
    target, reporter = await make_user(), await make_user()
    mod_a, mod_b = await make_user(roles=["moderator"]), await make_user(roles=["moderator"])
    body = {"target_type": "user", "target_id": str(target.id), "reason": "spam"}
    case_id = (await client.post(f"{API}/reports", json=body, headers=reporter.headers)).json()["case_id"]
    await client.post(f"{API}/moderation/cases/{case_id}/claim", headers=mod_a.headers)
    decision = {"action": "warn", "reason": "posting links"}
    action = await client.post(f"{API}/moderation/cases/{case_id}/decision", json=decision, headers=mod_a.headers)
    action_id = action.json()["id"]
    assert (await client.get(f"{API}/moderation/me/reputation", headers=target.headers)).json() == {"reputation": 95}

    other = await make_user()
    url = f"{API}/moderation/actions/{action_id}/appeal"
    assert_error(await client.post(url, json={"text": "not me"}, headers=other.headers), 404, "action_not_found")
    appeal = await client.post(url, json={"text": "those were my own channel links"}, headers=target.headers)
    assert appeal.status_code == 201, appeal.text
    assert_error(await client.post(url, json={"text": "again"}, headers=target.headers), 409, "already_appealed")
    appeal_id = appeal.json()["id"]
    pending = (await client.get(f"{API}/moderation/appeals", headers=mod_b.headers)).json()
    assert [a["id"] for a in pending] == [appeal_id]

    verdict = {"reverse": True, "reason": "links were to the user's own channel"}
    decide = f"{API}/moderation/appeals/{appeal_id}/decision"
    assert_error(await client.post(decide, json=verdict, headers=mod_a.headers), 403, "same_moderator")
    reversed_ = await client.post(decide, json=verdict, headers=mod_b.headers)
    assert reversed_.status_code == 200 and reversed_.json()["status"] == "reversed"
    assert_error(await client.post(decide, json=verdict, headers=mod_b.headers), 409, "appeal_decided")
    assert (await client.get(f"{API}/moderation/me/reputation", headers=target.headers)).json() == {"reputation": 100}
    async with app.runtime.db.session(write=False) as session:
        kinds = [
            r.data["kind"]
            for r in await session.scalars(select(OutboxEvent).where(OutboxEvent.type == "moderation.action"))
        ]
    assert sorted(kinds) == ["action", "appeal"]


async def test_report_input_is_checked(client, make_user):
    user = await make_user()
    url = f"{API}/reports"
    missing = {"target_type": "user", "target_id": str(uuid.uuid4()), "reason": "spam"}
    assert_error(await client.post(url, json=missing, headers=user.headers), 404, "target_not_found")
    assert_error(await client.post(url, json={**missing, "target_id": "nope"}, headers=user.headers), 422)
    assert_error(await client.post(url, json={**missing, "reason": "boring"}, headers=user.headers), 422)
    me = {**missing, "target_id": str(user.id)}
    assert_error(await client.post(url, json=me, headers=user.headers), 422, "self_report")
    assert_error(await client.post(url, json=missing), 401)
