"""Cookie sign-in for pages, and CSRF tokens.

Signing in through a page opens an ordinary sign-in session (``accounts.auth.start_session``); the
``hb_session`` cookie (HttpOnly, SameSite=Lax, Secure over HTTPS) names it, signed with an HMAC of
the JWT key. Each page request turns the cookie into a short-lived access token for that session,
so revocation (logout, password change, ban) ends the page session at once, exactly as for API
clients. CSRF: a random ``hb_csrf`` cookie and, in every form and in ``X-CSRF-Token`` from
scripts, an HMAC of it; both must match on every unsafe request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from halobuzz.core.runtime import Runtime

SESSION_COOKIE = "hb_session"
CSRF_COOKIE = "hb_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True, slots=True)
class CookieSession:
    user_id: uuid.UUID
    session_id: uuid.UUID


def _key(runtime: Runtime) -> bytes:
    base = str(getattr(runtime.jwt, "_key", "")) or runtime.settings.auth.jwt_secret.get_secret_value()
    return hashlib.sha256(b"halobuzz-web-cookie:" + base.encode()).digest()


def _mac(runtime: Runtime, value: str) -> str:
    return hmac.new(_key(runtime), value.encode(), hashlib.sha256).hexdigest()


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def encode_session(runtime: Runtime, user_id: uuid.UUID, session_id: uuid.UUID) -> str:
    value = f"{user_id}.{session_id}"
    return f"{value}.{_mac(runtime, 'session:' + value)}"


def decode_session(runtime: Runtime, raw: str | None) -> CookieSession | None:
    if not raw or raw.count(".") != 2:
        return None
    user, sid, mac = raw.split(".")
    if not hmac.compare_digest(mac, _mac(runtime, f"session:{user}.{sid}")):
        return None
    try:
        return CookieSession(uuid.UUID(user), uuid.UUID(sid))
    except ValueError:
        return None


def set_session_cookie(request: Request, response: Response, runtime: Runtime, cookie: CookieSession) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        encode_session(runtime, cookie.user_id, cookie.session_id),
        max_age=runtime.settings.auth.refresh_token_ttl_days * 86400,
        httponly=True,
        secure=is_https(request),
        samesite="lax",
        path="/",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, secure=is_https(request), samesite="lax")


def csrf_seed(request: Request) -> tuple[str, bool]:
    """The browser's CSRF cookie value, and whether it is new (must be set on the response)."""
    current = request.cookies.get(CSRF_COOKIE)
    if current and 16 <= len(current) <= 128:
        return current, False
    return secrets.token_urlsafe(24), True


def csrf_token(runtime: Runtime, seed: str) -> str:
    return _mac(runtime, "csrf:" + seed)


def set_csrf_cookie(request: Request, response: Response, seed: str) -> None:
    response.set_cookie(
        CSRF_COOKIE, seed, httponly=True, secure=is_https(request), samesite="strict", path="/", max_age=86400 * 30
    )


def csrf_ok(runtime: Runtime, request: Request, submitted: str | None) -> bool:
    seed = request.cookies.get(CSRF_COOKIE)
    if not seed or not submitted:
        return False
    return hmac.compare_digest(submitted, csrf_token(runtime, seed))
