"""The sandbox provider: a local checkout page whose Pay button completes the payment."""

from __future__ import annotations

from halobuzz.payments.providers.base import Checkout, IntentInfo


class SandboxProvider:
    name = "sandbox"
    currencies: tuple[str, ...] | None = None

    async def start(self, intent: IntentInfo) -> Checkout:
        url = f"/api/v1/payments/sandbox/{intent.id}/checkout"
        return Checkout({"type": "redirect", "url": url}, f"sandbox_{intent.id.hex}")
