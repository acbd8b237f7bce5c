"""Sign-in sessions and tokens: issuing an access/refresh pair, checking an access token,
rotating refresh tokens, ending sessions.

An access JWT names its sign-in session (``sid``); every check loads the user and that session
in one query, so logout, password change, suspension and bans take effect at once.

Refresh tokens rotate: each works once and is exchanged for a new pair. The exchange marks the
token used with one conditional UPDATE (``… WHERE token_hash = ? AND used_at IS NULL``), so of two
racing refreshes exactly one wins. Presenting a token that was already used means it leaked (or a
client raced itself): the whole session — every token of the family — is revoked, in a transaction
of its own so that the revocation is committed although the request answers 401. A session lives
at most ``refresh_token_ttl_days`` from sign-in; refreshing does not extend it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import AuthSession, RefreshToken, User, UserStatus
from halobuzz.config import AuthSettings
from halobuzz.core import audit
from halobuzz.core.clock import utcnow
from halobuzz.core.db import Database, after_commit, after_transaction
from halobuzz.core.errors import Unauthorized
from halobuzz.core.security import AccessClaims, JWTCodec, TokenError, new_token, token_hash
from halobuzz.core.sessioncache import SessionCache


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


class HasStatus(Protocol):
    """What sign-in permission looks at: a user, or a row with the same two columns."""

    @property
    def status(self) -> str: ...

    @property
    def suspended_until(self) -> datetime | None: ...


def is_signed_in_allowed(user: HasStatus, now: datetime | None = None) -> bool:
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
        created_at=now,
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
    _, user, _ = await _check_access_token(session=session, jwt=jwt, token=token)
    return user


async def authenticate_cached(*, db: Database, sessions: SessionCache, jwt: JWTCodec, token: str) -> AccessClaims:
    """The claims of a valid access token, its session checked in the per-process session cache
    first (``core.sessioncache``: dropped on every revocation, here and on other instances, and
    after its TTL); on a miss ``authenticate_access_token``'s check, with its errors, in a short
    read-only session, and the session remembered."""
    claims = sessions.claims(token)
    if claims is not None and sessions.session_valid(claims):
        return claims
    generation = sessions.generation
    async with db.session(write=False) as session:
        claims, _, grant = await _check_access_token(session=session, jwt=jwt, token=token)
    sessions.remember(claims, generation, grant.expires_at.timestamp())
    return claims


async def _check_access_token(
    *, session: AsyncSession, jwt: JWTCodec, token: str
) -> tuple[AccessClaims, User, AuthSession]:
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
    return claims, user, grant


async def revoke_sessions(
    *,
    session: AsyncSession,
    sessions: SessionCache,
    user_id: uuid.UUID,
    reason: str,
    only: uuid.UUID | None = None,
    keep: uuid.UUID | None = None,
) -> int:
    """End the user's open sign-in sessions (all, ``only`` one, or all but ``keep``); returns how many.

    Cached validity of the user's sessions is dropped after commit, here and on other instances.
    """
    query = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if only is not None:
        query = query.where(AuthSession.id == only)
    if keep is not None:
        query = query.where(AuthSession.id != keep)
    result = await session.execute(
        query.values(revoked_at=utcnow(), revoke_reason=reason).execution_options(synchronize_session=False)
    )
    after_commit(session, lambda: sessions.invalidate_user(user_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _revoke_reused_family(
    *,
    db: Database,
    sessions: SessionCache,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    ip: str | None,
    user_agent: str | None,
) -> None:
    """Revoke a session whose refresh token was presented twice, in a transaction of its own."""
    async with db.session() as own:
        revoked = await revoke_sessions(
            session=own, sessions=sessions, user_id=user_id, reason="refresh_reuse", only=session_id
        )
        if revoked:
            await audit.record(
                own,
                action="auth.refresh_reuse",
                actor_id=None,
                target_type="user",
                target_id=user_id,
                ip=ip,
                user_agent=user_agent,
                result="session_revoked",
                details={"session_id": str(session_id)},
            )


async def refresh_session(
    *,
    session: AsyncSession,
    db: Database,
    jwt: JWTCodec,
    sessions: SessionCache,
    refresh_token: str,
    ip: str | None,
    user_agent: str | None,
) -> TokenPair:
    """Exchange a refresh token for a new pair; a reused token revokes its whole session (401)."""
    now = utcnow()
    digest = token_hash(refresh_token)
    claimed = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == digest, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .returning(RefreshToken.session_id)
        .execution_options(synchronize_session=False)
    )
    session_id = claimed.scalar_one_or_none()
    if session_id is None:
        known = (
            await session.execute(
                select(AuthSession.id, AuthSession.user_id, AuthSession.revoked_at)
                .join(RefreshToken, RefreshToken.session_id == AuthSession.id)
                .where(RefreshToken.token_hash == digest)
            )
        ).first()
        if known is None:
            raise Unauthorized("refresh token is not valid; sign in again", code="invalid_refresh_token")
        if known.revoked_at is None:
            sid, uid = known.id, known.user_id
            after_transaction(
                session,
                lambda: _revoke_reused_family(
                    db=db, sessions=sessions, user_id=uid, session_id=sid, ip=ip, user_agent=user_agent
                ),
            )
        raise Unauthorized(
            "refresh token was already used, so this sign-in has been ended for safety; sign in again",
            code="refresh_token_reused",
        )
    row = (
        await session.execute(
            select(AuthSession, User).join(User, User.id == AuthSession.user_id).where(AuthSession.id == session_id)
        )
    ).one()
    grant, user = row
    if grant.revoked_at is not None:
        raise Unauthorized("this sign-in has ended; sign in again", code="session_revoked")
    if grant.expires_at <= now:
        raise Unauthorized("this sign-in has expired; sign in again", code="session_expired")
    if not is_signed_in_allowed(user, now):
        raise Unauthorized(f"account is {user.status}", code=f"account_{user.status}")
    grant.last_seen_at = now
    grant.ip = ip
    new_refresh = new_token()
    session.add(RefreshToken(session_id=grant.id, token_hash=token_hash(new_refresh)))
    await session.flush()
    access, ttl = issue_access(jwt, user, grant.id)
    return TokenPair(access_token=access, refresh_token=new_refresh, expires_in=ttl, session_id=grant.id)
