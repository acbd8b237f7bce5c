"""Sign-in sessions and tokens: issuing an access/refresh pair, checking an access token.

An access JWT names its sign-in session (``sid``); every check loads the user and that session
in one query, so logout, password change, suspension and bans take effect at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import AuthSession, RefreshToken, User, UserStatus
from halobuzz.config import AuthSettings
from halobuzz.core.clock import utcnow
from halobuzz.core.errors import Unauthorized
from halobuzz.core.security import JWTCodec, TokenError, new_token, token_hash


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


def is_signed_in_allowed(user: User, now: datetime | None = None) -> bool:
    """Active users, and suspended users whose suspension has ended."""
    if user.status == UserStatus.ACTIVE:
        return True
    if user.status == UserStatus.SUSPENDED and user.suspended_until is not None:
        return user.suspended_until <= (now or utcnow())
    return False


def issue_access(jwt: JWTCodec, user: User, session_id: uuid.UUID) -> tuple[str, int]:
    token, _exp = jwt.issue_access(user_id=user.id, session_id=session_id, roles=user.roles)
    return token, int(jwt.ttl.total_seconds())


async def start_session(
    *, session: AsyncSession, jwt: JWTCodec, settings: AuthSettings, user: User, device: str, ip: str | None
) -> TokenPair:
    """Open a new sign-in session for ``user`` and return its first token pair."""
    now = utcnow()
    grant = AuthSession(
        user_id=user.id,
        device=device[:255],
        ip=ip,
        last_seen_at=now,
        expires_at=now + timedelta(days=settings.refresh_token_ttl_days),
    )
    session.add(grant)
    await session.flush()
    refresh = new_token()
    session.add(RefreshToken(session_id=grant.id, token_hash=token_hash(refresh)))
    await session.flush()
    access, ttl = issue_access(jwt, user, grant.id)
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=ttl, session_id=grant.id)


async def authenticate_access_token(*, session: AsyncSession, jwt: JWTCodec, token: str) -> User:
    """The user an access token belongs to; ``Unauthorized`` when the token or its session is not valid."""
    try:
        claims = jwt.decode_access(token)
    except TokenError as exc:
        raise Unauthorized(
            "access token is invalid or expired; refresh it or sign in again", code="invalid_token"
        ) from exc
    row = (
        await session.execute(
            select(User, AuthSession)
            .join(AuthSession, AuthSession.user_id == User.id)
            .where(User.id == claims.user_id, AuthSession.id == claims.session_id)
        )
    ).first()
    if row is None:
        raise Unauthorized("access token is invalid or expired; refresh it or sign in again", code="invalid_token")
    user, grant = row
    now = utcnow()
    if grant.revoked_at is not None or grant.expires_at <= now:
        raise Unauthorized("this sign-in has ended; sign in again", code="session_revoked")
    if not is_signed_in_allowed(user, now):
        raise Unauthorized(f"account is {user.status}", code=f"account_{user.status}")
    return user
