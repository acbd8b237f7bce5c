"""Administration: finding users, roles, suspensions, bans, creator decisions and the audit log.

Who may do what (routes pick the role; the checks here hold whoever calls):

* moderators and admins read users; moderators suspend and reinstate plain users and creators;
* admins also ban, reinstate banned users, suspend moderators, set roles and decide creator
  applications;
* nobody suspends or bans themselves or an admin (remove the admin role first).

Suspending or banning revokes every sign-in session of the user in the same transaction, so their
access tokens stop working at once and their refresh tokens fail. Every action writes an audit row.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import String, and_, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from halobuzz.accounts import auth
from halobuzz.accounts import service as accounts_service
from halobuzz.accounts.models import AuthSession, CreatorStatus, Role, User, UserStatus
from halobuzz.admin.schemas import AdminUserDetailOut, AdminUserOut, AuditEntryOut
from halobuzz.core import audit
from halobuzz.core.audit import AuditLog
from halobuzz.core.clock import utcnow
from halobuzz.core.db import after_commit
from halobuzz.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from halobuzz.core.observability import count_event
from halobuzz.core.pagination import Page, decode_cursor, encode_cursor
from halobuzz.core.sessioncache import SessionCache

# Longer than this is a ban, not a suspension.
MAX_SUSPENSION = timedelta(days=3650)


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _keyset_before(
    created_at: InstrumentedAttribute[datetime], id_: InstrumentedAttribute[uuid.UUID], cursor: str
) -> ColumnElement[bool]:
    """Rows strictly after the cursor's row in (created_at, id) descending order."""
    at, last_id = decode_cursor(cursor, datetime, uuid.UUID)
    if at.tzinfo is None:
        raise InvalidInput("cursor is not valid; use next_cursor from a previous page", code="invalid_cursor")
    return or_(created_at < at, and_(created_at == at, id_ < last_id))


async def _load_user(session: AsyncSession, user_id: uuid.UUID, *, lock: bool = False) -> User:
    query = select(User).where(User.id == user_id)
    if lock:
        # Locked and re-read: the row may already sit in the session (the actor acting on themselves).
        query = query.with_for_update().execution_options(populate_existing=True)
    user = (await session.execute(query)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user with id {user_id}", code="user_not_found")
    return user


def _check_may_restrict(actor: User, target: User, *, verb: str) -> None:
    """Refuse restricting oneself, an admin, or (for moderators) another moderator."""
    if actor.id == target.id:
        raise Conflict(f"you cannot {verb} your own account", code="cannot_restrict_self")
    if target.has_role(Role.ADMIN):
        raise Forbidden(
            "administrators cannot be suspended or banned; remove their admin role first", code="target_is_admin"
        )
    if not actor.has_role(Role.ADMIN) and target.has_role(Role.MODERATOR):
        raise Forbidden(f"only administrators can {verb} a moderator", code="target_is_moderator")
    if target.status == UserStatus.DELETED:
        raise Conflict("this account has been deleted", code="user_deleted")


async def list_users(
    *,
    session: AsyncSession,
    q: str | None,
    role: Role | None,
    status: UserStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[AdminUserOut]:
    """Users newest first, filtered by username/email prefix, role and status."""
    query = select(User)
    if q and q.strip():
        pattern = _like_prefix(q.strip().lower())
        query = query.where(
            or_(User.username_key.like(pattern, escape="\\"), func.lower(User.email).like(pattern, escape="\\"))
        )
    if role is not None:
        # Roles are a JSON list of fixed names; the quoted name matches one element on every engine.
        query = query.where(cast(User.roles, String).like(f'%"{role.value}"%'))
    if status is not None:
        query = query.where(User.status == status.value)
    if cursor:
        query = query.where(_keyset_before(User.created_at, User.id, cursor))
    query = query.order_by(User.created_at.desc(), User.id.desc()).limit(limit + 1)
    users = list((await session.execute(query)).scalars())
    next_cursor = None
    if len(users) > limit:
        users = users[:limit]
        next_cursor = encode_cursor(users[-1].created_at, users[-1].id)
    return Page[AdminUserOut](items=[AdminUserOut.model_validate(u) for u in users], next_cursor=next_cursor)


async def get_user(*, session: AsyncSession, user_id: uuid.UUID) -> AdminUserDetailOut:
    """One user's admin view with the number of their open sign-in sessions."""
    user = await _load_user(session, user_id)
    active = await session.scalar(
        select(func.count())
        .select_from(AuthSession)
        .where(
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > utcnow(),
        )
    )
    view = AdminUserOut.model_validate(user)
    return AdminUserDetailOut(**view.model_dump(), active_session_count=int(active or 0))


async def set_roles(
    *,
    session: AsyncSession,
    actor: User,
    user_id: uuid.UUID,
    roles: list[Role],
    ip: str | None,
    user_agent: str | None,
) -> AdminUserOut:
    """Replace a user's roles; adding or removing "creator" keeps ``creator_status`` in step."""
    if Role.USER not in roles:
        raise InvalidInput('roles must include "user"', code="invalid_roles")
    target = await _load_user(session, user_id, lock=True)
    if target.status == UserStatus.DELETED:
        raise Conflict("this account has been deleted", code="user_deleted")
    new_roles = [r.value for r in Role if r in roles]
    if target.id == actor.id and Role.ADMIN.value not in new_roles:
        raise Conflict(
            "you cannot remove your own admin role; ask another administrator", code="cannot_remove_own_admin"
        )
    before = list(target.roles)
    before_creator_status = target.creator_status
    target.roles = new_roles
    if Role.CREATOR.value in new_roles:
        target.creator_status = CreatorStatus.APPROVED.value
    elif target.creator_status == CreatorStatus.APPROVED.value:
        target.creator_status = CreatorStatus.NONE.value
    await session.flush()
    details: dict[str, object] = {"before": before, "after": new_roles}
    if before_creator_status != target.creator_status:
        details["creator_status"] = {"before": before_creator_status, "after": target.creator_status}
    await audit.record(
        session,
        action="admin.user.roles",
        actor_id=actor.id,
        target_type="user",
        target_id=target.id,
        ip=ip,
        user_agent=user_agent,
        details=details,
    )
    return AdminUserOut.model_validate(target)


async def suspend_user(
    *,
    session: AsyncSession,
    sessions: SessionCache,
    actor: User,
    user_id: uuid.UUID,
    until: datetime,
    reason: str,
    ip: str | None,
    user_agent: str | None,
) -> AdminUserOut:
    """Suspend a user until ``until`` and sign them out everywhere (a new suspension replaces the old)."""
    now = utcnow()
    if until.tzinfo is None:
        raise InvalidInput("until must carry a UTC offset", code="invalid_until")
    if until <= now:
        raise InvalidInput(
            "until must be in the future",
            code="invalid_until",
            details=[{"field": "until", "message": "must be in the future"}],
        )
    if until > now + MAX_SUSPENSION:
        raise InvalidInput(
            f"a suspension lasts at most {MAX_SUSPENSION.days} days; ban the user instead",
            code="invalid_until",
            details=[{"field": "until", "message": f"must be within {MAX_SUSPENSION.days} days"}],
        )
    until = until.astimezone(UTC)
    target = await _load_user(session, user_id, lock=True)
    _check_may_restrict(actor, target, verb="suspend")
    if target.status == UserStatus.BANNED:
        raise Conflict("this user is banned; reinstate them before suspending", code="user_banned")
    previous = target.status
    target.status = UserStatus.SUSPENDED.value
    target.suspended_until = until
    target.status_reason = reason
    revoked = await auth.revoke_sessions(session=session, sessions=sessions, user_id=target.id, reason="suspended")
    await session.flush()
    await audit.record(
        session,
        action="admin.user.suspend",
        actor_id=actor.id,
        target_type="user",
        target_id=target.id,
        ip=ip,
        user_agent=user_agent,
        details={
            "reason": reason,
            "until": until.isoformat(),
            "previous_status": previous,
            "sessions_revoked": revoked,
        },
    )
    after_commit(session, lambda: count_event("user_suspended"))
    return AdminUserOut.model_validate(target)


async def ban_user(
    *,
    session: AsyncSession,
    sessions: SessionCache,
    actor: User,
    user_id: uuid.UUID,
    reason: str,
    ip: str | None,
    user_agent: str | None,
) -> AdminUserOut:
    """Ban a user indefinitely and sign them out everywhere (admins only)."""
    if not actor.has_role(Role.ADMIN):
        raise Forbidden("only administrators can ban users", code="insufficient_role")
    target = await _load_user(session, user_id, lock=True)
    _check_may_restrict(actor, target, verb="ban")
    if target.status == UserStatus.BANNED:
        raise Conflict("this user is already banned", code="already_banned")
    previous = target.status
    target.status = UserStatus.BANNED.value
    target.suspended_until = None
    target.status_reason = reason
    revoked = await auth.revoke_sessions(session=session, sessions=sessions, user_id=target.id, reason="banned")
    await session.flush()
    await audit.record(
        session,
        action="admin.user.ban",
        actor_id=actor.id,
        target_type="user",
        target_id=target.id,
        ip=ip,
        user_agent=user_agent,
        details={"reason": reason, "previous_status": previous, "sessions_revoked": revoked},
    )
    after_commit(session, lambda: count_event("user_banned"))
    return AdminUserOut.model_validate(target)


async def reinstate_user(
    *,
    session: AsyncSession,
    actor: User,
    user_id: uuid.UUID,
    reason: str | None,
    ip: str | None,
    user_agent: str | None,
) -> AdminUserOut:
    """Lift a suspension or a ban; moderators may lift only suspensions of users they could suspend."""
    target = await _load_user(session, user_id, lock=True)
    if target.status not in (UserStatus.SUSPENDED, UserStatus.BANNED):
        raise Conflict(f"this user is {target.status}, not suspended or banned", code="not_restricted")
    is_admin = actor.has_role(Role.ADMIN)
    if target.status == UserStatus.BANNED and not is_admin:
        raise Forbidden("only administrators can lift a ban", code="insufficient_role")
    if not is_admin and target.has_role(Role.MODERATOR, Role.ADMIN):
        raise Forbidden("only administrators can reinstate a moderator", code="target_is_moderator")
    previous = target.status
    target.status = UserStatus.ACTIVE.value
    target.suspended_until = None
    target.status_reason = None
    await session.flush()
    await audit.record(
        session,
        action="admin.user.reinstate",
        actor_id=actor.id,
        target_type="user",
        target_id=target.id,
        ip=ip,
        user_agent=user_agent,
        details={"reason": reason, "previous_status": previous},
    )
    after_commit(session, lambda: count_event("user_reinstated"))
    return AdminUserOut.model_validate(target)


async def decide_creator(
    *,
    session: AsyncSession,
    actor: User,
    user_id: uuid.UUID,
    approve: bool,
    reason: str | None,
    ip: str | None,
    user_agent: str | None,
) -> AdminUserOut:
    """Approve (role "creator" added) or reject a pending creator application."""
    target = await accounts_service.approve_creator(
        session=session, actor=actor, user_id=user_id, approve=approve, reason=reason, ip=ip, user_agent=user_agent
    )
    return AdminUserOut.model_validate(target)


async def list_audit_log(
    *,
    session: AsyncSession,
    action: str | None,
    actor_id: uuid.UUID | None,
    target_id: str | None,
    limit: int,
    cursor: str | None,
) -> Page[AuditEntryOut]:
    """Audit rows newest first, filtered by action, actor and target."""
    query = select(AuditLog)
    if action:
        query = query.where(AuditLog.action == action)
    if actor_id is not None:
        query = query.where(AuditLog.actor_id == actor_id)
    if target_id:
        query = query.where(AuditLog.target_id == target_id)
    if cursor:
        query = query.where(_keyset_before(AuditLog.created_at, AuditLog.id, cursor))
    query = query.order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
    return Page[AuditEntryOut](items=[AuditEntryOut.model_validate(r) for r in rows], next_cursor=next_cursor)
