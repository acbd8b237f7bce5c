"""Routes: /admin — users, roles, suspensions and bans, creator applications, the audit log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query

from halobuzz.accounts.deps import AdminUser, ModeratorUser
from halobuzz.accounts.models import Role, UserStatus
from halobuzz.admin import service
from halobuzz.admin.schemas import (
    AdminUserDetailOut,
    AdminUserOut,
    AuditEntryOut,
    BanIn,
    CreatorDecisionIn,
    ReinstateIn,
    RolesIn,
    SuspendIn,
)
from halobuzz.core.deps import PageDep, RequestMetaDep, RuntimeDep, SessionDep
from halobuzz.core.pagination import Page

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/users", response_model=Page[AdminUserOut])
async def list_users(
    session: SessionDep,
    _actor: ModeratorUser,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=254, description="username or email prefix, any case")] = None,
    role: Annotated[Role | None, Query(description="only users holding this role")] = None,
    status: Annotated[UserStatus | None, Query(description="only users in this status")] = None,
) -> Page[AdminUserOut]:
    """Users, newest first. Moderators and admins."""
    return await service.list_users(
        session=session, q=q, role=role, status=status, limit=page.limit, cursor=page.cursor
    )


@router.get("/users/{user_id}", response_model=AdminUserDetailOut)
async def get_user(user_id: uuid.UUID, session: SessionDep, _actor: ModeratorUser) -> AdminUserDetailOut:
    """One user with the number of their open sign-in sessions. Moderators and admins."""
    return await service.get_user(session=session, user_id=user_id)


@router.put("/users/{user_id}/roles", response_model=AdminUserOut)
async def set_roles(
    user_id: uuid.UUID, body: RolesIn, session: SessionDep, actor: AdminUser, meta: RequestMetaDep
) -> AdminUserOut:
    """Replace a user's roles (must include "user"). Admins only; an admin cannot drop their own admin role.

    Adding "creator" approves the user as a creator; removing it clears an approval.
    """
    return await service.set_roles(
        session=session, actor=actor, user_id=user_id, roles=body.roles, ip=meta.ip, user_agent=meta.user_agent
    )


@router.post("/users/{user_id}/suspend", response_model=AdminUserOut)
async def suspend_user(
    user_id: uuid.UUID,
    body: SuspendIn,
    session: SessionDep,
    rt: RuntimeDep,
    actor: ModeratorUser,
    meta: RequestMetaDep,
) -> AdminUserOut:
    """Suspend a user until a future time and sign them out everywhere at once.

    Moderators may suspend plain users and creators; admins may also suspend moderators.
    Nobody may suspend themselves or an admin. Suspending a suspended user replaces the end time.
    """
    return await service.suspend_user(
        session=session,
        sessions=rt.sessions,
        actor=actor,
        user_id=user_id,
        until=body.until,
        reason=body.reason,
        ip=meta.ip,
        user_agent=meta.user_agent,
    )


@router.post("/users/{user_id}/ban", response_model=AdminUserOut)
async def ban_user(
    user_id: uuid.UUID,
    body: BanIn,
    session: SessionDep,
    rt: RuntimeDep,
    actor: AdminUser,
    meta: RequestMetaDep,
) -> AdminUserOut:
    """Ban a user indefinitely and sign them out everywhere at once.

    Admins only (moderators may suspend, not ban). Nobody may ban themselves or an admin.
    """
    return await service.ban_user(
        session=session,
        sessions=rt.sessions,
        actor=actor,
        user_id=user_id,
        reason=body.reason,
        ip=meta.ip,
        user_agent=meta.user_agent,
    )


@router.post("/users/{user_id}/reinstate", response_model=AdminUserOut)
async def reinstate_user(
    user_id: uuid.UUID,
    session: SessionDep,
    actor: ModeratorUser,
    meta: RequestMetaDep,
    body: Annotated[ReinstateIn | None, Body()] = None,
) -> AdminUserOut:
    """Make a suspended or banned user active again (they sign in anew).

    Moderators may lift suspensions of plain users and creators; only admins lift bans or
    reinstate moderators.
    """
    return await service.reinstate_user(
        session=session,
        actor=actor,
        user_id=user_id,
        reason=body.reason if body else None,
        ip=meta.ip,
        user_agent=meta.user_agent,
    )


@router.post("/users/{user_id}/creator", response_model=AdminUserOut)
async def decide_creator(
    user_id: uuid.UUID, body: CreatorDecisionIn, session: SessionDep, actor: AdminUser, meta: RequestMetaDep
) -> AdminUserOut:
    """Approve or reject a pending creator application. Admins only."""
    return await service.decide_creator(
        session=session,
        actor=actor,
        user_id=user_id,
        approve=body.approve,
        reason=body.reason,
        ip=meta.ip,
        user_agent=meta.user_agent,
    )


@router.get("/audit-log", response_model=Page[AuditEntryOut])
async def list_audit_log(
    session: SessionDep,
    _actor: AdminUser,
    page: PageDep,
    action: Annotated[str | None, Query(max_length=64, description="exact action, e.g. admin.user.suspend")] = None,
    actor_id: Annotated[uuid.UUID | None, Query(description="who acted")] = None,
    target_id: Annotated[str | None, Query(max_length=64, description="id of the object acted on")] = None,
) -> Page[AuditEntryOut]:
    """Audit rows, newest first. Admins only."""
    return await service.list_audit_log(
        session=session, action=action, actor_id=actor_id, target_id=target_id, limit=page.limit, cursor=page.cursor
    )
