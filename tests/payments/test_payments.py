"""Buying coins end to end: the sandbox checkout, Stripe Checkout with signed webhooks, eSewa's
signed callback confirmed by its status API, and Khalti's lookup-confirmed return callback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from halobuzz.economy import service as economy_service
from halobuzz.payments.providers.esewa import sign
from tests.conftest import assert_error, client_for
from tests.payments.conftest import ESEWA_SECRET, STRIPE_WEBHOOK_SECRET

API = "/api/v1"


async def starter_package(app: Any) -> dict[str, Any]:
    async with app.runtime.db.session() as session:
        await economy_service.ensure_default_catalog(session)
    async with client_for(app) as client:
        return (await client.get(f"{API}/coin-packages")).json()["items"][0]  # type: ignore[no-any-return]


async def balance(client: Any, user: Any) -> int:
    return int((await client.get(f"{API}/wallet", headers=user.headers)).json()["balance"])


async def reconciliation(client: Any, make_user: Any) -> dict[str, Any]:
    admin = await make_user(roles=["admin"])
    r = await client.get(f"{API}/admin/ledger/reconciliation", headers=admin.headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_esewa_documented_signatures():
    assert (
        sign(ESEWA_SECRET, "total_amount=110,transaction_uuid=241028,product_code=EPAYTEST")
        == "i94zsd3oXF6ZsSr/kGqT4sSzYQzjj1W/waxjWyRwaME="
    )
    names = "transaction_code,status,total_amount,transaction_uuid,product_code,signed_field_names"
    message = (
        "transaction_code=000AWEO,status=COMPLETE,total_amount=1000.0,transaction_uuid=250610-162413,"
        f"product_code=EPAYTEST,signed_field_names={names}"
    )
    assert sign(ESEWA_SECRET, message) == "62GcfZTmVkzhtUeh+QJ1AqiJrjoWWGof3U+eTPTZ7fA="


async def test_sandbox_purchase_credits_once(app, client, make_user):
    user = await make_user()
    package = await starter_package(app)
    r = await client.post(
        f"{API}/payments/intents",
        json={"package_id": package["id"], "provider": "sandbox", "currency": "NPR"},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    intent = r.json()
    assert intent["status"] == "pending" and intent["amount"] == 1000 and intent["coins"] == 500
    assert intent["next_action"] == {"type": "redirect", "url": f"/api/v1/payments/sandbox/{intent['id']}/checkout"}
    page = await client.get(intent["next_action"]["url"])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert f'action="/api/v1/payments/sandbox/{intent["id"]}/complete"' in page.text
    for _ in range(2):
        done = await client.post(f"{API}/payments/sandbox/{intent['id']}/complete")
        assert done.status_code == 200 and done.json()["status"] == "succeeded", done.text
    assert await balance(client, user) == 500
    assert (await client.get(f"{API}/payments/intents/{intent['id']}", headers=user.headers)).json()[
        "status"
    ] == "succeeded"
    history = (await client.get(f"{API}/wallet/transactions", headers=user.headers)).json()["items"]
    assert [(i["kind"], i["amount"]) for i in history] == [("coin_purchase", 500)]
    report = await reconciliation(client, make_user)
    assert report["ok"] is True
    assert report["provider_totals"] == [
        {"provider": "sandbox", "currency": "NPR", "payments": 1, "amount": 1000, "coins": 500}
    ]


async def test_intent_bad_input(app, client, make_user):
    user, other = await make_user(), await make_user()
    package = await starter_package(app)
    url = f"{API}/payments/intents"
    cases = [
        ({"package_id": package["id"], "provider": "paypal", "currency": "NPR"}, 422, "invalid_input"),
        ({"package_id": package["id"], "provider": "sandbox", "currency": "npr"}, 422, "invalid_input"),
        ({"package_id": package["id"], "provider": "sandbox", "currency": "EUR"}, 422, "currency_not_offered"),
        ({"package_id": str(uuid.uuid4()), "provider": "sandbox", "currency": "NPR"}, 404, "package_not_found"),
        ({"package_id": package["id"], "provider": "stripe", "currency": "NPR"}, 404, "provider_not_enabled"),
        ({"package_id": package["id"]}, 422, "invalid_input"),
    ]
    for body, status, code in cases:
        assert_error(await client.post(url, json=body, headers=user.headers), status, code)
    assert_error(await client.post(url, json=cases[0][0]), 401)
    intent = (
        await client.post(
            url, json={"package_id": package["id"], "provider": "sandbox", "currency": "USD"}, headers=user.headers
        )
    ).json()
    assert_error(await client.get(f"{url}/{intent['id']}", headers=other.headers), 404, "intent_not_found")
    assert_error(await client.post(f"{API}/payments/sandbox/{uuid.uuid4()}/complete"), 404, "intent_not_found")
    assert_error(await client.get(f"{API}/payments/sandbox/nope/checkout"), 422)
    assert await balance(client, user) == 0


async def test_sandbox_disabled(app_factory, make_user):
    app = await app_factory(payments={"sandbox_enabled": False})
    package = await starter_package(app)
    async with client_for(app) as client:
        user = await make_user()
        body = {"package_id": package["id"], "provider": "sandbox", "currency": "NPR"}
        assert_error(
            await client.post(f"{API}/payments/intents", json=body, headers=user.headers), 404, "provider_not_enabled"
        )
        assert_error(await client.post(f"{API}/payments/sandbox/{uuid.uuid4()}/complete"), 404, "provider_not_enabled")


def stripe_headers(payload: bytes, *, secret: str = STRIPE_WEBHOOK_SECRET, t: int | None = None) -> dict[str, str]:
    t = int(time.time()) if t is None else t
    sig = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={'0' * 64},v1={sig}", "Content-Type": "application/json"}


def stripe_event(session: dict[str, Any], event_id: str = "evt_1") -> bytes:
    obj = {**session, "payment_status": "paid"}
    return json.dumps(
        {"id": event_id, "object": "event", "type": "checkout.session.completed", "data": {"object": obj}}
    ).encode()


async def test_stripe_checkout_and_webhook(payments_app, fake_provider, make_user):
    app = await payments_app()
    package = await starter_package(app)
    async with client_for(app) as client:
        user = await make_user()
        fake_provider.fail_next = 1  # one 503 first: the call is retried with the same Idempotency-Key
        r = await client.post(
            f"{API}/payments/intents",
            json={"package_id": package["id"], "provider": "stripe", "currency": "USD"},
            headers=user.headers,
        )
        assert r.status_code == 201, r.text
        intent = r.json()
        created = [q for q in fake_provider.requests if q["path"] == "/v1/checkout/sessions"]
        assert (
            len(created) == 2 and created[0]["headers"]["idempotency-key"] == created[1]["headers"]["idempotency-key"]
        )
        (session,) = fake_provider.sessions.values()
        assert intent["next_action"] == {"type": "redirect", "url": session["url"]}
        assert session["amount_total"] == package["prices"]["USD"] and session["currency"] == "usd"

        url = f"{API}/payments/webhooks/stripe"
        payload = stripe_event(session)
        # Tampered body, wrong secret, stale and future timestamps, missing header: rejected, nothing credited.
        tampered = payload.replace(b'"paid"', b'"paid" ')
        assert_error(
            await client.post(url, content=tampered, headers=stripe_headers(payload)), 400, "invalid_signature"
        )
        assert_error(
            await client.post(url, content=payload, headers=stripe_headers(payload, secret="whsec_other")), 400
        )
        stale = stripe_headers(payload, t=int(time.time()) - 301)
        assert_error(await client.post(url, content=payload, headers=stale), 400, "stale_signature")
        future = stripe_headers(payload, t=int(time.time()) + 301)
        assert_error(await client.post(url, content=payload, headers=future), 400, "stale_signature")
        assert_error(await client.post(url, content=payload), 400, "invalid_signature")
        bad = {"Stripe-Signature": "garbage", "Content-Type": "application/json"}
        assert_error(await client.post(url, content=payload, headers=bad), 400, "invalid_signature")
        not_json = b"{not json"
        assert_error(await client.post(url, content=not_json, headers=stripe_headers(not_json)), 422, "invalid_event")
        assert await balance(client, user) == 0

        for _ in range(2):  # replays of one event
            r = await client.post(url, content=payload, headers=stripe_headers(payload))
            assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
        other_event = stripe_event(session, "evt_2")  # a second event for the same session
        assert (await client.post(url, content=other_event, headers=stripe_headers(other_event))).status_code == 200
        assert await balance(client, user) == package["coins"] + package["bonus_coins"]

        ignored = json.dumps({"id": "evt_3", "type": "customer.created", "data": {"object": {}}}).encode()
        r = await client.post(url, content=ignored, headers=stripe_headers(ignored))
        assert r.status_code == 200 and r.json() == {"received": True, "intent_id": None, "status": None}
        assert (await reconciliation(client, make_user))["ok"] is True


async def test_stripe_webhook_amount_mismatch_credits_nothing(payments_app, fake_provider, make_user):
    app = await payments_app()
    package = await starter_package(app)
    async with client_for(app) as client:
        user = await make_user()
        body = {"package_id": package["id"], "provider": "stripe", "currency": "USD"}
        assert (await client.post(f"{API}/payments/intents", json=body, headers=user.headers)).status_code == 201
        (session,) = fake_provider.sessions.values()
        payload = stripe_event({**session, "amount_total": 1})
        r = await client.post(f"{API}/payments/webhooks/stripe", content=payload, headers=stripe_headers(payload))
        assert_error(r, 422, "amount_mismatch")
        assert await balance(client, user) == 0


async def test_stripe_unreachable_is_503(app_factory, make_user):
    app = await app_factory(
        payments={"stripe_secret_key": "sk_test_x", "stripe_api_base": "http://127.0.0.1:9", "http_retries": 0}
    )
    package = await starter_package(app)
    async with client_for(app) as client:
        user = await make_user()
        body = {"package_id": package["id"], "provider": "stripe", "currency": "USD"}
        r = await client.post(f"{API}/payments/intents", json=body, headers=user.headers)
        assert_error(r, 503, "provider_unavailable")


def esewa_data(fields: dict[str, Any], secret: str = ESEWA_SECRET) -> str:
    names = "transaction_code,status,total_amount,transaction_uuid,product_code,signed_field_names"
    fields = {**fields, "signed_field_names": names}
    message = ",".join(f"{n}={fields[n]}" for n in names.split(","))
    fields["signature"] = sign(secret, message)
    return base64.b64encode(json.dumps(fields).encode()).decode()


async def test_esewa_form_and_callback(payments_app, fake_provider, make_user):
    app = await payments_app()
    package = await starter_package(app)
    async with client_for(app) as client:
        user = await make_user()
        body = {"package_id": package["id"], "provider": "esewa", "currency": "NPR"}
        intent = (await client.post(f"{API}/payments/intents", json=body, headers=user.headers)).json()
        action = intent["next_action"]
        assert action["type"] == "form_post" and action["url"].endswith("/api/epay/main/v2/form")
        fields = action["fields"]
        assert fields["total_amount"] == "10" and fields["transaction_uuid"] == intent["id"]
        message = f"total_amount=10,transaction_uuid={intent['id']},product_code=EPAYTEST"
        assert fields["signature"] == sign(ESEWA_SECRET, message)
        usd = {**body, "currency": "USD"}
        assert_error(
            await client.post(f"{API}/payments/intents", json=usd, headers=user.headers), 422, "currency_not_supported"
        )

        url = f"{API}/payments/webhooks/esewa"
        callback = {
            "transaction_code": "000AWEO",
            "status": "COMPLETE",
            "total_amount": "10.0",
            "transaction_uuid": intent["id"],
            "product_code": "EPAYTEST",
        }
        assert_error(await client.get(url, params={"data": esewa_data(callback, "wrong")}), 400, "invalid_signature")
        assert_error(await client.get(url, params={"data": "!!notbase64"}), 422, "invalid_callback")
        cheap = esewa_data({**callback, "total_amount": "1.0"})
        assert_error(await client.get(url, params={"data": cheap}), 422, "amount_mismatch")
        fake_provider.esewa_status = "PENDING"
        assert_error(await client.get(url, params={"data": esewa_data(callback)}), 409, "payment_not_complete")
        assert await balance(client, user) == 0
        fake_provider.esewa_status = "COMPLETE"
        for method in ("GET", "POST"):
            r = await client.request(method, url, params={"data": esewa_data(callback)})
            assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
        assert await balance(client, user) == 500
        status_calls = [q for q in fake_provider.requests if q["path"] == "/api/epay/transaction/status/"]
        assert status_calls[-1]["query"] == {
            "product_code": "EPAYTEST",
            "total_amount": "10.0",
            "transaction_uuid": intent["id"],
        }
        assert (await reconciliation(client, make_user))["ok"] is True


async def test_khalti_credits_only_after_lookup(payments_app, fake_provider, make_user):
    app = await payments_app()
    package = await starter_package(app)
    async with client_for(app) as client:
        user = await make_user()
        body = {"package_id": package["id"], "provider": "khalti", "currency": "NPR"}
        r = await client.post(f"{API}/payments/intents", json=body, headers=user.headers)
        assert r.status_code == 201, r.text
        (pidx,) = fake_provider.khalti
        assert r.json()["next_action"] == {"type": "redirect", "url": f"https://test-pay.khalti.test/?pidx={pidx}"}
        initiate = next(q for q in fake_provider.requests if q["path"] == "/api/v2/epayment/initiate/")
        assert json.loads(initiate["body"])["amount"] == 1000
        url = f"{API}/payments/webhooks/khalti"
        # A forged "Completed" return while Khalti says Pending credits nothing.
        forged = {"pidx": pidx, "status": "Completed", "total_amount": "1000", "purchase_order_id": r.json()["id"]}
        r2 = await client.get(url, params=forged)
        assert r2.status_code == 200 and r2.json()["status"] == "pending", r2.text
        assert await balance(client, user) == 0
        assert_error(await client.get(url, params={"pidx": "unknown"}), 404, "intent_not_found")
        assert_error(await client.get(url), 422)
        fake_provider.khalti[pidx]["status"] = "Completed"
        for _ in range(2):
            r3 = await client.get(url, params=forged)
            assert r3.status_code == 200 and r3.json()["status"] == "succeeded", r3.text
        assert await balance(client, user) == 500
        lookups = [q for q in fake_provider.requests if q["path"] == "/api/v2/epayment/lookup/"]
        assert len(lookups) == 2 and lookups[0]["headers"]["authorization"].startswith("Key ")
        assert (await reconciliation(client, make_user))["ok"] is True


async def test_khalti_refuses_small_amounts(payments_app, make_user):
    app = await payments_app()
    async with client_for(app) as client:
        admin = await make_user(roles=["admin"])
        user = await make_user()
        body = {"name": "Tiny", "coins": 10, "prices": {"NPR": 999}}
        package = (await client.post(f"{API}/admin/coin-packages", json=body, headers=admin.headers)).json()
        r = await client.post(
            f"{API}/payments/intents",
            json={"package_id": package["id"], "provider": "khalti", "currency": "NPR"},
            headers=user.headers,
        )
        assert_error(r, 422, "amount_too_small")


async def test_stripe_expired_session_cancels_the_intent(payments_app, fake_provider, make_user):
    app = await payments_app()
    package = await starter_package(app)
    async with client_for(app) as client:
        user = await make_user()
        body = {"package_id": package["id"], "provider": "stripe", "currency": "USD"}
        intent = (await client.post(f"{API}/payments/intents", json=body, headers=user.headers)).json()
        (session,) = fake_provider.sessions.values()
        url = f"{API}/payments/webhooks/stripe"
        expired = json.dumps(
            {"id": "evt_x", "type": "checkout.session.expired", "data": {"object": {**session, "status": "expired"}}}
        ).encode()
        r = await client.post(url, content=expired, headers=stripe_headers(expired))
        assert r.status_code == 200 and r.json() == {"received": True, "intent_id": intent["id"], "status": "canceled"}
        paid = stripe_event(session, "evt_late")
        assert_error(await client.post(url, content=paid, headers=stripe_headers(paid)), 409, "intent_not_pending")
        odd = json.dumps({"id": "evt_y", "type": "checkout.session.completed", "data": {"object": [1]}}).encode()
        assert_error(await client.post(url, content=odd, headers=stripe_headers(odd)), 422, "invalid_event")
        stranger = stripe_event({**session, "id": "cs_other"}, "evt_z")
        assert_error(
            await client.post(url, content=stranger, headers=stripe_headers(stranger)), 404, "intent_not_found"
        )
        assert await balance(client, user) == 0


async def test_khalti_canceled_payment(payments_app, fake_provider, make_user):
    app = await payments_app()
    package = await starter_package(app)
    async with client_for(app) as client:
        user = await make_user()
        body = {"package_id": package["id"], "provider": "khalti", "currency": "NPR"}
        intent = (await client.post(f"{API}/payments/intents", json=body, headers=user.headers)).json()
        (pidx,) = fake_provider.khalti
        fake_provider.khalti[pidx]["status"] = "User canceled"
        r = await client.get(f"{API}/payments/webhooks/khalti", params={"pidx": pidx, "status": "User canceled"})
        assert r.status_code == 200 and r.json()["status"] == "canceled"
        got = await client.get(f"{API}/payments/intents/{intent['id']}", headers=user.headers)
        assert got.json()["status"] == "canceled"
        assert await balance(client, user) == 0
