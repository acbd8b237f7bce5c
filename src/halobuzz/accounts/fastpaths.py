"""Fast path for ``GET /api/v1/users/{id_or_username}``, the hottest authenticated read.

It answers the plain success case with one prepared statement on PostgreSQL (the profile and the
caller's relationship to it), checks the access token against the per-process session cache
(`core.sessioncache`), and writes the same bytes as the route's response model (a test compares
them). Anything else — "me", an unknown user, a token that is not valid,
SQLite — falls through to the FastAPI route (`accounts.users_api.get_user`).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.types import Scope

from halobuzz.accounts.models import UserStatus
from halobuzz.accounts.profile import HIDDEN_STATUSES, ME
from halobuzz.core.ids import parse_uuid
from halobuzz.core.runtime import Runtime
from halobuzz.core.security import AccessClaims

TEMPLATE = "/api/v1/users/{id_or_username}"

_COLUMNS = """
    u.id, u.username, u.display_name, u.bio, u.avatar_key, u.country, u.language, u.roles,
    u.follower_count, u.following_count, u.created_at,
    EXISTS (SELECT 1 FROM follow f WHERE f.follower_id = $2 AND f.followee_id = u.id),
    EXISTS (SELECT 1 FROM follow f WHERE f.follower_id = u.id AND f.followee_id = $2),
    EXISTS (SELECT 1 FROM block b WHERE b.blocker_id = $2 AND b.blocked_id = u.id)
"""
_HIDDEN = ", ".join(f"'{s}'" for s in HIDDEN_STATUSES)
PROFILE_BY_ID = f'SELECT {_COLUMNS} FROM "user" u WHERE u.id = $1 AND u.status NOT IN ({_HIDDEN})'  # noqa: S608 - constants only
PROFILE_BY_NAME = f'SELECT {_COLUMNS} FROM "user" u WHERE u.username_key = $1 AND u.status NOT IN ({_HIDDEN})'  # noqa: S608

# Mirrors accounts.auth.authenticate_access_token: the session is open and unexpired, and the
# user may be signed in (active, or a suspension that has ended).
SESSION_VALID = f"""
SELECT extract(epoch FROM s.expires_at)
FROM auth_session s JOIN "user" u ON u.id = s.user_id
WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > now()
  AND (u.status = '{UserStatus.ACTIVE.value}'
       OR (u.status = '{UserStatus.SUSPENDED.value}' AND u.suspended_until <= now()))
"""  # noqa: S608 - constants only


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

    async def viewer_of(scope: Scope, conn: Any) -> AccessClaims | bool | None:
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
            expires = await conn.fetchval(SESSION_VALID, claims.session_id, claims.user_id)
            if expires is None:
                return False
            sessions.remember(claims, generation, float(expires))
        return claims

    async def handler(scope: Scope, params: dict[str, str]) -> bytes | None:
        ref = params["id_or_username"]
        if ref == ME or len(ref) > 64:
            return None
        pool = await db.hot_pool()
        async with pool.acquire() as conn:
            viewer = await viewer_of(scope, conn)
            if viewer is False:
                return None  # the FastAPI route answers 401 in the error shape
            user_id = parse_uuid(ref)
            row = await conn.fetchrow(
                PROFILE_BY_ID if user_id is not None else PROFILE_BY_NAME,
                user_id if user_id is not None else ref.strip().lower(),
                viewer.user_id if isinstance(viewer, AccessClaims) else uuid.UUID(int=0),
            )
        if row is None:
            return None
        if isinstance(viewer, AccessClaims):
            scope.setdefault("state", {})["user_id"] = str(viewer.user_id)
        signed_in = isinstance(viewer, AccessClaims)
        roles = row[7]
        # Field for field what ProfileOut serialises to (tests compare the bytes with the route's).
        return orjson.dumps(
            {
                "id": str(row[0]),
                "username": row[1],
                "display_name": row[2],
                "bio": row[3],
                "avatar_url": storage.url(row[4]) if row[4] else None,
                "country": row[5],
                "language": row[6],
                "roles": orjson.loads(roles) if isinstance(roles, str) else list(roles),
                "follower_count": row[8],
                "following_count": row[9],
                "created_at": row[10],
                "is_following": row[11] if signed_in else None,
                "is_followed_by": row[12] if signed_in else None,
                "is_blocked": row[13] if signed_in else None,
            },
            option=orjson.OPT_UTC_Z,
        )

    return handler


def register(runtime: Runtime) -> None:
    """Serve the profile read from the fast path when the database is PostgreSQL."""
    if not runtime.db.is_sqlite:
        runtime.fast_paths.add(TEMPLATE, make_handler(runtime))


__all__ = ["TEMPLATE", "register"]
