"""Password-guessing defences: per-account and per-IP failure limits with growing delays.

State lives in the shared store (``runtime.kv``: Redis when configured), so the limits hold across
every API instance. Three rules, checked before a password is verified:

* After ``login_delay_after_failures`` failures, each further attempt on the account must wait
  ``2 ** (failures - threshold)`` seconds after the previous failure (capped at
  ``login_delay_cap_seconds``). Early attempts are refused with 429 and ``Retry-After``; nothing
  sleeps on the server.
* An account takes at most ``max_failed_logins_per_hour`` attempts per clock hour. The counter is
  taken *before* the password is checked (one atomic increment), so a burst of parallel guesses
  cannot overshoot it; a successful sign-in resets it.
* An IP takes at most ``max_failed_logins_per_ip_per_hour`` failures per clock hour, whatever the
  accounts tried (a successful sign-in does not reset it: others may share the address).

An existing account is keyed by its id (so its username and email share one budget); a login string
that names no account is keyed by that string, so both behave alike and throttling reveals nothing
about which accounts exist. Keys hold hashes, never the login strings themselves.

When the store cannot be reached, sign-in keeps working without these limits (a warning is
logged), like the request rate limits: an outage of Redis must not lock every user out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from redis.exceptions import RedisError

from halobuzz.config import AuthSettings
from halobuzz.core.errors import TooManyRequests
from halobuzz.core.kv import Store
from halobuzz.core.security import token_hash

log = structlog.get_logger(__name__)

HOUR = 3600
T = TypeVar("T")
_last_store_warning = -math.inf


async def lenient(op: Awaitable[T], default: T) -> T:
    """The result of a store operation, or ``default`` (and a warning) when the store is unreachable."""
    global _last_store_warning
    try:
        return await op
    except (RedisError, OSError) as exc:
        now = time.monotonic()
        if now - _last_store_warning >= 10.0:  # once per 10 s, not once per request
            _last_store_warning = now
            log.warning("auth_store_unavailable", error=f"{type(exc).__name__}: {exc}")
        return default


def account_key(*, user_id: object | None, login: str) -> str:
    """The throttling key of a sign-in attempt: the account when it exists, else the login string."""
    if user_id is not None:
        return f"u:{user_id}"
    return "l:" + token_hash(login.strip().lower())[:32]


def _window(now: float) -> tuple[int, int]:
    """The current clock-hour window and the seconds left in it."""
    window = int(now // HOUR)
    return window, max(1, math.ceil((window + 1) * HOUR - now))


@dataclass(frozen=True, slots=True)
class Attempt:
    """An admitted attempt: its place in this hour's count for the account."""

    account: str
    ip: str
    number: int


@dataclass(frozen=True, slots=True)
class LoginThrottle:
    kv: Store
    settings: AuthSettings

    def _keys(self, account: str, ip: str, now: float) -> tuple[str, str, str]:
        window, _ = _window(now)
        return (
            f"login:acct:{account}:{window}",
            f"login:ip:{token_hash(ip)[:32]}:{window}",
            f"login:wait:{account}",
        )

    async def admit(self, *, account: str, ip: str) -> Attempt:
        """Count an attempt on ``account`` from ``ip``, or refuse it with 429 and ``Retry-After``."""
        now = time.time()
        acct_key, ip_key, wait_key = self._keys(account, ip, now)
        _, window_left = _window(now)
        if await lenient(self.kv.get_int(ip_key), 0) >= self.settings.max_failed_logins_per_ip_per_hour:
            raise _refused(window_left, "too many failed sign-ins from this network")
        until = await lenient(self.kv.get(wait_key), None)
        if until is not None and float(until) > now:
            raise _refused(math.ceil(float(until) - now), "too many failed sign-ins for this account")
        number = await lenient(self.kv.incr(acct_key, HOUR + 60), 0)
        if number > self.settings.max_failed_logins_per_hour:
            raise _refused(window_left, "too many failed sign-ins for this account")
        return Attempt(account=account, ip=ip, number=number)

    async def failed(self, attempt: Attempt) -> None:
        """Record a failed attempt: the IP's count grows, and the account may have to wait."""
        now = time.time()
        _, ip_key, wait_key = self._keys(attempt.account, attempt.ip, now)
        await lenient(self.kv.incr(ip_key, HOUR + 60), 0)
        excess = attempt.number - self.settings.login_delay_after_failures
        if excess >= 0:
            delay = min(self.settings.login_delay_cap_seconds, float(2 ** min(excess, 30)))
            await lenient(self.kv.set(wait_key, repr(now + delay), math.ceil(delay) + 1), None)

    async def succeeded(self, attempt: Attempt) -> None:
        """A successful sign-in clears the account's count and delay."""
        acct_key, _, wait_key = self._keys(attempt.account, attempt.ip, time.time())
        await lenient(self.kv.delete(acct_key), None)
        await lenient(self.kv.delete(wait_key), None)


def _refused(retry_after: int, message: str) -> TooManyRequests:
    retry_after = max(1, retry_after)
    return TooManyRequests(
        f"{message}; try again in {retry_after} seconds",
        code="too_many_login_attempts",
        details={"retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )
