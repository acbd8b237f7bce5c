"""Who is calling: the authenticated user (from the access JWT) and role requirements."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts import auth
from halobuzz.accounts.models import User
from halobuzz.core.deps import SessionDep
from halobuzz.core.errors import Forbidden, Unauthorized
from halobuzz.core.runtime import Runtime


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <access token>'", code="invalid_token")
    return token.strip()


async def _authenticate(request: Request, session: AsyncSession, token: str) -> User:
    rt: Runtime = request.app.state.runtime
    user = await auth.authenticate_access_token(session=session, jwt=rt.jwt, token=token)
    request.scope.setdefault("state", {})["user_id"] = str(user.id)
    return user


async def current_user(request: Request, session: SessionDep) -> User:
    token = _bearer(request)
    if token is None:
        raise Unauthorized("sign in first: send 'Authorization: Bearer <access token>'", code="not_authenticated")
    return await _authenticate(request, session, token)


async def optional_user(request: Request, session: SessionDep) -> User | None:
    token = _bearer(request)
    return None if token is None else await _authenticate(request, session, token)


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]


def require_roles(*roles: str):  # type: ignore[no-untyped-def]
    """A dependency that lets through only users holding one of ``roles``."""

    async def check(user: CurrentUser) -> User:
        if not user.has_role(*roles):
            raise Forbidden(f"this needs the {' or '.join(roles)} role", code="insufficient_role")
        return user

    return check


AdminUser = Annotated[User, Depends(require_roles("admin"))]
ModeratorUser = Annotated[User, Depends(require_roles("moderator", "admin"))]
CreatorUser = Annotated[User, Depends(require_roles("creator", "admin"))]
