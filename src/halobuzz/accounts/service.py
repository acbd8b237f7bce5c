"""Accounts: sign-up, sign-in, email verification, password reset and change, sign-in sessions,
two-factor authentication (TOTP) and creator applications.

Every state change writes an audit row. Records that must outlive a failed request (a failed
sign-in's audit row) are written in a transaction of their own once the request's has ended
(``after_transaction``). Mails are handed to the mailer only after commit, in the background, so
no mail announces what rolled back and a response never waits on (or reveals by its timing) the
mail server.

Argon2 runs in a worker thread (argon2-cffi releases the GIL), and sign-in verifies the password
before it opens its write transaction, so on SQLite password checks never hold the single writer.

A password change keeps the session it was made from and ends every other one; a password reset
(made without a session) ends them all.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pyotp
import structlog
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts import mails
from halobuzz.accounts.auth import TokenPair, is_signed_in_allowed, refresh_session, revoke_sessions, start_session
from halobuzz.accounts.models import (
    AuthSession,
    CreatorStatus,
    OneTimeToken,
    RecoveryCode,
    Role,
    TokenPurpose,
    User,
    UserStatus,
)
from halobuzz.accounts.schemas import SessionOut
from halobuzz.accounts.throttle import Attempt, LoginThrottle, account_key, lenient
from halobuzz.config import AuthSettings
from halobuzz.core import audit
from halobuzz.core.clock import utcnow
from halobuzz.core.db import Database, after_commit, after_transaction
from halobuzz.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from halobuzz.core.kv import Store
from halobuzz.core.mail import Mailer
from halobuzz.core.observability import count_event
from halobuzz.core.pagination import Page, decode_cursor, encode_cursor
from halobuzz.core.runtime import Runtime
from halobuzz.core.security import constant_time_equal, is_common_password, new_token, token_hash

log = structlog.get_logger(__name__)

RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i look-alikes
VERIFICATION_MAILS_PER_HOUR = 5
RESET_MAILS_PER_HOUR = 3

_mail_tasks: set[asyncio.Task[None]] = set()


class InvalidLink(DomainError):
    """A mailed token that is unknown, used, superseded or expired."""

    status_code = 400
    code = "invalid_token"


# --- helpers -------------------------------------------------------------------------------------


def check_password_policy(*, settings: AuthSettings, password: str, username: str, email: str, field: str) -> None:
    """Refuse a password that is short, common, or the account's own username or email."""
    lowered = password.lower()
    if len(password) < settings.password_min_length:
        reason, message = "too_short", f"{field} must be at least {settings.password_min_length} characters long"
    elif is_common_password(password):
        reason, message = "too_common", f"{field} is one of the most common passwords; choose another"
    elif lowered in {username.lower(), email.lower(), email.split("@", 1)[0].lower()}:
        reason, message = "matches_account", f"{field} must not be your username or email address"
    else:
        return
    raise InvalidInput(message, code="weak_password", details=[{"field": field, "message": message, "type": reason}])


def _mail_after_commit(session: AsyncSession, mailer: Mailer, *, to: str, subject: str, text: str) -> None:
    """Hand a mail to the mailer once the transaction has committed, without waiting for it."""

    async def send() -> None:
        try:
            await mailer.send(to=to, subject=subject, text=text)
        except Exception:  # a mail server outage must not fail the committed request
            log.exception("mail_failed", to_domain=to.rsplit("@", 1)[-1], subject=subject)

    def start() -> None:
        task = asyncio.get_running_loop().create_task(send())
        _mail_tasks.add(task)
        task.add_done_callback(_mail_tasks.discard)

    after_commit(session, start)


def _audit_in_own_transaction(session: AsyncSession, db: Database, **fields: Any) -> None:
    """Write an audit row once the request's transaction has ended, even if it rolled back."""

    async def write() -> None:
        async with db.session() as own:
            await audit.record(own, **fields)

    after_transaction(session, write)


async def _hash_password(runtime: Runtime, password: str) -> str:
    return await asyncio.to_thread(runtime.passwords.hash, password)


async def _verify_password(runtime: Runtime, password_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(runtime.passwords.verify, password_hash, password)


async def _lock(session: AsyncSession, user: User) -> User:
    """Reload ``user`` with a row lock (PostgreSQL; SQLite write transactions are serial already)."""
    await session.refresh(user, with_for_update=True)
    return user


async def _issue_token(session: AsyncSession, *, user_id: uuid.UUID, purpose: TokenPurpose, ttl: timedelta) -> str:
    """A new single-use mailed token; earlier unused tokens of the same purpose stop working."""
    now = utcnow()
    await session.execute(
        update(OneTimeToken)
        .where(OneTimeToken.user_id == user_id, OneTimeToken.purpose == purpose.value, OneTimeToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    token = new_token()
    session.add(
        OneTimeToken(user_id=user_id, purpose=purpose.value, token_hash=token_hash(token), expires_at=now + ttl)
    )
    await session.flush()
    return token


async def _consume_token(session: AsyncSession, *, token: str, purpose: TokenPurpose) -> uuid.UUID:
    """Mark a mailed token used (exactly once, even under races) and return its user's id."""
    now = utcnow()
    digest = token_hash(token)
    claimed = await session.execute(
        update(OneTimeToken)
        .where(
            OneTimeToken.token_hash == digest,
            OneTimeToken.purpose == purpose.value,
            OneTimeToken.used_at.is_(None),
            OneTimeToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(OneTimeToken.user_id)
        .execution_options(synchronize_session=False)
    )
    user_id = claimed.scalar_one_or_none()
    if user_id is not None:
        return user_id
    row = (
        await session.execute(
            select(OneTimeToken.used_at).where(OneTimeToken.token_hash == digest, OneTimeToken.purpose == purpose.value)
        )
    ).first()
    if row is None:
        raise InvalidLink("this link is not valid; check that it was copied whole", code="invalid_token")
    if row.used_at is not None:
        raise InvalidLink("this link was already used or replaced by a newer one", code="token_used")
    raise InvalidLink("this link has expired; ask for a new one", code="token_expired")


async def _load_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = (await session.execute(select(User).where(User.id == user_id))).scalar_one_or_none()
    if user is None:
        raise InvalidLink("this link is not valid any more", code="invalid_token")
    return user


def _ordered_roles(roles: list[str]) -> list[str]:
    return [r.value for r in Role if r.value in roles]


# --- TOTP and recovery codes -----------------------------------------------------------------------


async def _totp_ok(kv: Store, *, user_id: uuid.UUID, secret: str, code: str) -> bool:
    """Whether ``code`` is the TOTP of the previous, current or next 30-second step, unused so far.

    Each step's code works once per account (remembered in the shared store), so an observed code
    cannot be replayed within its validity window.
    """
    if len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(secret)
    now_step = int(time.time()) // totp.interval
    for step in (now_step, now_step - 1, now_step + 1):
        if constant_time_equal(totp.generate_otp(step), code):
            # Keyed by the code too: after re-enrolling, the new secret's code of the same step is new.
            return await lenient(kv.incr(f"totp:used:{user_id}:{step}:{code}", 5 * totp.interval), 1) == 1
    return False


def _recovery_code_hash(user_id: uuid.UUID, code: str) -> str:
    normalized = code.replace("-", "").replace(" ", "").lower()
    return token_hash(f"{user_id}:{normalized}")


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


async def _use_recovery_code(session: AsyncSession, *, user_id: uuid.UUID, code: str) -> bool:
    """Spend one recovery code (a conditional UPDATE: a code works once even under races)."""
    result = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == _recovery_code_hash(user_id, code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def _second_factor(session: AsyncSession, kv: Store, *, user: User, otp: str) -> str | None:
    """The method that ``otp`` passes as ("totp" or "recovery_code"), or None."""
    code = otp.replace(" ", "")
    if code.isdigit():
        ok = user.totp_secret is not None and await _totp_ok(kv, user_id=user.id, secret=user.totp_secret, code=code)
        return "totp" if ok else None
    return "recovery_code" if await _use_recovery_code(session, user_id=user.id, code=code) else None


# --- sign-up ------------------------------------------------------------------------------------


async def register(
    *,
    session: AsyncSession,
    runtime: Runtime,
    username: str,
    email: str,
    password: str,
    phone: str | None,
    display_name: str | None,
    ip: str | None,
    user_agent: str | None,
) -> User:
    """Create an account and mail a link that confirms its email address."""
    settings = runtime.settings.auth
    check_password_policy(settings=settings, password=password, username=username, email=email, field="password")
    password_hash = await _hash_password(runtime, password)
    now = utcnow()
    user = User(
        username=username,
        username_key=username.lower(),
        email=email,
        phone=phone,
        password_hash=password_hash,
        display_name=display_name or username,
        roles=[Role.USER.value],
        password_changed_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError:
        raise await _duplicate_account(session, username_key=username.lower(), email=email) from None
    token = await _issue_token(
        session, user_id=user.id, purpose=TokenPurpose.VERIFY_EMAIL, ttl=timedelta(hours=settings.email_token_ttl_hours)
    )
    subject, text = mails.verification_mail(
        username=username, public_url=settings.public_url, token=token, ttl_hours=settings.email_token_ttl_hours
    )
    _mail_after_commit(session, runtime.mailer, to=email, subject=subject, text=text)
    await audit.record(
        session,
        action="auth.register",
        actor_id=user.id,
        target_type="user",
        target_id=user.id,
        ip=ip,
        user_agent=user_agent,
    )
    after_commit(session, lambda: count_event("registration"))
    return user


async def _duplicate_account(session: AsyncSession, *, username_key: str, email: str) -> Conflict:
    """The conflict a failed insert ran into (the unique constraints decided; this only names it)."""
    taken = (
        await session.execute(
            select(User.username_key, User.email).where(or_(User.username_key == username_key, User.email == email))
        )
    ).all()
    if any(row.username_key == username_key for row in taken):
        return Conflict("this username is taken; choose another", code="username_taken")
    if any(row.email == email for row in taken):
        return Conflict("an account with this email address exists; sign in or reset its password", code="email_taken")
    return Conflict("an account with this username or email exists", code="account_exists")


# --- sign-in and tokens ----------------------------------------------------------------------------


async def login(
    *,
    session: AsyncSession,
    runtime: Runtime,
    login: str,
    password: str,
    otp: str | None,
    ip: str,
    user_agent: str,
) -> TokenPair:
    """Check credentials (and the second factor), then open a sign-in session.

    Unknown accounts and wrong passwords fail alike (same body, an Argon2 verification either
    way, the same throttling). The account's status is told only after a correct password.
    """
    settings = runtime.settings.auth
    key = login.strip().lower()
    column = User.email if "@" in key else User.username_key
    async with runtime.db.session(write=False) as read:
        user = (await read.execute(select(User).where(column == key))).scalar_one_or_none()
    if user is not None and user.status == UserStatus.DELETED:
        user = None
    throttle = LoginThrottle(runtime.kv, settings)
    attempt = await throttle.admit(account=account_key(user_id=user.id if user else None, login=key), ip=ip)
    failure: dict[str, Any] = {
        "action": "auth.login",
        "actor_id": user.id if user else None,
        "target_type": "user" if user else None,
        "target_id": user.id if user else None,
        "ip": ip,
        "user_agent": user_agent,
    }
    if not await _verify_password(runtime, user.password_hash if user else None, password) or user is None:
        await throttle.failed(attempt)
        _audit_in_own_transaction(
            session, runtime.db, **failure, result="failed", details={"reason": "invalid_credentials"}
        )
        raise Unauthorized("the username/email or the password is wrong", code="invalid_credentials")
    now = utcnow()
    if not is_signed_in_allowed(user, now):
        _audit_in_own_transaction(
            session, runtime.db, **failure, result="refused", details={"reason": f"account_{user.status}"}
        )
        refusal = _status_refusal(user)
        # After a correct password, a suspended or banned user may still appeal the decision
        # (docs/moderation.md): a short-lived token good only for the appeal routes.
        refusal.details = {
            **(refusal.details or {}),
            "appeal_token": runtime.jwt.issue_purpose(user_id=user.id, purpose="appeal", ttl=timedelta(hours=1)),
        }
        raise refusal
    # Hashed now, before the write transaction begins (on SQLite it is the single writer).
    new_hash = await _hash_password(runtime, password) if runtime.passwords.needs_rehash(user.password_hash) else None
    method = "password"
    if user.totp_enabled_at is not None:
        if not otp:
            raise Unauthorized(
                "this account uses two-factor authentication; send the code of your authenticator app as otp",
                code="otp_required",
            )
        second = await _second_factor(session, runtime.kv, user=user, otp=otp)
        if second is None:
            await throttle.failed(attempt)
            _audit_in_own_transaction(
                session, runtime.db, **failure, result="failed", details={"reason": "invalid_otp"}
            )
            raise Unauthorized("the two-factor code is wrong or was already used", code="invalid_otp")
        method = f"password+{second}"
    if new_hash is not None:
        await session.execute(
            update(User)
            .where(User.id == user.id, User.password_hash == user.password_hash)
            .values(password_hash=new_hash)
            .execution_options(synchronize_session=False)
        )
    pair = await start_session(
        session=session, jwt=runtime.jwt, settings=settings, user=user, device=user_agent or "unknown device", ip=ip
    )
    await audit.record(
        session,
        action="auth.login",
        actor_id=user.id,
        target_type="user",
        target_id=user.id,
        ip=ip,
        user_agent=user_agent,
        details={"session_id": str(pair.session_id), "method": method},
    )

    async def succeeded() -> None:
        count_event("login")
        await throttle.succeeded(attempt)

    after_commit(session, succeeded)
    return pair


def _status_refusal(user: User) -> Forbidden:
    if user.status == UserStatus.BANNED:
        return Forbidden("this account is banned", code="account_banned")
    until = user.suspended_until
    return Forbidden(
        f"this account is suspended until {until.isoformat()}" if until else "this account is suspended",
        code="account_suspended",
        details={"suspended_until": until.isoformat() if until else None},
    )


async def refresh(
    *, session: AsyncSession, runtime: Runtime, refresh_token: str, ip: str, user_agent: str
) -> TokenPair:
    """Exchange a refresh token for a new pair (rotation with reuse detection, see ``accounts.auth``)."""
    return await refresh_session(
        session=session,
        db=runtime.db,
        jwt=runtime.jwt,
        sessions=runtime.sessions,
        refresh_token=refresh_token,
        ip=ip,
        user_agent=user_agent,
    )


async def logout(
    *,
    session: AsyncSession,
    runtime: Runtime,
    actor: User,
    current_session_id: uuid.UUID,
    everywhere: bool,
    ip: str,
    user_agent: str,
) -> None:
    """End the current sign-in session, or every session of the account."""
    revoked = await revoke_sessions(
        session=session,
        sessions=runtime.sessions,
        user_id=actor.id,
        reason="logout_all" if everywhere else "logout",
        only=None if everywhere else current_session_id,
    )
    await audit.record(
        session,
        action="auth.logout",
        actor_id=actor.id,
        target_type="user",
        target_id=actor.id,
        ip=ip,
        user_agent=user_agent,
        details={"session_id": str(current_session_id), "all": everywhere, "revoked": revoked},
    )


# --- email verification and password reset -------------------------------------------------------


async def verify_email(*, session: AsyncSession, token: str) -> User:
    """Confirm the email address a verification link was sent to."""
    user = await _load_user(session, await _consume_token(session, token=token, purpose=TokenPurpose.VERIFY_EMAIL))
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        await session.flush()
    return user


async def resend_verification(*, session: AsyncSession, runtime: Runtime, actor: User) -> None:
    """Mail a new verification link (the previous ones stop working); a few per hour at most."""
    if actor.email_verified_at is not None:
        raise Conflict("your email address is already confirmed", code="email_already_verified")
    allowed, _, wait = await lenient(
        runtime.kv.take(f"mail:verify:{actor.id}", VERIFICATION_MAILS_PER_HOUR, 3600.0), (True, 0, 0.0)
    )
    if not allowed:
        retry = max(1, int(wait) + 1)
        raise TooManyRequests(
            f"a verification mail was sent recently; try again in {retry} seconds",
            code="too_many_mails",
            headers={"Retry-After": str(retry)},
        )
    settings = runtime.settings.auth
    token = await _issue_token(
        session,
        user_id=actor.id,
        purpose=TokenPurpose.VERIFY_EMAIL,
        ttl=timedelta(hours=settings.email_token_ttl_hours),
    )
    subject, text = mails.verification_mail(
        username=actor.username, public_url=settings.public_url, token=token, ttl_hours=settings.email_token_ttl_hours
    )
    _mail_after_commit(session, runtime.mailer, to=actor.email, subject=subject, text=text)


async def request_password_reset(
    *, session: AsyncSession, runtime: Runtime, email: str, ip: str, user_agent: str
) -> None:
    """Mail a password-reset link when an account uses ``email``; says nothing either way."""
    settings = runtime.settings.auth
    user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    if user is None or user.status in (UserStatus.BANNED, UserStatus.DELETED):
        return
    # A few mails per address per hour: the endpoint must not become a way to flood an inbox.
    allowed, _, _ = await lenient(
        runtime.kv.take(f"mail:reset:{token_hash(email)[:32]}", RESET_MAILS_PER_HOUR, 3600.0), (True, 0, 0.0)
    )
    if not allowed:
        return
    token = await _issue_token(
        session,
        user_id=user.id,
        purpose=TokenPurpose.RESET_PASSWORD,
        ttl=timedelta(minutes=settings.reset_token_ttl_minutes),
    )
    subject, text = mails.password_reset_mail(
        username=user.username,
        public_url=settings.public_url,
        token=token,
        ttl_minutes=settings.reset_token_ttl_minutes,
    )
    _mail_after_commit(session, runtime.mailer, to=user.email, subject=subject, text=text)
    await audit.record(
        session,
        action="auth.password_reset.request",
        actor_id=None,
        target_type="user",
        target_id=user.id,
        ip=ip,
        user_agent=user_agent,
    )


async def reset_password(
    *, session: AsyncSession, runtime: Runtime, token: str, new_password: str, ip: str, user_agent: str
) -> None:
    """Set a new password with a mailed reset token; every sign-in session ends."""
    user_id = await _consume_token(session, token=token, purpose=TokenPurpose.RESET_PASSWORD)
    user = await _load_user(session, user_id)
    check_password_policy(
        settings=runtime.settings.auth,
        password=new_password,
        username=user.username,
        email=user.email,
        field="new_password",
    )
    now = utcnow()
    user.password_hash = await _hash_password(runtime, new_password)
    user.password_changed_at = now
    # The reset link reached the mailbox, which proves the address.
    if user.email_verified_at is None:
        user.email_verified_at = now
    await session.flush()
    revoked = await revoke_sessions(
        session=session, sessions=runtime.sessions, user_id=user.id, reason="password_reset"
    )
    await audit.record(
        session,
        action="auth.password_reset",
        actor_id=user.id,
        target_type="user",
        target_id=user.id,
        ip=ip,
        user_agent=user_agent,
        details={"sessions_revoked": revoked},
    )
    _notify_password_changed(session, runtime, user)


def _notify_password_changed(session: AsyncSession, runtime: Runtime, user: User) -> None:
    subject, text = mails.password_changed_mail(username=user.username, public_url=runtime.settings.auth.public_url)
    _mail_after_commit(session, runtime.mailer, to=user.email, subject=subject, text=text)


# --- account security (signed in) ------------------------------------------------------------------


async def _check_own_password(runtime: Runtime, *, actor: User, password: str, ip: str) -> Attempt:
    """Verify the signed-in user's password, throttled like sign-in (a stolen token must not guess)."""
    throttle = LoginThrottle(runtime.kv, runtime.settings.auth)
    attempt = await throttle.admit(account=account_key(user_id=actor.id, login=""), ip=ip)
    if not await _verify_password(runtime, actor.password_hash, password):
        await throttle.failed(attempt)
        raise Forbidden("the password is wrong", code="invalid_password")
    return attempt


async def change_password(
    *,
    session: AsyncSession,
    runtime: Runtime,
    actor: User,
    current_session_id: uuid.UUID,
    current_password: str,
    new_password: str,
    ip: str,
    user_agent: str,
) -> None:
    """Replace the password; every other sign-in session ends (this one stays signed in)."""
    attempt = await _check_own_password(runtime, actor=actor, password=current_password, ip=ip)
    check_password_policy(
        settings=runtime.settings.auth,
        password=new_password,
        username=actor.username,
        email=actor.email,
        field="new_password",
    )
    if new_password == current_password:
        raise InvalidInput(
            "new_password must differ from the current password",
            code="password_unchanged",
            details=[{"field": "new_password", "message": "same as the current password", "type": "unchanged"}],
        )
    actor.password_hash = await _hash_password(runtime, new_password)
    actor.password_changed_at = utcnow()
    await session.flush()
    revoked = await revoke_sessions(
        session=session, sessions=runtime.sessions, user_id=actor.id, reason="password_change", keep=current_session_id
    )
    # Pending reset links were meant for the old password.
    await session.execute(
        update(OneTimeToken)
        .where(
            OneTimeToken.user_id == actor.id,
            OneTimeToken.purpose == TokenPurpose.RESET_PASSWORD.value,
            OneTimeToken.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await audit.record(
        session,
        action="account.password.change",
        actor_id=actor.id,
        target_type="user",
        target_id=actor.id,
        ip=ip,
        user_agent=user_agent,
        details={"sessions_revoked": revoked},
    )
    throttle = LoginThrottle(runtime.kv, runtime.settings.auth)
    after_commit(session, lambda: throttle.succeeded(attempt))
    _notify_password_changed(session, runtime, actor)


async def list_sessions(
    *, session: AsyncSession, actor: User, current_session_id: uuid.UUID, limit: int, cursor: str | None
) -> Page[SessionOut]:
    """The user's open sign-in sessions (devices), newest first."""
    now = utcnow()
    query = select(AuthSession).where(
        AuthSession.user_id == actor.id, AuthSession.revoked_at.is_(None), AuthSession.expires_at > now
    )
    if cursor:
        at, last_id = decode_cursor(cursor, datetime, uuid.UUID)
        if at.tzinfo is None:
            raise InvalidInput("cursor is not valid; use next_cursor from a previous page", code="invalid_cursor")
        query = query.where(
            or_(AuthSession.created_at < at, and_(AuthSession.created_at == at, AuthSession.id < last_id))
        )
    rows = list(
        (
            await session.execute(query.order_by(AuthSession.created_at.desc(), AuthSession.id.desc()).limit(limit + 1))
        ).scalars()
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
    items = [
        SessionOut(
            id=row.id,
            device=row.device,
            ip=row.ip,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            current=row.id == current_session_id,
        )
        for row in rows
    ]
    return Page[SessionOut](items=items, next_cursor=next_cursor)


async def revoke_session(
    *, session: AsyncSession, runtime: Runtime, actor: User, session_id: uuid.UUID, ip: str, user_agent: str
) -> None:
    """Sign one of the user's devices out (revoking the current one is a logout)."""
    found = (
        await session.execute(
            select(AuthSession.id, AuthSession.revoked_at).where(
                AuthSession.id == session_id, AuthSession.user_id == actor.id
            )
        )
    ).first()
    if found is None:
        raise NotFound("you have no sign-in session with this id", code="session_not_found")
    if found.revoked_at is not None:
        return
    await revoke_sessions(
        session=session, sessions=runtime.sessions, user_id=actor.id, reason="revoked_by_user", only=session_id
    )
    await audit.record(
        session,
        action="account.session.revoke",
        actor_id=actor.id,
        target_type="auth_session",
        target_id=session_id,
        ip=ip,
        user_agent=user_agent,
    )


# --- two-factor authentication -------------------------------------------------------------------


async def setup_totp(*, session: AsyncSession, runtime: Runtime, actor: User) -> tuple[str, str]:
    """Store a new, not yet confirmed TOTP secret; returns (secret, otpauth URI)."""
    await _lock(session, actor)
    if actor.totp_enabled_at is not None:
        raise Conflict(
            "two-factor authentication is already on; disable it first to enrol a new device",
            code="two_factor_already_enabled",
        )
    secret = pyotp.random_base32()
    actor.totp_secret = secret
    await session.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=actor.email, issuer_name=runtime.settings.auth.totp_issuer)
    return secret, uri


async def confirm_totp(
    *, session: AsyncSession, runtime: Runtime, actor: User, otp: str, ip: str, user_agent: str
) -> list[str]:
    """Turn two-factor authentication on with a first code; returns single-use recovery codes."""
    await _lock(session, actor)
    if actor.totp_enabled_at is not None:
        raise Conflict("two-factor authentication is already on", code="two_factor_already_enabled")
    if actor.totp_secret is None:
        raise Conflict("start with POST /users/me/2fa/setup", code="two_factor_not_set_up")
    if not await _totp_ok(runtime.kv, user_id=actor.id, secret=actor.totp_secret, code=otp.replace(" ", "")):
        raise Forbidden("the code is wrong or was already used; check the device's clock", code="invalid_otp")
    actor.totp_enabled_at = utcnow()
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == actor.id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    session.add_all(RecoveryCode(user_id=actor.id, code_hash=_recovery_code_hash(actor.id, c)) for c in codes)
    await session.flush()
    await audit.record(
        session,
        action="account.2fa.enable",
        actor_id=actor.id,
        target_type="user",
        target_id=actor.id,
        ip=ip,
        user_agent=user_agent,
    )
    return codes


async def disable_totp(
    *, session: AsyncSession, runtime: Runtime, actor: User, password: str, otp: str, ip: str, user_agent: str
) -> None:
    """Turn two-factor authentication off (needs the password and a code or recovery code)."""
    await _lock(session, actor)
    if actor.totp_enabled_at is None:
        raise Conflict("two-factor authentication is not on", code="two_factor_not_enabled")
    attempt = await _check_own_password(runtime, actor=actor, password=password, ip=ip)
    method = await _second_factor(session, runtime.kv, user=actor, otp=otp)
    throttle = LoginThrottle(runtime.kv, runtime.settings.auth)
    if method is None:
        await throttle.failed(attempt)
        raise Forbidden("the two-factor code is wrong or was already used", code="invalid_otp")
    actor.totp_secret = None
    actor.totp_enabled_at = None
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == actor.id))
    await session.flush()
    await audit.record(
        session,
        action="account.2fa.disable",
        actor_id=actor.id,
        target_type="user",
        target_id=actor.id,
        ip=ip,
        user_agent=user_agent,
        details={"method": method},
    )
    after_commit(session, lambda: throttle.succeeded(attempt))


# --- creators ----------------------------------------------------------------------------------


async def apply_for_creator(*, session: AsyncSession, runtime: Runtime, actor: User, ip: str, user_agent: str) -> User:
    """Apply to become a creator: approved at once, or pending an admin's decision when configured."""
    await _lock(session, actor)
    if actor.has_role(Role.CREATOR) or actor.creator_status == CreatorStatus.APPROVED:
        raise Conflict("you are a creator already", code="already_creator")
    if actor.creator_status == CreatorStatus.PENDING:
        raise Conflict("your creator application is waiting for an administrator", code="creator_application_pending")
    if runtime.settings.auth.creator_requires_approval:
        actor.creator_status = CreatorStatus.PENDING.value
    else:
        actor.creator_status = CreatorStatus.APPROVED.value
        actor.roles = _ordered_roles([*actor.roles, Role.CREATOR.value])
    await session.flush()
    await audit.record(
        session,
        action="account.creator.apply",
        actor_id=actor.id,
        target_type="user",
        target_id=actor.id,
        ip=ip,
        user_agent=user_agent,
        details={"creator_status": actor.creator_status},
    )
    after_commit(session, lambda: count_event("creator_application"))
    return actor


async def approve_creator(
    *,
    session: AsyncSession,
    actor: User,
    user_id: uuid.UUID,
    approve: bool,
    reason: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> User:
    """Decide a pending creator application: approve (role "creator" added) or reject."""
    target = (await session.execute(select(User).where(User.id == user_id).with_for_update())).scalar_one_or_none()
    if target is None:
        raise NotFound(f"no user with id {user_id}", code="user_not_found")
    if target.status == UserStatus.DELETED:
        raise Conflict("this account has been deleted", code="user_deleted")
    if target.creator_status != CreatorStatus.PENDING:
        raise Conflict(
            f"there is no pending creator application (creator status is {target.creator_status})",
            code="no_pending_application",
        )
    if approve:
        target.creator_status = CreatorStatus.APPROVED.value
        target.roles = _ordered_roles([*target.roles, Role.CREATOR.value])
    else:
        target.creator_status = CreatorStatus.REJECTED.value
    await session.flush()
    await audit.record(
        session,
        action="admin.user.creator.approve" if approve else "admin.user.creator.reject",
        actor_id=actor.id,
        target_type="user",
        target_id=target.id,
        ip=ip,
        user_agent=user_agent,
        details={"approve": approve, "reason": reason},
    )
    after_commit(session, lambda: count_event("creator_approved" if approve else "creator_rejected"))
    return target
