"""Password hashing (Argon2id), JWTs, opaque tokens and their hashes."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from halobuzz.config import AuthSettings
from halobuzz.core.clock import utcnow


class PasswordHashing:
    """Argon2id with parameters from settings; hashes made with older parameters are flagged for upgrade."""

    def __init__(self, settings: AuthSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # A hash of a random password, verified against when the user does not exist so that
        # unknown users and wrong passwords take the same time.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords (the zxcvbn frequency list), lower-cased."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])


def is_common_password(password: str) -> bool:
    return password.lower() in common_passwords()


def new_token(nbytes: int = 32) -> str:
    """An unguessable URL-safe token."""
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """The stored form of an opaque token (refresh tokens, email links, stream keys)."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def local_secret(directory: Path, name: str) -> str:
    """A random secret kept in ``directory`` (created on first use, readable by the owner only).

    Outside production, unset secrets come from here instead of a value shared by every install.
    """
    path = directory / f"{name}.key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        directory.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
        return value


class TokenError(Exception):
    """A JWT that is malformed, expired, or not for us."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    roles: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    jti: str


class JWTCodec:
    """Issues and checks access JWTs: one configured algorithm, exp/nbf/iat/aud/iss/typ checked."""

    ACCESS = "access"

    def __init__(self, settings: AuthSettings, key: str | None = None) -> None:
        self._key = key or settings.jwt_secret.get_secret_value()
        self._alg = settings.jwt_algorithm
        self._iss = settings.jwt_issuer
        self._aud = settings.jwt_audience
        self.ttl = timedelta(seconds=settings.access_token_ttl_seconds)

    def issue_access(
        self, *, user_id: uuid.UUID, session_id: uuid.UUID, roles: list[str] | tuple[str, ...]
    ) -> tuple[str, datetime]:
        now = utcnow()
        exp = now + self.ttl
        claims: dict[str, Any] = {
            "sub": str(user_id),
            "sid": str(session_id),
            "roles": list(roles),
            "typ": self.ACCESS,
            "iss": self._iss,
            "aud": self._aud,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(exp.timestamp()),
            "jti": secrets.token_hex(12),
        }
        return jwt.encode(claims, self._key, algorithm=self._alg, headers={"typ": "JWT"}), exp

    def issue_purpose(self, *, user_id: uuid.UUID, purpose: str, ttl: timedelta) -> str:
        """A short-lived token for one purpose (e.g. ``appeal``); never accepted as an access token."""
        now = utcnow()
        claims: dict[str, Any] = {
            "sub": str(user_id),
            "typ": purpose,
            "iss": self._iss,
            "aud": self._aud,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
        }
        return jwt.encode(claims, self._key, algorithm=self._alg, headers={"typ": "JWT"})

    def decode_purpose(self, token: str, purpose: str) -> uuid.UUID:
        """The user id of a token issued by ``issue_purpose`` for ``purpose``; ``TokenError`` otherwise."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._alg],
                audience=self._aud,
                issuer=self._iss,
                options={"require": ["exp", "iat", "sub", "aud", "iss", "typ"]},
                leeway=5,
            )
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from exc
        if claims.get("typ") != purpose or purpose == self.ACCESS:
            raise TokenError(f"not a {purpose} token")
        try:
            return uuid.UUID(claims["sub"])
        except (KeyError, ValueError, TypeError) as exc:
            raise TokenError("malformed claims") from exc

    def decode_access(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._alg],
                audience=self._aud,
                issuer=self._iss,
                options={"require": ["exp", "nbf", "iat", "sub", "aud", "iss", "typ", "jti"]},
                leeway=5,
            )
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from exc
        if claims.get("typ") != self.ACCESS:
            raise TokenError("not an access token")
        try:
            return AccessClaims(
                user_id=uuid.UUID(claims["sub"]),
                session_id=uuid.UUID(claims["sid"]),
                roles=tuple(claims.get("roles") or ()),
                issued_at=datetime.fromtimestamp(claims["iat"], UTC),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
                jti=str(claims["jti"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise TokenError("malformed claims") from exc
