"""Refunds (admin and Stripe ``charge.refunded``), clawbacks of spent coins, purchase velocity caps
and scheduled reconciliation of pending payments against the providers' APIs."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

from halobuzz.core.clock import utcnow
from halobuzz.payments.reconcile import reconcile_pending
from tests.conftest import assert_error, client_for
from tests.economy.conftest import verify
from tests.payments.test_payments import balance, reconciliation, starter_package, stripe_event, stripe_headers

API = "/api/v1"


async def buy_sandbox(client: Any, package: dict[str, Any], user: Any) -> str:
    body = {"package_id": package["id"], "provider": "sandbox", "currency": "NPR"}
    r = await client.post(f"{API}/payments/intents", json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    intent_id: str = r.json()["id"]
    r = await client.post(f"{API}/payments/sandbox/{intent_id}/complete")
    assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
    return intent_id


async def flags(client: Any, admin: Any, **params: Any) -> list[dict[str, Any]]:
    r = await client.get(f"{API}/admin/economy/flags", params=params, headers=admin.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_admin_refund_claws_back_once(app, client, make_user):
    admin, user = await make_user(roles=["admin"]), await make_user()
    package = await starter_package(app)
    intent_id = await buy_sandbox(client, package, user)
    assert await balance(client, user) == 500
    url = f"{API}/admin/payments/{intent_id}/refund"
    assert_error(await client.post(url, json={"reason": "x"}, headers=user.headers), 403)
    assert_error(await client.post(url, json={}, headers=admin.headers), 422)
    r = await client.post(url, json={"reason": "customer request"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    refund = r.json()
    assert (refund["coins_clawed_back"], refund["coins_shortfall"], refund["source"]) == (500, 0, "admin")
    assert await balance(client, user) == 0
    assert_error(await client.post(url, json={"reason": "again"}, headers=admin.headers), 409, "already_refunded")
    r = await client.get(f"{API}/payments/intents/{intent_id}", headers=user.headers)
    assert r.json()["status"] == "refunded"
    assert_error(
        await client.post(f"{API}/admin/payments/{uuid.uuid4()}/refund", json={"reason": "x"}, headers=admin.headers),
        404,
        "intent_not_found",
    )
    pending = await client.post(
        f"{API}/payments/intents",
        json={"package_id": package["id"], "provider": "sandbox", "currency": "NPR"},
        headers=user.headers,
    )
    assert_error(
        await client.post(
            f"{API}/admin/payments/{pending.json()['id']}/refund", json={"reason": "x"}, headers=admin.headers
        ),
        409,
        "intent_not_refundable",
    )
    assert (await reconciliation(client, make_user))["ok"] is True
    assert await flags(client, admin) == []


async def test_refund_after_spending_records_shortfall_and_races(app, client, make_user):
    admins = [await make_user(roles=["admin"]) for _ in range(2)]
    user, creator = await make_user(), await make_user(roles=["creator"])
    package = await starter_package(app)
    intent_id = await buy_sandbox(client, package, user)
    stream = (await client.post(f"{API}/streams", json={"title": "t"}, headers=creator.headers)).json()["id"]
    assert (await client.post(f"{API}/streams/{stream}/start", headers=creator.headers)).status_code == 200
    gift = (
        await client.post(f"{API}/admin/gifts", json={"name": "rose-r", "coin_price": 150}, headers=admins[0].headers)
    ).json()
    r = await client.post(
        f"{API}/streams/{stream}/gifts",
        json={"gift_id": gift["id"], "quantity": 2},
        headers={**user.headers, "Idempotency-Key": "g1"},
    )
    assert r.status_code == 200 and r.json()["balance"] == 200, r.text
    url = f"{API}/admin/payments/{intent_id}/refund"
    results = await asyncio.gather(
        *(client.post(url, json={"reason": "chargeback"}, headers=a.headers) for a in admins + admins)
    )
    assert sorted(r.status_code for r in results) == [200, 409, 409, 409], [r.text for r in results]
    (ok,) = [r.json() for r in results if r.status_code == 200]
    assert (ok["coins_clawed_back"], ok["coins_shortfall"]) == (200, 300)
    assert await balance(client, user) == 0
    (flag,) = await flags(client, admins[0], status="open")
    assert flag["kind"] == "refund_after_spend" and flag["user_id"] == str(user.id)
    assert flag["details"]["coins_shortfall"] == 300 and flag["payment_intent_id"] == intent_id
    r = await client.post(
        f"{API}/admin/economy/flags/{flag['id']}/resolve", json={"resolution": "recovered"}, headers=admins[1].headers
    )
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert_error(
        await client.post(f"{API}/admin/economy/flags/{flag['id']}/resolve", json={}, headers=admins[0].headers),
        409,
        "flag_resolved",
    )
    assert await flags(client, admins[0], status="open") == []
    assert_error(await client.get(f"{API}/admin/economy/flags?status=x", headers=admins[0].headers), 422)
    assert (await verify(app)).ok
    assert (await reconciliation(client, make_user))["ok"] is True


def charge_refunded(payment_intent: str, event_id: str, *, full: bool = True) -> bytes:
    charge = {"id": "ch_1", "object": "charge", "payment_intent": payment_intent, "refunded": full}
    return json.dumps(
        {"id": event_id, "object": "event", "type": "charge.refunded", "data": {"object": charge}}
    ).encode()


async def stripe_purchase(client: Any, fake_provider: Any, package: dict[str, Any], user: Any) -> tuple[str, str]:
    body = {"package_id": package["id"], "provider": "stripe", "currency": "USD"}
    r = await client.post(f"{API}/payments/intents", json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    session = next(s for s in fake_provider.sessions.values() if s["client_reference_id"] == r.json()["id"])
    return r.json()["id"], session["id"]


async def test_stripe_refunds_admin_and_webhook(payments_app, fake_provider, make_user):
    app = await payments_app()
    package = await starter_package(app)
    async with client_for(app) as client:
        admin, user = await make_user(roles=["admin"]), await make_user()
        hook = f"{API}/payments/webhooks/stripe"
        # Admin refund: Stripe's refund API is called (idempotently), then the ledger posts once.
        intent_id, sid = await stripe_purchase(client, fake_provider, package, user)
        paid = stripe_event(fake_provider.pay_stripe(sid), "evt_paid_1")
        assert (await client.post(hook, content=paid, headers=stripe_headers(paid))).status_code == 200
        assert await balance(client, user) == 500
        r = await client.post(f"{API}/admin/payments/{intent_id}/refund", json={"reason": "dup"}, headers=admin.headers)
        assert r.status_code == 200 and r.json()["provider_refund_id"] == "re_test_0001", r.text
        (call,) = [q for q in fake_provider.requests if q["path"] == "/v1/refunds"]
        assert call["headers"]["idempotency-key"] == f"refund-{intent_id}"
        assert f"payment_intent=pi_{sid}" in call["body"].decode()
        # Stripe's own charge.refunded for it afterwards changes nothing.
        echo = charge_refunded(f"pi_{sid}", "evt_ref_1")
        r = await client.post(hook, content=echo, headers=stripe_headers(echo))
        assert r.status_code == 200 and r.json()["status"] == "refunded"
        assert await balance(client, user) == 0

        # Provider-initiated refund (dashboard): the webhook refunds once however often it is replayed.
        intent_id, sid = await stripe_purchase(client, fake_provider, package, user)
        paid = stripe_event(fake_provider.pay_stripe(sid), "evt_paid_2")
        assert (await client.post(hook, content=paid, headers=stripe_headers(paid))).status_code == 200
        partial = charge_refunded(f"pi_{sid}", "evt_part", full=False)
        for _ in range(2):
            r = await client.post(hook, content=partial, headers=stripe_headers(partial))
            assert r.status_code == 200 and r.json()["status"] == "succeeded"
        assert [f["kind"] for f in await flags(client, admin)] == ["partial_refund"]
        full = charge_refunded(f"pi_{sid}", "evt_full")
        results = await asyncio.gather(
            *(client.post(hook, content=full, headers=stripe_headers(full)) for _ in range(3))
        )
        assert all(r.status_code == 200 and r.json()["status"] == "refunded" for r in results)
        again = charge_refunded(f"pi_{sid}", "evt_full_2")
        assert (await client.post(hook, content=again, headers=stripe_headers(again))).status_code == 200
        assert await balance(client, user) == 0
        stranger = charge_refunded("pi_unknown", "evt_x")
        assert_error(await client.post(hook, content=stranger, headers=stripe_headers(stranger)), 404)
        assert (await reconciliation(client, make_user))["ok"] is True


async def test_purchase_velocity_caps(app_factory, make_user):
    app = await app_factory(fraud={"purchases_per_hour": 2, "flag_intents_per_hour": 2})
    package = await starter_package(app)
    async with client_for(app) as client:
        admin, user = await make_user(roles=["admin"]), await make_user()
        body = {"package_id": package["id"], "provider": "sandbox", "currency": "NPR"}
        for _ in range(2):
            assert (await client.post(f"{API}/payments/intents", json=body, headers=user.headers)).status_code == 201
        err = assert_error(
            await client.post(f"{API}/payments/intents", json=body, headers=user.headers), 429, "purchase_velocity"
        )
        assert err["details"]["window"] == "hour" and err["details"]["intents"] == 3
        other = await make_user()
        assert (await client.post(f"{API}/payments/intents", json=body, headers=other.headers)).status_code == 201
        kinds = sorted(f["kind"] for f in await flags(client, admin))
        assert kinds == ["many_intents", "purchase_velocity"]


async def test_reconcile_pending_credits_or_closes_once(payments_app, fake_provider, make_user):
    app = await payments_app()
    package = await starter_package(app)
    async with client_for(app) as client:
        admin, user = await make_user(roles=["admin"]), await make_user()
        stripe_paid, sid = await stripe_purchase(client, fake_provider, package, user)
        fake_provider.pay_stripe(sid)  # paid, but the webhook never arrived
        stripe_open, _ = await stripe_purchase(client, fake_provider, package, user)
        body = {"package_id": package["id"], "provider": "khalti", "currency": "NPR"}
        khalti = (await client.post(f"{API}/payments/intents", json=body, headers=user.headers)).json()["id"]
        (pidx,) = fake_provider.khalti
        fake_provider.khalti[pidx]["status"] = "Completed"
        body = {"package_id": package["id"], "provider": "esewa", "currency": "NPR"}
        esewa = (await client.post(f"{API}/payments/intents", json=body, headers=user.headers)).json()["id"]
        sandbox = (
            await client.post(f"{API}/payments/intents", json={**body, "provider": "sandbox"}, headers=user.headers)
        ).json()["id"]

        # Too young: nothing is looked at.
        r = await client.post(f"{API}/admin/payments/reconcile", headers=admin.headers)
        assert r.status_code == 200 and r.json()["checked"] == 0, r.text
        assert_error(await client.post(f"{API}/admin/payments/reconcile", headers=user.headers), 403)

        later = utcnow() + timedelta(minutes=20)
        results = await asyncio.gather(*(reconcile_pending(app.runtime, scheduled_for=later) for _ in range(2)))
        assert all(r["errors"] == 0 for r in results), results
        statuses = {}
        for intent_id in (stripe_paid, stripe_open, khalti, esewa, sandbox):
            statuses[intent_id] = (
                await client.get(f"{API}/payments/intents/{intent_id}", headers=user.headers)
            ).json()["status"]
        assert statuses == {
            stripe_paid: "succeeded",
            stripe_open: "pending",
            khalti: "succeeded",
            esewa: "succeeded",
            sandbox: "pending",
        }
        assert await balance(client, user) == 1500
        # A day on, what never completed is closed.
        much_later = utcnow() + timedelta(days=2)
        result = await reconcile_pending(app.runtime, scheduled_for=much_later)
        assert (result["checked"], result["closed"], result["credited"]) == (2, 2, 0)
        assert await balance(client, user) == 1500
        assert (await reconciliation(client, make_user))["ok"] is True
