"""Request and response bodies of the administration API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator

from halobuzz.accounts.models import Role

ROLE_ORDER = tuple(Role)

# A moderation reason: shown to the user and kept in the audit log.
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class AdminUserOut(BaseModel):
    """A user as administrators and moderators see them."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    email: str
    display_name: str
    roles: list[str]
    status: str
    suspended_until: datetime | None
    status_reason: str | None
    creator_status: str
    created_at: datetime
    follower_count: int


class AdminUserDetailOut(AdminUserOut):
    """The admin view of one user, with the number of sign-in sessions still open."""

    active_session_count: int


class RolesIn(BaseModel):
    """The complete set of roles the user should hold ("user" is mandatory)."""

    model_config = ConfigDict(extra="forbid")

    roles: list[Role] = Field(min_length=1, max_length=len(ROLE_ORDER), examples=[["user", "creator"]])

    @field_validator("roles")
    @classmethod
    def _canonical(cls, roles: list[Role]) -> list[Role]:
        if Role.USER not in roles:
            raise ValueError('roles must include "user"')
        return [role for role in ROLE_ORDER if role in roles]


class SuspendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: AwareDatetime = Field(description="when the suspension ends: a future time with a UTC offset")
    reason: Reason


class BanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class ReinstateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = None


class CreatorDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: StrictBool
    reason: Reason | None = None


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    actor_id: uuid.UUID | None
    action: str
    target_type: str | None
    target_id: str | None
    ip: str | None
    user_agent: str | None
    result: str
    details: dict[str, Any]
