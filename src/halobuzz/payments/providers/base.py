"""The provider interface and the HTTP helper every provider uses (timeouts, retries)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from halobuzz.config import PaymentsSettings
from halobuzz.core.errors import DomainError, ServiceUnavailable


class InvalidSignature(DomainError):
    """A webhook or callback whose signature does not verify (or is too old)."""

    status_code = 400
    code = "invalid_signature"


@dataclass(frozen=True, slots=True)
class Checkout:
    """What the payer does next, and the provider's id for the payment (if it gave one)."""

    next_action: dict[str, Any]
    reference: str | None


@dataclass(frozen=True, slots=True)
class IntentInfo:
    id: uuid.UUID
    amount: int
    currency: str
    coins: int
    package_name: str


class Provider(Protocol):
    name: str
    currencies: tuple[str, ...] | None

    async def start(self, intent: IntentInfo) -> Checkout:
        """Open a checkout for the intent at the provider."""


def return_url(settings: PaymentsSettings, path: str) -> str:
    return settings.public_base_url.rstrip("/") + path


async def call(
    settings: PaymentsSettings,
    method: str,
    url: str,
    *,
    provider: str,
    **kwargs: Any,
) -> httpx.Response:
    """One provider HTTP call with a timeout, retried on connection errors and 5xx responses
    (callers send idempotency keys where the provider supports them)."""
    attempts = settings.http_retries + 1
    last: Exception | None = None
    async with httpx.AsyncClient(timeout=settings.http_timeout_seconds) as client:
        for attempt in range(attempts):
            try:
                response = await client.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                last = exc
            else:
                if response.status_code < 500:
                    return response
                last = RuntimeError(f"HTTP {response.status_code}")
            if attempt + 1 < attempts:
                await asyncio.sleep(0.2 * (attempt + 1))
    raise ServiceUnavailable(
        f"the {provider} payment service did not answer; try again shortly",
        code="provider_unavailable",
        details={"provider": provider, "reason": str(last)},
    )
