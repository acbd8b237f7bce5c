"""Khalti KPG-2: initiate returns a payment URL; the unsigned return callback is trusted only
after the lookup API says ``Completed`` for the right amount."""

from __future__ import annotations

from typing import Any

from halobuzz.config import PaymentsSettings
from halobuzz.core.errors import InvalidInput, ServiceUnavailable
from halobuzz.payments.providers.base import Checkout, IntentInfo, call, return_url

MIN_AMOUNT_PAISA = 1000


class KhaltiProvider:
    name = "khalti"
    currencies: tuple[str, ...] | None = ("NPR",)

    def __init__(self, settings: PaymentsSettings) -> None:
        self.settings = settings
        assert settings.khalti_secret_key is not None
        self.headers = {"Authorization": f"Key {settings.khalti_secret_key.get_secret_value()}"}

    def _url(self, path: str) -> str:
        return self.settings.khalti_api_base.rstrip("/") + path

    async def start(self, intent: IntentInfo) -> Checkout:
        if intent.amount < MIN_AMOUNT_PAISA:
            raise InvalidInput("Khalti takes payments of NPR 10 or more", code="amount_too_small")
        s = self.settings
        response = await call(
            s,
            "POST",
            self._url("/api/v2/epayment/initiate/"),
            provider=self.name,
            headers=self.headers,
            json={
                # The buyer's browser comes back to the web app, which confirms through the callback route.
                "return_url": return_url(s, "/wallet/return/khalti"),
                "website_url": return_url(s, "/"),
                "amount": intent.amount,
                "purchase_order_id": str(intent.id),
                "purchase_order_name": f"{intent.coins} coins ({intent.package_name})",
            },
        )
        body = _json(response)
        if response.status_code != 200 or not body.get("pidx") or not body.get("payment_url"):
            raise ServiceUnavailable(
                "Khalti refused to start the payment", code="provider_error", details={"status": response.status_code}
            )
        return Checkout({"type": "redirect", "url": body["payment_url"]}, str(body["pidx"]))

    async def lookup(self, pidx: str) -> dict[str, Any]:
        """Khalti's own record of a payment (the only thing trusted)."""
        response = await call(
            self.settings,
            "POST",
            self._url("/api/v2/epayment/lookup/"),
            provider=self.name,
            headers=self.headers,
            json={"pidx": pidx},
        )
        body = _json(response)
        if response.status_code == 404 or (response.status_code == 400 and body):
            return body
        if response.status_code != 200:
            raise ServiceUnavailable(
                "Khalti's lookup failed", code="provider_error", details={"status": response.status_code}
            )
        return body


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
