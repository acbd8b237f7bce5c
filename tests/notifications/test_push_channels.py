"""Web Push, FCM and SMS against local servers speaking the providers' protocols: the push is
received and decrypted, auth is checked, 429/5xx are retried after Retry-After, and a provider
saying a target is gone removes it."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import http_ece
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import update
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from halobuzz.app import HaloBuzzApp
from halobuzz.core.clock import utcnow
from halobuzz.notifications.dispatch import wake_all
from halobuzz.notifications.models import NotificationDelivery
from tests.conftest import assert_error, client_for
from tests.events.conftest import jobs_settings
from tests.notifications.conftest import (
    API,
    Provider,
    SmtpServer,
    emit,
    json_error,
    notification_settings,
    wait_delivery,
    wait_notified,
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Browser:
    """A browser's side of a push subscription: its ECDH key pair and auth secret."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        raw = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.p256dh = b64url(raw)

    def subscription(self, endpoint: str) -> dict[str, Any]:
        return {
            "endpoint": endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)},
        }

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm")
        return dict(json.loads(plain))


def verify_vapid(header: str, *, public_key: str, audience: str) -> dict[str, Any]:
    """What a push service does (RFC 8292): the key in ``k`` verifies the ES256 JWT in ``t``."""
    scheme, _, params = header.partition(" ")
    assert scheme == "vapid", header
    parts = dict(p.split("=", 1) for p in params.split(","))
    assert parts["k"] == public_key
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(parts["k"]))
    claims = jwt.decode(parts["t"], key, algorithms=["ES256"], audience=audience)
    assert claims["sub"].startswith("mailto:")
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    return dict(claims)


async def test_web_push_is_encrypted_for_the_subscription_and_signed_with_vapid(
    app: HaloBuzzApp, client: Any, make_user: Any, serve: Callable[..., Any]
) -> None:
    service = Provider()

    async def push(request: Request) -> Response:
        body = await request.body()
        service.record(request, body)
        if request.path_params["token"] == "expired":
            return Response(status_code=410)
        return Response(status_code=201, headers={"Location": f"/messages/{len(service.requests)}"})

    base = await serve([Route("/push/{token}", push, methods=["POST"])])
    owner, fan, other = await make_user(), await make_user(), await make_user()
    browser, stale = Browser(), Browser()
    key = (await client.get(f"{API}/notifications/vapid-public-key")).json()["public_key"]
    assert len(unb64url(key)) == 65

    r = await client.post(
        f"{API}/notifications/push-subscriptions", json=browser.subscription(f"{base}/push/abc"), headers=owner.headers
    )
    assert r.status_code == 201, r.text
    again = await client.post(
        f"{API}/notifications/push-subscriptions", json=browser.subscription(f"{base}/push/abc"), headers=owner.headers
    )
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]
    r = await client.post(
        f"{API}/notifications/push-subscriptions",
        json=stale.subscription(f"{base}/push/expired"),
        headers=other.headers,
    )
    assert r.status_code == 201

    await client.post(f"{API}/users/{owner.id}/follow", headers=fan.headers)
    [request] = await service.wait_requests(1)
    assert request["path"] == "/push/abc"
    headers = request["headers"]
    assert headers["content-encoding"] == "aes128gcm"
    assert int(headers["ttl"]) > 0
    verify_vapid(headers["authorization"], public_key=key, audience=base)
    payload = browser.decrypt(request["body"])
    [stored] = await wait_notified(app, owner.id, "new_follower")
    assert payload["title"] == "New follower"
    assert payload["body"] == f"{fan.username} started following you"
    assert payload["type"] == "new_follower" and payload["notification_id"] == str(stored.id)
    sent = await wait_delivery(app, owner.id, "web_push", lambda d: d.status == "sent")
    assert sent.last_status_code == 201 and sent.provider_id == "/messages/1" and sent.attempts == 1
    records = (await client.get(f"{API}/notifications/{stored.id}/deliveries", headers=owner.headers)).json()
    assert [(d["channel"], d["status"]) for d in records] == [("web_push", "sent")]

    # 410 Gone: the subscription is removed and the delivery cancelled.
    await client.post(f"{API}/users/{other.id}/follow", headers=fan.headers)
    cancelled = await wait_delivery(app, other.id, "web_push", lambda d: d.status == "cancelled")
    assert cancelled.last_status_code == 410
    assert (await client.get(f"{API}/notifications/push-subscriptions", headers=other.headers)).json() == []

    # Unsubscribing by endpoint.
    url = f"{API}/notifications/push-subscriptions"
    r = await client.request("DELETE", url, json={"endpoint": f"{base}/push/abc"}, headers=owner.headers)
    assert r.status_code == 204
    assert (await client.get(url, headers=owner.headers)).json() == []
    r = await client.request("DELETE", url, json={"endpoint": f"{base}/push/abc"}, headers=owner.headers)
    assert_error(r, 404, "push_subscription_not_found")


async def test_push_subscription_and_device_input_is_checked(client: Any, make_user: Any) -> None:
    user = await make_user()
    good = Browser().subscription("https://push.example.net/send/abc")
    url = f"{API}/notifications/push-subscriptions"
    bad_cases = [
        ({**good, "endpoint": "ftp://push.example.net/x"}, "invalid_push_endpoint"),
        ({**good, "endpoint": "http://push.example.net/x"}, "invalid_push_endpoint"),
        ({**good, "keys": {"p256dh": "!!!", "auth": good["keys"]["auth"]}}, "invalid_push_keys"),
        (
            {**good, "keys": {"p256dh": b64url(b"\x04" + b"\x01" * 64), "auth": good["keys"]["auth"]}},
            "invalid_push_keys",
        ),
        ({**good, "keys": {"p256dh": good["keys"]["p256dh"], "auth": b64url(b"short")}}, "invalid_push_keys"),
        ({"endpoint": good["endpoint"]}, "invalid_input"),
        ({**good, "keys": {"p256dh": "", "auth": ""}}, "invalid_input"),
    ]
    for body, code in bad_cases:
        assert_error(await client.post(url, json=body, headers=user.headers), 422, code)
    assert_error(await client.post(url, json=good), 401)
    assert (await client.get(url, headers=user.headers)).json() == []
    assert (await client.post(url, json=good, headers=user.headers)).status_code == 201

    devices = f"{API}/notifications/devices"
    assert_error(await client.post(devices, json={"token": ""}, headers=user.headers), 422, "invalid_input")
    assert_error(await client.post(devices, json={"token": "t", "platform": "fax"}, headers=user.headers), 422)
    r = await client.post(devices, json={"token": "fcm-token-1", "platform": "ios"}, headers=user.headers)
    assert r.status_code == 201 and r.json()["platform"] == "ios"
    assert (await client.post(devices, json={"token": "fcm-token-1"}, headers=user.headers)).status_code == 200
    assert [d["id"] for d in (await client.get(devices, headers=user.headers)).json()] == [r.json()["id"]]
    assert_error(await client.delete(f"{devices}/{r.json()['id'].replace('-', '')[:8]}", headers=user.headers), 422)
    other = await make_user()
    assert_error(await client.delete(f"{devices}/{r.json()['id']}", headers=other.headers), 404, "device_not_found")
    assert (await client.delete(f"{devices}/{r.json()['id']}", headers=user.headers)).status_code == 204


def _service_account(token_uri: str) -> tuple[dict[str, Any], rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    account = {
        "type": "service_account",
        "project_id": "halobuzz-test",
        "private_key_id": "k1",
        "private_key": pem.decode(),
        "client_email": "push@halobuzz-test.iam.gserviceaccount.com",
        "token_uri": token_uri,
    }
    return account, key


@pytest.mark.no_relay
async def test_fcm_v1_with_oauth_token_exchange_backoff_and_unregistered_cleanup(
    app: HaloBuzzApp, app_factory: Callable[..., Any], make_user: Any, serve: Callable[..., Any]
) -> None:
    fcm = Provider(script=[json_error(503, {"error": {"code": 503, "status": "UNAVAILABLE"}}, retry_after=1)])
    tokens = Provider()
    issued = "ya29.local-access-token"
    holder: dict[str, Any] = {}

    async def token(request: Request) -> Response:
        body = await request.body()
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        tokens.record(request, body, form=form)
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        claims = jwt.decode(form["assertion"], holder["public"], algorithms=["RS256"], audience=holder["token_uri"])
        assert claims["iss"] == holder["account"]["client_email"]
        assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
        return JSONResponse({"access_token": issued, "expires_in": 3599, "token_type": "Bearer"})

    async def send(request: Request) -> Response:
        body = await request.body()
        fcm.record(request, body, json=json.loads(body))
        if request.headers.get("authorization") != f"Bearer {issued}":
            return json_error(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
        if request.path_params["project"] != "halobuzz-test":
            return json_error(404, {"error": {"code": 404, "status": "NOT_FOUND"}})
        message = json.loads(body)["message"]
        if message["token"] == "dead-token":
            return json_error(
                404,
                {
                    "error": {
                        "code": 404,
                        "message": "Requested entity was not found.",
                        "status": "NOT_FOUND",
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                "errorCode": "UNREGISTERED",
                            }
                        ],
                    }
                },
            )
        return fcm.next_response(JSONResponse({"name": f"projects/halobuzz-test/messages/{len(fcm.requests)}"}))

    base = await serve(
        [
            Route("/token", token, methods=["POST"]),
            Route("/v1/projects/{project}/messages:send", send, methods=["POST"]),
        ]
    )
    account, key = _service_account(f"{base}/token")
    holder.update(account=account, public=key.public_key(), token_uri=f"{base}/token")
    worker = await app_factory(
        jobs=jobs_settings(),
        notifications=notification_settings(fcm_service_account_json=json.dumps(account), fcm_api_base=base),
    )
    creator, fan, gone = await make_user(), await make_user(), await make_user()
    async with client_for(worker) as client:
        r = await client.post(f"{API}/notifications/devices", json={"token": "good-token"}, headers=creator.headers)
        assert r.status_code == 201
        r = await client.post(f"{API}/notifications/devices", json={"token": "dead-token"}, headers=gone.headers)
        assert r.status_code == 201
        assert (await client.get(f"{API}/notifications/preferences", headers=fan.headers)).json()["channels"][
            "mobile_push"
        ] is True

        await client.post(f"{API}/users/{creator.id}/follow", headers=fan.headers)
        sent = await wait_delivery(worker, creator.id, "mobile_push", lambda d: d.status == "sent")
        assert sent.attempts == 2 and sent.provider_id == "projects/halobuzz-test/messages/2"
        first, second = fcm.requests[0], fcm.requests[1]
        assert second["time"] - first["time"] >= 1.0  # waited for Retry-After
        message = second["json"]["message"]
        assert message["token"] == "good-token"
        assert message["notification"] == {"title": "New follower", "body": f"{fan.username} started following you"}
        assert message["data"]["type"] == "new_follower" and all(isinstance(v, str) for v in message["data"].values())
        assert len(tokens.requests) == 1  # the access token is cached

        await client.post(f"{API}/users/{gone.id}/follow", headers=fan.headers)
        cancelled = await wait_delivery(worker, gone.id, "mobile_push", lambda d: d.status == "cancelled")
        assert cancelled.last_status_code == 404
        assert (await client.get(f"{API}/notifications/devices", headers=gone.headers)).json() == []


@pytest.mark.no_relay
async def test_sms_through_twilio_api_pauses_on_429_without_stalling_email(
    app: HaloBuzzApp,
    app_factory: Callable[..., Any],
    make_user: Any,
    serve: Callable[..., Any],
    smtp_server: SmtpServer,
) -> None:
    sid, auth_token = "AC" + "1" * 32, "twilio-auth-token"
    twilio = Provider(script=[json_error(429, {"code": 20429, "message": "Too Many Requests"}, retry_after=30)])

    async def messages(request: Request) -> Response:
        body = await request.body()
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        twilio.record(request, body, form=form)
        expected = "Basic " + base64.b64encode(f"{sid}:{auth_token}".encode()).decode()
        if request.headers.get("authorization") != expected or request.path_params["sid"] != sid:
            return json_error(401, {"code": 20003, "message": "Authenticate"})
        return twilio.next_response(
            JSONResponse({"sid": "SM" + "a" * 32, "status": "queued", "to": form["To"]}, status_code=201)
        )

    base = await serve([Route("/2010-04-01/Accounts/{sid}/Messages.json", messages, methods=["POST"])])
    worker = await app_factory(
        jobs=jobs_settings(),
        mail={"smtp_host": "127.0.0.1", "smtp_port": smtp_server.port},
        notifications=notification_settings(
            twilio_account_sid=sid, twilio_auth_token=auth_token, twilio_from="+15005550006", twilio_api_base=base
        ),
    )
    texter = await make_user(phone="+9779800000001")
    buyer = await make_user(email_verified_at=utcnow())
    fan = await make_user()
    async with client_for(worker) as client:
        r = await client.patch(
            f"{API}/notifications/preferences", json={"types": {"new_follower": {"sms": True}}}, headers=texter.headers
        )
        assert r.status_code == 200 and r.json()["types"]["new_follower"]["sms"] is True
        await client.post(f"{API}/users/{texter.id}/follow", headers=fan.headers)
        limited = await wait_delivery(worker, texter.id, "sms", lambda d: d.last_status_code == 429)
        assert limited.status == "pending" and limited.attempts == 1
        assert limited.next_attempt_at >= utcnow() + timedelta(seconds=25)  # Retry-After: 30
        dispatcher = worker.runtime.extras["notification-dispatcher"]
        assert dispatcher.paused_until["sms"] > time.monotonic() + 20

        # The paused SMS channel holds up no other channel: a payment mail goes out meanwhile.
        await emit(
            worker,
            "payment.completed",
            {
                "payment_intent_id": "pi-1",
                "user_id": str(buyer.id),
                "provider": "sandbox",
                "currency": "NPR",
                "amount": 12345,
                "coins": 500,
            },
        )
        mail = await smtp_server.next_message()
        assert mail["Subject"] == "HaloBuzz: Payment received"
        assert len(twilio.requests) == 1

        # Once the pause is over the SMS goes out, with the documented form fields.
        dispatcher.paused_until.clear()
        async with worker.runtime.db.session() as s:
            await s.execute(
                update(NotificationDelivery)
                .where(NotificationDelivery.id == limited.id)
                .values(next_attempt_at=utcnow())
            )
        wake_all()  # what the end of the pause does
        sent = await wait_delivery(worker, texter.id, "sms", lambda d: d.status == "sent")
        assert sent.attempts == 2 and sent.provider_id == "SM" + "a" * 32
        form = twilio.requests[-1]["form"]
        assert form == {
            "To": "+9779800000001",
            "From": "+15005550006",
            "Body": f"New follower: {fan.username} started following you",
        }
