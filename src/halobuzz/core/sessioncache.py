"""A per-process cache of verified access tokens and sign-in sessions, for hot authenticated reads.

Decoding a JWT and loading its session costs more than the hottest reads themselves, so fast
paths remember (a) the claims of tokens already verified and (b) sessions found valid in the
database. Every revocation (logout, refresh reuse, password change, suspension, ban) goes through
``accounts.auth.revoke_sessions``, which calls ``invalidate_user`` after commit — here and, with
Redis, on every instance (``publish``). Entries also expire after ``ttl`` seconds, bounding staleness should an
invalidation broadcast be lost. ``listeners`` are told of every invalidation that reaches this
instance (the real-time gateway re-checks the user's open sockets).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog

from halobuzz.core.security import AccessClaims, JWTCodec, TokenError

log = structlog.get_logger(__name__)

USER_TAG = "auth-user:"


@dataclass(slots=True)
class _Session:
    user_id: uuid.UUID
    valid_until: float


class SessionCache:
    def __init__(self, jwt: JWTCodec, ttl_seconds: float = 30.0, max_entries: int = 50_000) -> None:
        self.jwt = jwt
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._claims: dict[str, AccessClaims] = {}
        self._sessions: dict[uuid.UUID, _Session] = {}
        self.generation = 0
        self.publish: Callable[[str], Coroutine[Any, Any, None]] | None = None
        # Called with the user id on every invalidation applied here (local or from another instance).
        self.listeners: list[Callable[[uuid.UUID], None]] = []

    def claims(self, token: str) -> AccessClaims | None:
        """The verified claims of ``token``, or None when it is not a valid access token now."""
        claims = self._claims.get(token)
        if claims is None:
            try:
                claims = self.jwt.decode_access(token)
            except TokenError:
                return None
            if len(self._claims) >= self.max_entries:
                self._claims.clear()
            self._claims[token] = claims
        if claims.expires_at.timestamp() <= time.time():
            self._claims.pop(token, None)
            return None
        return claims

    def session_valid(self, claims: AccessClaims) -> bool:
        entry = self._sessions.get(claims.session_id)
        return entry is not None and entry.user_id == claims.user_id and entry.valid_until > time.monotonic()

    def remember(self, claims: AccessClaims, generation: int, expires_at: float) -> None:
        """Record a session just found valid, unless an invalidation happened since ``generation``."""
        if generation != self.generation:
            return
        if len(self._sessions) >= self.max_entries:
            self._sessions.clear()
        valid_for = min(self.ttl, expires_at - time.time())
        self._sessions[claims.session_id] = _Session(claims.user_id, time.monotonic() + valid_for)

    def invalidate_user(self, user_id: uuid.UUID | str) -> None:
        """Forget every session of ``user_id`` here and on the other instances."""
        self.invalidate_user_local(user_id)
        if self.publish is not None:
            asyncio.get_running_loop().create_task(self.publish(USER_TAG + str(user_id)))

    def invalidate_user_local(self, user_id: uuid.UUID | str) -> None:
        uid = uuid.UUID(str(user_id))
        self.generation += 1
        for sid in [sid for sid, entry in self._sessions.items() if entry.user_id == uid]:
            del self._sessions[sid]
        for listener in list(self.listeners):
            try:
                listener(uid)
            except Exception:
                log.exception("session_invalidation_listener_failed", user_id=str(uid))

    def on_tag(self, tag: str) -> None:
        """Apply an invalidation broadcast by another instance."""
        if tag.startswith(USER_TAG):
            self.invalidate_user_local(tag.removeprefix(USER_TAG))
