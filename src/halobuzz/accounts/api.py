"""Routes: /auth and the signed-in user's account settings under /users/me."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from halobuzz.accounts import service
from halobuzz.accounts.deps import CurrentUser
from halobuzz.accounts.models import CreatorStatus, User
from halobuzz.accounts.schemas import (
    AcceptedOut,
    EmailVerifiedOut,
    LoginIn,
    LogoutIn,
    MeOut,
    PasswordChangeIn,
    PasswordResetConfirmIn,
    PasswordResetRequestIn,
    RecoveryCodesOut,
    RefreshIn,
    RegisterIn,
    SessionOut,
    TokenIn,
    TokenOut,
    TotpConfirmIn,
    TotpDisableIn,
    TotpSetupOut,
    me_out,
)
from halobuzz.core.deps import PageDep, RequestMetaDep, RuntimeDep, SessionDep
from halobuzz.core.errors import Unauthorized
from halobuzz.core.pagination import Page
from halobuzz.core.security import TokenError

auth_router = APIRouter(prefix="/auth", tags=["auth"])
account_router = APIRouter(prefix="/users/me", tags=["account"])


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The authenticated user and the sign-in session their access token belongs to."""

    user: User
    session_id: uuid.UUID


async def signed_in(request: Request, user: CurrentUser, runtime: RuntimeDep) -> SignedIn:
    # CurrentUser has verified the token and its session; this only reads the session id back.
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    try:
        claims = runtime.jwt.decode_access(token)
    except TokenError as exc:
        raise Unauthorized("access token is invalid or expired", code="invalid_token") from exc
    return SignedIn(user=user, session_id=claims.session_id)


SignedInDep = Annotated[SignedIn, Depends(signed_in)]


# --- /auth ---------------------------------------------------------------------------------------


@auth_router.post("/register", response_model=MeOut, status_code=201, summary="Create an account")
async def register(body: RegisterIn, session: SessionDep, runtime: RuntimeDep, meta: RequestMetaDep) -> MeOut:
    """Create an account and mail a link that confirms the email address.

    Passwords need at least 10 characters (configurable), must not be a common password and must
    not be the username or email. A taken username (ignoring case) or email gives 409.
    """
    user = await service.register(
        session=session,
        runtime=runtime,
        username=body.username,
        email=body.email,
        password=body.password,
        phone=body.phone,
        display_name=body.display_name,
        ip=meta.ip,
        user_agent=meta.user_agent,
    )
    return me_out(user, runtime.storage)


@auth_router.post("/login", response_model=TokenOut, summary="Sign in with username or email")
async def login(body: LoginIn, session: SessionDep, runtime: RuntimeDep, meta: RequestMetaDep) -> TokenOut:
    """Exchange credentials for an access token and a refresh token.

    Wrong credentials give 401 `invalid_credentials`; with two-factor authentication on, a missing
    code gives 401 `otp_required` and a wrong one `invalid_otp`. Repeated failures are refused
    with 429 and `Retry-After`.
    """
    pair = await service.login(
        session=session,
        runtime=runtime,
        login=body.login,
        password=body.password,
        otp=body.otp,
        ip=meta.ip,
        user_agent=meta.user_agent,
    )
    return TokenOut(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


@auth_router.post("/refresh", response_model=TokenOut, summary="Exchange a refresh token for a new pair")
async def refresh(body: RefreshIn, session: SessionDep, runtime: RuntimeDep, meta: RequestMetaDep) -> TokenOut:
    """Each refresh token works once. Presenting a used one ends the whole sign-in session (401)."""
    pair = await service.refresh(
        session=session, runtime=runtime, refresh_token=body.refresh_token, ip=meta.ip, user_agent=meta.user_agent
    )
    return TokenOut(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


@auth_router.post("/logout", status_code=204, summary="Sign out")
async def logout(
    me: SignedInDep, session: SessionDep, runtime: RuntimeDep, meta: RequestMetaDep, body: LogoutIn | None = None
) -> None:
    """End this sign-in session (`{"all": true}`: every session of the account)."""
    await service.logout(
        session=session,
        runtime=runtime,
        actor=me.user,
        current_session_id=me.session_id,
        everywhere=bool(body and body.all),
        ip=meta.ip,
        user_agent=meta.user_agent,
    )


@auth_router.post("/verify-email", response_model=EmailVerifiedOut, summary="Confirm an email address")
async def verify_email(body: TokenIn, session: SessionDep) -> EmailVerifiedOut:
    """The token comes from the link in the verification mail; it works once."""
    user = await service.verify_email(session=session, token=body.token)
    return EmailVerifiedOut(email=user.email, email_verified=True)


@auth_router.post(
    "/resend-verification", response_model=AcceptedOut, status_code=202, summary="Mail a new verification link"
)
async def resend_verification(user: CurrentUser, session: SessionDep, runtime: RuntimeDep) -> AcceptedOut:
    await service.resend_verification(session=session, runtime=runtime, actor=user)
    return AcceptedOut(message=f"a new verification link is on its way to {user.email}")


@auth_router.post(
    "/password-reset/request", response_model=AcceptedOut, status_code=202, summary="Mail a password-reset link"
)
async def request_password_reset(
    body: PasswordResetRequestIn, session: SessionDep, runtime: RuntimeDep, meta: RequestMetaDep
) -> AcceptedOut:
    """Always 202: the answer does not tell whether an account uses the address."""
    await service.request_password_reset(
        session=session, runtime=runtime, email=body.email, ip=meta.ip, user_agent=meta.user_agent
    )
    return AcceptedOut(message="if an account uses this address, a link to reset its password is on its way")


@auth_router.post("/password-reset/confirm", status_code=204, summary="Choose a new password with a reset link")
async def confirm_password_reset(
    body: PasswordResetConfirmIn, session: SessionDep, runtime: RuntimeDep, meta: RequestMetaDep
) -> None:
    """Sets the new password and signs the account out everywhere."""
    await service.reset_password(
        session=session,
        runtime=runtime,
        token=body.token,
        new_password=body.new_password,
        ip=meta.ip,
        user_agent=meta.user_agent,
    )


# --- /users/me -------------------------------------------------------------------------------------


@account_router.post("/password", status_code=204, summary="Change the password")
async def change_password(
    body: PasswordChangeIn, me: SignedInDep, session: SessionDep, runtime: RuntimeDep, meta: RequestMetaDep
) -> None:
    """Needs the current password; every other sign-in session ends, this one stays."""
    await service.change_password(
        session=session,
        runtime=runtime,
        actor=me.user,
        current_session_id=me.session_id,
        current_password=body.current_password,
        new_password=body.new_password,
        ip=meta.ip,
        user_agent=meta.user_agent,
    )


@account_router.get("/sessions", response_model=Page[SessionOut], summary="Signed-in devices")
async def list_sessions(me: SignedInDep, session: SessionDep, page: PageDep) -> Page[SessionOut]:
    return await service.list_sessions(
        session=session, actor=me.user, current_session_id=me.session_id, limit=page.limit, cursor=page.cursor
    )


@account_router.delete("/sessions/{session_id}", status_code=204, summary="Sign a device out")
async def revoke_session(
    session_id: Annotated[uuid.UUID, Path(description="id from GET /users/me/sessions")],
    user: CurrentUser,
    session: SessionDep,
    runtime: RuntimeDep,
    meta: RequestMetaDep,
) -> None:
    await service.revoke_session(
        session=session, runtime=runtime, actor=user, session_id=session_id, ip=meta.ip, user_agent=meta.user_agent
    )


@account_router.post("/2fa/setup", response_model=TotpSetupOut, summary="Start enrolling an authenticator app")
async def setup_totp(user: CurrentUser, session: SessionDep, runtime: RuntimeDep) -> TotpSetupOut:
    """Returns a new secret; two-factor authentication is on only after POST /users/me/2fa/confirm."""
    secret, uri = await service.setup_totp(session=session, runtime=runtime, actor=user)
    return TotpSetupOut(secret=secret, otpauth_uri=uri)


@account_router.post("/2fa/confirm", response_model=RecoveryCodesOut, summary="Turn two-factor authentication on")
async def confirm_totp(
    body: TotpConfirmIn, user: CurrentUser, session: SessionDep, runtime: RuntimeDep, meta: RequestMetaDep
) -> RecoveryCodesOut:
    """Send a code from the app; returns 10 single-use recovery codes (shown only now)."""
    codes = await service.confirm_totp(
        session=session, runtime=runtime, actor=user, otp=body.otp, ip=meta.ip, user_agent=meta.user_agent
    )
    return RecoveryCodesOut(recovery_codes=codes)


@account_router.post("/2fa/disable", status_code=204, summary="Turn two-factor authentication off")
async def disable_totp(
    body: TotpDisableIn, user: CurrentUser, session: SessionDep, runtime: RuntimeDep, meta: RequestMetaDep
) -> None:
    """Needs the password and a current code (or a recovery code)."""
    await service.disable_totp(
        session=session,
        runtime=runtime,
        actor=user,
        password=body.password,
        otp=body.otp,
        ip=meta.ip,
        user_agent=meta.user_agent,
    )


@account_router.post(
    "/creator",
    response_model=MeOut,
    summary="Apply to become a creator",
    responses={202: {"model": MeOut, "description": "application waiting for an administrator"}},
)
async def apply_for_creator(
    user: CurrentUser, session: SessionDep, runtime: RuntimeDep, meta: RequestMetaDep, response: Response
) -> MeOut:
    """Approved at once (200, role "creator" added) unless the platform requires an administrator's
    approval (202, `creator_status` "pending"). Roles in access tokens update on the next refresh."""
    updated = await service.apply_for_creator(
        session=session, runtime=runtime, actor=user, ip=meta.ip, user_agent=meta.user_agent
    )
    if updated.creator_status == CreatorStatus.PENDING:
        response.status_code = 202
    return me_out(updated, runtime.storage)
