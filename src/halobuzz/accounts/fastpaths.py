"""Fast path for ``GET /api/v1/users/{id_or_username}``, the hottest authenticated read.

It answers the plain success case on PostgreSQL, checks the access token against the per-process
session cache (`core.sessioncache`), and writes the same bytes as the route's response model (a
test compares them). Anything else — "me", an unknown user, a token that is not valid, SQLite —
falls through to the FastAPI route (`accounts.users_api.get_user`).

Reads that arrive in the same event-loop turn are coalesced into one statement (the profiles and
each caller's relationship to them, by ``unnest … WITH ORDINALITY``): under load a single round
trip serves many requests, which is most of what a database read costs here.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from starlette.types import Scope

from halobuzz.accounts.models import UserStatus
from halobuzz.accounts.profile import HIDDEN_STATUSES, ME
from halobuzz.core.db import Database
from halobuzz.core.ids import parse_uuid
from halobuzz.core.runtime import Runtime
from halobuzz.core.security import AccessClaims

TEMPLATE = "/api/v1/users/{id_or_username}"
NOBODY = uuid.UUID(int=0)

_HIDDEN = ", ".join(f"'{s}'" for s in HIDDEN_STATUSES)
_COLUMNS = """
    q.i, u.id, u.username, u.display_name, u.bio, u.avatar_key, u.country, u.language, u.roles,
    u.follower_count, u.following_count, u.created_at,
    EXISTS (SELECT 1 FROM follow f WHERE f.follower_id = q.viewer AND f.followee_id = u.id),
    EXISTS (SELECT 1 FROM follow f WHERE f.follower_id = u.id AND f.followee_id = q.viewer),
    EXISTS (SELECT 1 FROM block b WHERE b.blocker_id = q.viewer AND b.blocked_id = u.id)
"""
_REFS = "unnest($1::uuid[], $2::text[], $3::uuid[]) WITH ORDINALITY AS q(uid, uname, viewer, i)"
# One row per found reference, tagged with its position: by id, or by (lower-cased) username.
PROFILES = f"""
SELECT {_COLUMNS} FROM {_REFS} JOIN "user" u ON u.id = q.uid WHERE u.status NOT IN ({_HIDDEN})
UNION ALL
SELECT {_COLUMNS} FROM {_REFS} JOIN "user" u ON u.username_key = q.uname WHERE u.status NOT IN ({_HIDDEN})
"""  # noqa: S608 - constants only

# Mirrors accounts.auth.authenticate_access_token: the session is open and unexpired, and the
# user may be signed in (active, or a suspension that has ended).
SESSION_VALID = f"""
SELECT extract(epoch FROM s.expires_at)
FROM auth_session s JOIN "user" u ON u.id = s.user_id
WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > now()
  AND (u.status = '{UserStatus.ACTIVE.value}'
       OR (u.status = '{UserStatus.SUSPENDED.value}' AND u.suspended_until <= now()))
"""  # noqa: S608 - constants only


class ProfileBatcher:
    """Collects the profile reads of one event-loop turn and runs them as one statement."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[tuple[uuid.UUID | None, str | None, uuid.UUID, asyncio.Future[Any]]] = []

    def load(self, user_id: uuid.UUID | None, username: str | None, viewer: uuid.UUID) -> asyncio.Future[Any]:
        """The profile row of ``user_id`` (or ``username``) as ``viewer`` sees it; None when not found."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((user_id, username, viewer, future))
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._run(batch))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _run(self, batch: list[tuple[uuid.UUID | None, str | None, uuid.UUID, asyncio.Future[Any]]]) -> None:
        try:
            pool = await self.db.hot_pool()
            rows = await pool.fetch(PROFILES, [b[0] for b in batch], [b[1] for b in batch], [b[2] for b in batch])
        except Exception as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        found = {row[0]: row for row in rows}
        for position, (*_, future) in enumerate(batch, start=1):
            if not future.done():
                future.set_result(found.get(position))


def _bearer(scope: Scope) -> str | bool | None:
    """The bearer token; None when there is no Authorization header; False when it is malformed."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else False
    return None


def make_handler(runtime: Runtime) -> Any:
    sessions = runtime.sessions
    storage = runtime.storage
    db = runtime.db
    batcher = ProfileBatcher(db)

    async def viewer_of(scope: Scope) -> AccessClaims | bool | None:
        token = _bearer(scope)
        if token is None:
            return None
        if token is False:
            return False
        claims = sessions.claims(str(token))
        if claims is None:
            return False
        if not sessions.session_valid(claims):
            generation = sessions.generation
            pool = await db.hot_pool()
            expires = await pool.fetchval(SESSION_VALID, claims.session_id, claims.user_id)
            if expires is None:
                return False
            sessions.remember(claims, generation, float(expires))
        return claims

    async def handler(scope: Scope, params: dict[str, str]) -> bytes | None:
        ref = params["id_or_username"]
        if ref == ME or len(ref) > 64:
            return None
        viewer = await viewer_of(scope)
        if viewer is False:
            return None  # the FastAPI route answers 401 in the error shape
        signed_in = isinstance(viewer, AccessClaims)
        user_id = parse_uuid(ref)
        row = await batcher.load(
            user_id,
            None if user_id is not None else ref.strip().lower(),
            viewer.user_id if isinstance(viewer, AccessClaims) else NOBODY,
        )
        if row is None:
            return None
        if isinstance(viewer, AccessClaims):
            scope.setdefault("state", {})["user_id"] = str(viewer.user_id)
        roles = row[8]
        # Field for field what ProfileOut serialises to (tests compare the bytes with the route's).
        return orjson.dumps(
            {
                "id": str(row[1]),
                "username": row[2],
                "display_name": row[3],
                "bio": row[4],
                "avatar_url": storage.url(row[5]) if row[5] else None,
                "country": row[6],
                "language": row[7],
                "roles": orjson.loads(roles) if isinstance(roles, str) else list(roles),
                "follower_count": row[9],
                "following_count": row[10],
                "created_at": row[11],
                "is_following": row[12] if signed_in else None,
                "is_followed_by": row[13] if signed_in else None,
                "is_blocked": row[14] if signed_in else None,
            },
            option=orjson.OPT_UTC_Z,
        )

    return handler


def register(runtime: Runtime) -> None:
    """Serve the profile read from the fast path when the database is PostgreSQL."""
    if not runtime.db.is_sqlite:
        runtime.fast_paths.add(TEMPLATE, make_handler(runtime))


__all__ = ["TEMPLATE", "ProfileBatcher", "register"]
