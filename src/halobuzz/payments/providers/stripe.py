"""Stripe Checkout: sessions created over the REST API; webhooks verified by ``Stripe-Signature``."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import httpx

from halobuzz.config import PaymentsSettings
from halobuzz.core.errors import ServiceUnavailable
from halobuzz.payments.providers.base import Checkout, IntentInfo, InvalidSignature, call, return_url


class StripeProvider:
    name = "stripe"
    currencies: tuple[str, ...] | None = None

    def __init__(self, settings: PaymentsSettings) -> None:
        self.settings = settings
        assert settings.stripe_secret_key is not None
        self.secret = settings.stripe_secret_key.get_secret_value()

    async def start(self, intent: IntentInfo) -> Checkout:
        s = self.settings
        form = {
            "mode": "payment",
            "client_reference_id": str(intent.id),
            "metadata[intent_id]": str(intent.id),
            "success_url": return_url(s, f"/wallet/return/stripe?payment_intent={intent.id}"),
            "cancel_url": return_url(s, f"/wallet/return/stripe?payment_intent={intent.id}&status=canceled"),
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": intent.currency.lower(),
            "line_items[0][price_data][unit_amount]": str(intent.amount),
            "line_items[0][price_data][product_data][name]": f"{intent.coins} coins ({intent.package_name})",
        }
        response = await call(
            s,
            "POST",
            s.stripe_api_base.rstrip("/") + "/v1/checkout/sessions",
            provider=self.name,
            data=form,
            headers={"Authorization": f"Bearer {self.secret}", "Idempotency-Key": f"intent-{intent.id}"},
        )
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code != 200 or not body.get("url") or not body.get("id"):
            raise ServiceUnavailable(
                "Stripe refused to open a checkout", code="provider_error", details={"status": response.status_code}
            )
        return Checkout({"type": "redirect", "url": body["url"]}, str(body["id"]))

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    async def retrieve_session(self, session_id: str) -> dict[str, Any]:
        """A Checkout Session as Stripe has it now (``GET /v1/checkout/sessions/{id}``)."""
        s = self.settings
        response = await call(
            s,
            "GET",
            f"{s.stripe_api_base.rstrip('/')}/v1/checkout/sessions/{session_id}",
            provider=self.name,
            headers=self._auth(),
        )
        body = _json(response)
        if response.status_code != 200 or body.get("id") != session_id:
            raise ServiceUnavailable(
                "Stripe did not return the checkout session",
                code="provider_error",
                details={"status": response.status_code},
            )
        return body

    async def refund(self, *, payment_intent: str, idempotency_key: str, reason: str | None = None) -> dict[str, Any]:
        """Refund a captured payment in full (``POST /v1/refunds``), idempotent per key."""
        s = self.settings
        form = {"payment_intent": payment_intent}
        if reason in ("duplicate", "fraudulent", "requested_by_customer"):
            form["reason"] = reason
        response = await call(
            s,
            "POST",
            f"{s.stripe_api_base.rstrip('/')}/v1/refunds",
            provider=self.name,
            data=form,
            headers={**self._auth(), "Idempotency-Key": idempotency_key},
        )
        body = _json(response)
        if response.status_code != 200 or body.get("status") not in ("succeeded", "pending"):
            raise ServiceUnavailable(
                "Stripe refused the refund",
                code="provider_error",
                details={"status": response.status_code, "error": body.get("error")},
            )
        return body


def _json(response: httpx.Response) -> dict[str, Any]:
    if not response.headers.get("content-type", "").startswith("application/json"):
        return {}
    body = response.json()
    return body if isinstance(body, dict) else {}


def verify_signature(
    *, payload: bytes, header: str | None, secret: str, tolerance: int, now: float | None = None
) -> None:
    """Check a ``Stripe-Signature`` header (``t=…,v1=…``): HMAC-SHA256 of ``{t}.{payload}`` against any
    v1 value, in constant time, and a timestamp within ``tolerance`` seconds."""
    if not header:
        raise InvalidSignature("missing Stripe-Signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                timestamp = None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidSignature("malformed Stripe-Signature header")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, sig) for sig in signatures):
        raise InvalidSignature("Stripe signature does not match")
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        raise InvalidSignature("Stripe signature timestamp is outside the tolerance", code="stale_signature")
