"""What every delivery channel implements, and how provider answers become retry decisions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx


@dataclass(frozen=True, slots=True)
class Recipient:
    id: uuid.UUID
    username: str
    display_name: str
    email: str
    email_verified: bool
    phone: str | None
    language: str
    timezone: str


@dataclass(frozen=True, slots=True)
class Target:
    """A registered push target: a web push subscription or a mobile device."""

    id: uuid.UUID
    endpoint: str = ""  # web push
    p256dh: str = ""
    auth: str = ""
    token: str = ""  # FCM registration token


@dataclass(slots=True)
class Outgoing:
    """One message to send: rendered texts plus the notification it came from."""

    delivery_id: uuid.UUID
    recipient: Recipient
    type: str
    title: str
    body: str
    data: dict[str, Any]
    url: str
    notification_id: uuid.UUID | None = None
    target: Target | None = None
    # A mail's full text (email channel), already rendered in the recipient's language.
    subject: str = ""
    text: str = ""


@dataclass(slots=True)
class Result:
    """The outcome of one attempt.

    ``ok``: delivered. Otherwise ``retry`` says whether trying again may help (429, 5xx, network);
    ``retry_after`` is the provider's Retry-After in seconds; ``target_gone`` means the
    subscription or device no longer exists at the provider (it is removed, the delivery cancelled).
    """

    ok: bool
    status_code: int | None = None
    provider_id: str | None = None
    retry: bool = False
    retry_after: float | None = None
    target_gone: bool = False
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    name: str

    def available(self) -> bool:
        """Whether the channel is configured to send at all."""
        ...

    async def send(self, message: Outgoing) -> Result: ...

    async def close(self) -> None: ...


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """A Retry-After header (delay seconds or an HTTP date) in seconds; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - (now or datetime.now(UTC))).total_seconds())


def http_result(response: httpx.Response, *, provider_id: str | None = None) -> Result:
    """The usual HTTP reading: 2xx delivered; 429 and 5xx retried (Retry-After honoured); others refused."""
    code = response.status_code
    if 200 <= code < 300:
        return Result(ok=True, status_code=code, provider_id=provider_id)
    retry = code == 429 or code >= 500
    return Result(
        ok=False,
        status_code=code,
        retry=retry,
        retry_after=retry_after_seconds(response.headers.get("retry-after")) if retry else None,
        error=f"HTTP {code}: {response.text[:300]}",
    )


def network_result(exc: Exception) -> Result:
    """A timeout or connection failure: try again later."""
    return Result(ok=False, retry=True, error=f"{type(exc).__name__}: {exc}"[:1000])
