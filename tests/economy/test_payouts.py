"""Creator payouts through the API: KYC gate, holds, idempotency, admin approve/reject exactly once
(also when two admins race), the earnings summary, and the ledger staying consistent."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.conftest import assert_error
from tests.economy.conftest import grant_coins, verify
from tests.kyc.support import approve_kyc, revoke_kyc

API = "/api/v1"


async def earn(app: Any, client: Any, fan: Any, creator: Any, live_stream: Any, make_gift: Any, coins: int) -> None:
    """The creator earns 70 % of ``coins`` through a gift from ``fan``."""
    stream_id = await live_stream(creator)
    gift = await make_gift(coin_price=coins)
    await grant_coins(app, fan.id, coins)
    r = await client.post(
        f"{API}/streams/{stream_id}/gifts",
        json={"gift_id": gift["id"], "quantity": 1},
        headers={**fan.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 200, r.text


async def verify_kyc(client: Any, admin: Any, user: Any, verified: bool = True) -> None:
    """Approve the user's identity documents over the KYC API (or withdraw the approval)."""
    if verified:
        await approve_kyc(client, admin, user)
    else:
        await revoke_kyc(client, admin, user)


def keyed(user: Any, key: str | None = None) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key or uuid.uuid4().hex}


BODY = {"coins": 2000, "currency": "NPR", "method": "esewa", "destination": "9800000000"}


async def earnings(client: Any, user: Any) -> dict[str, Any]:
    r = await client.get(f"{API}/wallet/earnings", headers=user.headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_payout_needs_kyc_and_valid_request(app, client, admin, fan, creator, live_stream, make_gift):
    await earn(app, client, fan, creator, live_stream, make_gift, 10_000)  # 7000 earned
    assert_error(await client.post(f"{API}/payouts", json=BODY, headers=keyed(creator)), 403, "kyc_required")
    assert_error(
        await client.post(f"{API}/admin/kyc/users/{creator.id}/revoke", json={"reason": "x"}, headers=creator.headers),
        403,
    )
    await verify_kyc(client, admin, creator)
    bad = [
        ({**BODY, "currency": "EUR"}, "currency_not_supported"),
        ({**BODY, "method": "cash"}, "invalid_method"),
        ({**BODY, "coins": 999}, "below_minimum"),
        ({**BODY, "coins": 7001}, "insufficient_funds"),
    ]
    for body, code in bad:
        r = await client.post(f"{API}/payouts", json=body, headers=keyed(creator))
        assert r.json()["error"]["code"] == code, r.text
    assert_error(await client.post(f"{API}/payouts", json=BODY, headers=creator.headers), 422)
    await verify_kyc(client, admin, creator, verified=False)
    assert_error(await client.post(f"{API}/payouts", json=BODY, headers=keyed(creator)), 403, "kyc_required")
    assert (await earnings(client, creator))["available"] == 7000
    assert (await verify(app)).ok


async def test_payout_hold_idempotency_and_approve(app, client, admin, fan, creator, live_stream, make_gift):
    await earn(app, client, fan, creator, live_stream, make_gift, 10_000)
    await verify_kyc(client, admin, creator)
    headers = keyed(creator, "payout-1")
    r = await client.post(f"{API}/payouts", json=BODY, headers=headers)
    assert r.status_code == 201, r.text
    payout = r.json()
    assert payout["status"] == "pending" and payout["coins"] == 2000 and payout["amount"] == 2000  # 1000/1000 coins
    again = await client.post(f"{API}/payouts", json=BODY, headers=headers)
    assert again.status_code == 201 and again.json()["id"] == payout["id"]
    assert_error(
        await client.post(f"{API}/payouts", json={**BODY, "coins": 3000}, headers=headers),
        409,
        "idempotency_key_reused",
    )
    summary = await earnings(client, creator)
    assert summary["total_earned"] == 7000 and summary["available"] == 5000
    assert summary["pending_payouts"] == 2000 and summary["paid_out"] == 0
    assert summary["by_period"] == {"day": 7000, "week": 7000, "month": 7000}
    mine = (await client.get(f"{API}/payouts", headers=creator.headers)).json()
    assert [p["id"] for p in mine["items"]] == [payout["id"]]
    assert (await client.get(f"{API}/payouts", headers=fan.headers)).json()["items"] == []
    assert_error(await client.get(f"{API}/admin/payouts", headers=creator.headers), 403)
    queue = (await client.get(f"{API}/admin/payouts?status=pending", headers=admin.headers)).json()
    assert [p["id"] for p in queue["items"]] == [payout["id"]]
    assert_error(await client.get(f"{API}/admin/payouts?status=nope", headers=admin.headers), 422, "invalid_status")

    r = await client.post(f"{API}/admin/payouts/{payout['id']}/approve", headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "posted"
    assert_error(
        await client.post(f"{API}/admin/payouts/{payout['id']}/approve", headers=admin.headers),
        409,
        "payout_not_pending",
    )
    assert_error(
        await client.post(f"{API}/admin/payouts/{payout['id']}/reject", json={}, headers=admin.headers),
        409,
        "payout_not_pending",
    )
    summary = await earnings(client, creator)
    assert (summary["available"], summary["pending_payouts"], summary["paid_out"]) == (5000, 0, 2000)
    assert_error(await client.post(f"{API}/admin/payouts/{uuid.uuid4()}/approve", headers=admin.headers), 404)
    assert (await verify(app)).ok


async def test_reject_returns_coins_and_racing_admins_decide_once(
    app, client, make_user, fan, creator, live_stream, make_gift
):
    admins = [await make_user(roles=["admin"]) for _ in range(2)]
    await earn(app, client, fan, creator, live_stream, make_gift, 10_000)
    await verify_kyc(client, admins[0], creator)
    r = await client.post(f"{API}/payouts", json=BODY, headers=keyed(creator))
    payout_id = r.json()["id"]
    r = await client.post(
        f"{API}/admin/payouts/{payout_id}/reject", json={"reason": "destination unverified"}, headers=admins[0].headers
    )
    assert r.status_code == 200 and r.json()["status"] == "voided" and r.json()["reason"] == "destination unverified"
    assert (await earnings(client, creator))["available"] == 7000

    for _ in range(3):
        r = await client.post(f"{API}/payouts", json=BODY, headers=keyed(creator))
        payout_id = r.json()["id"]
        results = await asyncio.gather(
            client.post(f"{API}/admin/payouts/{payout_id}/approve", headers=admins[0].headers),
            client.post(f"{API}/admin/payouts/{payout_id}/reject", json={}, headers=admins[1].headers),
            client.post(f"{API}/admin/payouts/{payout_id}/approve", headers=admins[1].headers),
        )
        assert sorted(x.status_code for x in results) == [200, 409, 409], [x.text for x in results]
    summary = await earnings(client, creator)
    assert summary["available"] + summary["paid_out"] == 7000 and summary["pending_payouts"] == 0
    report = await verify(app)
    assert report.ok, report
