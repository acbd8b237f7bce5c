"""The admin payments list: newest first, filters, paging, admins only."""

from __future__ import annotations

import uuid

from tests.conftest import assert_error
from tests.payments.test_payments import starter_package

API = "/api/v1"


async def test_admin_lists_payments_with_filters(app, client, make_user):
    package = await starter_package(app)
    admin = await make_user(roles=["admin"])
    buyers = [await make_user(), await make_user()]
    made = []
    for buyer in (buyers[0], buyers[1], buyers[0]):
        r = await client.post(
            f"{API}/payments/intents",
            json={"package_id": package["id"], "provider": "sandbox", "currency": "NPR"},
            headers=buyer.headers,
        )
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    assert (await client.post(f"{API}/payments/sandbox/{made[1]}/complete")).status_code == 200

    r = await client.get(f"{API}/admin/payments", headers=admin.headers)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["id"] for i in items] == list(reversed(made))
    paid = next(i for i in items if i["id"] == made[1])
    assert paid["status"] == "succeeded" and paid["username"] == buyers[1].username
    assert paid["user_id"] == str(buyers[1].id) and paid["transaction_id"] and paid["amount"] == 1000

    async def ids(**params):
        r = await client.get(f"{API}/admin/payments", params=params, headers=admin.headers)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert await ids(status="succeeded") == [made[1]]
    assert await ids(status="pending", user_id=str(buyers[0].id)) == [made[2], made[0]]
    assert await ids(provider="stripe") == []
    first = (await client.get(f"{API}/admin/payments", params={"limit": 2}, headers=admin.headers)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    assert await ids(limit=2, cursor=first["next_cursor"]) == [made[0]]

    assert_error(
        await client.get(f"{API}/admin/payments", params={"status": "lost"}, headers=admin.headers),
        422,
        "invalid_status",
    )
    assert_error(await client.get(f"{API}/admin/payments", params={"user_id": "x"}, headers=admin.headers), 422)
    assert_error(
        await client.get(f"{API}/admin/payments", params={"cursor": "zz"}, headers=admin.headers), 422, "invalid_cursor"
    )
    assert_error(await client.get(f"{API}/admin/payments", headers=buyers[0].headers), 403)
    assert await ids(user_id=str(uuid.uuid4())) == []
