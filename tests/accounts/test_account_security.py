"""Email verification and password reset (through a real SMTP server), password change, devices,
two-factor authentication and creator applications, through the HTTP API."""

from __future__ import annotations

import queue
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from sqlalchemy import select, update

from halobuzz.accounts import service
from halobuzz.accounts.models import AuthSession, OneTimeToken, RecoveryCode, User
from halobuzz.core.security import token_hash
from tests.accounts.conftest import (
    API,
    SESSIONS,
    audit_rows,
    bearer,
    body_of,
    link_token,
    login,
    otp_at,
    register,
    signed_up,
    stored_user,
    wait_until,
)
from tests.conftest import PASSWORD, assert_error, client_for

VERIFY = f"{API}/auth/verify-email"
RESEND = f"{API}/auth/resend-verification"
RESET_REQUEST = f"{API}/auth/password-reset/request"
RESET_CONFIRM = f"{API}/auth/password-reset/confirm"
PASSWORD_CHANGE = f"{API}/users/me/password"
TWO_FA = f"{API}/users/me/2fa"
CREATOR = f"{API}/users/me/creator"
NEW_PASSWORD = "Quiet-Lantern-47-Harbor"


async def expire_tokens(app, user_id) -> None:
    async with app.runtime.db.session() as s:
        await s.execute(
            update(OneTimeToken)
            .where(OneTimeToken.user_id == user_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


# --- email verification ------------------------------------------------------------------------


async def test_registration_mails_a_verification_link_that_works_once(mail_app, smtp_server):
    async with client_for(mail_app) as c:
        r = await register(c, "Mail_Reader", email="Mail.Reader@Example.com")
        assert r.status_code == 201, r.text
        message = await smtp_server.next_message()
        assert message["To"] == "mail.reader@example.com"
        assert message["X-Envelope-To"] == "mail.reader@example.com"
        assert "no-reply@halobuzz.local" in message["From"]
        assert "Confirm your email" in message["Subject"]
        text = body_of(message)
        assert "https://halobuzz.example/verify-email?token=" in text
        assert "Mail_Reader" in text
        token = link_token(text, "verify-email")

        # Only a hash of the token is stored.
        user = await stored_user(mail_app, "mail_reader")
        async with mail_app.runtime.db.session(write=False) as s:
            row = (await s.execute(select(OneTimeToken).where(OneTimeToken.user_id == user.id))).scalar_one()
        assert row.token_hash == token_hash(token) and row.purpose == "verify_email"
        assert row.expires_at - row.created_at == pytest.approx(timedelta(hours=24), abs=timedelta(seconds=5))

        r = await c.post(VERIFY, json={"token": token})
        assert r.status_code == 200, r.text
        assert r.json() == {"email": "mail.reader@example.com", "email_verified": True}
        assert (await stored_user(mail_app, "mail_reader")).email_verified_at is not None
        assert_error(await c.post(VERIFY, json={"token": token}), 400, "token_used")
        assert_error(await c.post(VERIFY, json={"token": "made-up-token"}), 400, "invalid_token")


async def test_verification_links_expire_and_can_be_sent_again(mail_app, smtp_server):
    async with client_for(mail_app) as c:
        name, tokens = await signed_up(c)
        first = link_token(body_of(await smtp_server.next_message()), "verify-email")
        user = await stored_user(mail_app, name)
        await expire_tokens(mail_app, user.id)
        assert_error(await c.post(VERIFY, json={"token": first}), 400, "token_expired")

        r = await c.post(RESEND, headers=bearer(tokens))
        assert r.status_code == 202, r.text
        assert user.email in r.json()["message"]
        second = link_token(body_of(await smtp_server.next_message()), "verify-email")
        assert second != first

        # A newer link replaces an older one that has not expired yet.
        assert (await c.post(RESEND, headers=bearer(tokens))).status_code == 202
        third = link_token(body_of(await smtp_server.next_message()), "verify-email")
        assert_error(await c.post(VERIFY, json={"token": second}), 400, "token_used")
        assert (await c.post(VERIFY, json={"token": third})).status_code == 200
        assert_error(await c.post(RESEND, headers=bearer(tokens)), 409, "email_already_verified")
        assert_error(await c.post(RESEND), 401, "not_authenticated")


async def test_verification_mails_are_limited_per_hour(client):
    _, tokens = await signed_up(client)
    for _ in range(service.VERIFICATION_MAILS_PER_HOUR):
        assert (await client.post(RESEND, headers=bearer(tokens))).status_code == 202
    r = await client.post(RESEND, headers=bearer(tokens))
    assert_error(r, 429, "too_many_mails")
    assert int(r.headers["retry-after"]) >= 1


@pytest.mark.parametrize("body", [{}, {"token": ""}, {"token": "t" * 513}, {"token": 5}, {"token": "x", "extra": 1}])
async def test_verify_email_refuses_bad_input(client, body):
    assert_error(await client.post(VERIFY, json=body), 422, "invalid_input")


async def test_without_smtp_mails_are_written_as_eml_files(client, app):
    r = await register(client, "file_reader")
    assert r.status_code == 201
    mail_dir = app.runtime.settings.data_dir / "mail"
    await wait_until(lambda: mail_dir.is_dir() and any(mail_dir.glob("*.eml")))
    [path] = list(mail_dir.glob("*.eml"))
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["To"] == "file_reader@example.com"
    text = body_of(message)
    link = next(line for line in text.splitlines() if "/verify-email?token=" in line)
    assert link.startswith(app.runtime.settings.auth.public_url)
    token = parse_qs(urlparse(link).query)["token"][0]
    assert (await client.post(VERIFY, json={"token": token})).status_code == 200


# --- password reset ----------------------------------------------------------------------------


async def test_password_reset_by_mail_signs_out_everywhere(mail_app, smtp_server):
    async with client_for(mail_app) as c:
        name, tokens = await signed_up(c)
        await smtp_server.next_message()  # the verification mail

        # Unknown addresses get the same answer and no mail.
        unknown = await c.post(RESET_REQUEST, json={"email": "nobody-here@example.com"})
        known = await c.post(RESET_REQUEST, json={"email": f"{name.upper()}@EXAMPLE.COM"})
        assert unknown.status_code == known.status_code == 202
        assert unknown.json() == known.json()
        message = await smtp_server.next_message()
        assert message["To"] == f"{name}@example.com"
        assert message["Subject"] == "Reset your HaloBuzz password"
        token = link_token(body_of(message), "reset-password")

        # A weak password is refused and leaves the token usable.
        err = assert_error(await c.post(RESET_CONFIRM, json={"token": token, "new_password": "tooshort"}), 422)
        assert err["code"] == "weak_password" and err["details"][0]["field"] == "new_password"
        r = await c.post(RESET_CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})
        assert r.status_code == 204, r.text
        assert_error(
            await c.post(RESET_CONFIRM, json={"token": token, "new_password": NEW_PASSWORD}), 400, "token_used"
        )

        assert_error(await c.get(SESSIONS, headers=bearer(tokens)), 401, "session_revoked")
        assert_error(await login(c, name), 401, "invalid_credentials")
        assert (await login(c, name, NEW_PASSWORD)).status_code == 200
        notice = await smtp_server.next_message()
        assert notice["Subject"] == "Your HaloBuzz password was changed"
        # Following the mailed link proved the address.
        assert (await stored_user(mail_app, name)).email_verified_at is not None
        assert smtp_server.inbox.empty()
        [row] = await audit_rows(mail_app, action="auth.password_reset")
        assert row.details == {"sessions_revoked": 1}


async def test_password_reset_links_expire(mail_app, smtp_server):
    async with client_for(mail_app) as c:
        name, _ = await signed_up(c)
        verification = link_token(body_of(await smtp_server.next_message()), "verify-email")
        assert (await c.post(RESET_REQUEST, json={"email": f"{name}@example.com"})).status_code == 202
        token = link_token(body_of(await smtp_server.next_message()), "reset-password")
        await expire_tokens(mail_app, (await stored_user(mail_app, name)).id)
        assert_error(
            await c.post(RESET_CONFIRM, json={"token": token, "new_password": NEW_PASSWORD}), 400, "token_expired"
        )
        # A verification token is no reset token; a made-up one is nothing.
        for other in (verification, "made-up-token"):
            assert_error(
                await c.post(RESET_CONFIRM, json={"token": other, "new_password": NEW_PASSWORD}), 400, "invalid_token"
            )


async def test_password_reset_mails_are_limited_per_address(mail_app, smtp_server):
    async with client_for(mail_app) as c:
        name, _ = await signed_up(c)
        await smtp_server.next_message()
        for _ in range(service.RESET_MAILS_PER_HOUR + 2):
            assert (await c.post(RESET_REQUEST, json={"email": f"{name}@example.com"})).status_code == 202
        for _ in range(service.RESET_MAILS_PER_HOUR):
            await smtp_server.next_message()
        # Mails go out after commit; one more request flushes the mail queue behind the others.
        await register(c, "last_one")
        last = await smtp_server.next_message()
        assert last["To"] == "last_one@example.com"
        with pytest.raises(queue.Empty):
            smtp_server.inbox.get_nowait()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (RESET_REQUEST, {}),
        (RESET_REQUEST, {"email": "not-an-email"}),
        (RESET_CONFIRM, {"token": "abc"}),
        (RESET_CONFIRM, {"new_password": NEW_PASSWORD}),
        (RESET_CONFIRM, {"token": "", "new_password": NEW_PASSWORD}),
        (RESET_CONFIRM, {"token": "abc", "new_password": "p" * 257}),
    ],
)
async def test_password_reset_refuses_bad_input(client, path, body):
    assert_error(await client.post(path, json=body), 422, "invalid_input")


# --- password change ---------------------------------------------------------------------------


async def test_password_change_keeps_this_session_and_ends_the_others(client, app):
    name, here = await signed_up(client)
    elsewhere = (await login(client, name)).json()
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}

    assert_error(
        await client.post(PASSWORD_CHANGE, headers=bearer(here), json={**body, "current_password": "Wrong-One-123"}),
        403,
        "invalid_password",
    )
    err = assert_error(
        await client.post(PASSWORD_CHANGE, headers=bearer(here), json={**body, "new_password": "qwertyuiop"}),
        422,
        "weak_password",
    )
    assert err["details"][0]["field"] == "new_password"
    assert_error(
        await client.post(PASSWORD_CHANGE, headers=bearer(here), json={**body, "new_password": PASSWORD}),
        422,
        "password_unchanged",
    )
    assert_error(await client.post(PASSWORD_CHANGE, json=body), 401, "not_authenticated")
    assert_error(await client.post(PASSWORD_CHANGE, headers=bearer(here), json={"new_password": NEW_PASSWORD}), 422)
    # Nothing changed so far.
    assert (await client.get(SESSIONS, headers=bearer(elsewhere))).status_code == 200

    r = await client.post(PASSWORD_CHANGE, headers=bearer(here), json=body)
    assert r.status_code == 204, r.text
    assert (await client.get(SESSIONS, headers=bearer(here))).status_code == 200
    assert_error(await client.get(SESSIONS, headers=bearer(elsewhere)), 401, "session_revoked")
    assert_error(await client.post(f"{API}/auth/refresh", json={"refresh_token": elsewhere["refresh_token"]}), 401)
    assert_error(await login(client, name), 401, "invalid_credentials")
    assert (await login(client, name, NEW_PASSWORD)).status_code == 200
    user = await stored_user(app, name)
    assert user.password_changed_at is not None
    [row] = await audit_rows(app, action="account.password.change")
    assert row.actor_id == user.id and row.details == {"sessions_revoked": 1}


async def test_guessing_the_current_password_is_throttled(app_factory):
    throttled = await app_factory(auth={"max_failed_logins_per_hour": 2, "login_delay_after_failures": 100})
    async with client_for(throttled) as c:
        _, tokens = await signed_up(c)
        body = {"current_password": "Wrong-One-123", "new_password": NEW_PASSWORD}
        for _ in range(2):
            assert_error(await c.post(PASSWORD_CHANGE, headers=bearer(tokens), json=body), 403, "invalid_password")
        r = await c.post(PASSWORD_CHANGE, headers=bearer(tokens), json={**body, "current_password": PASSWORD})
        assert_error(r, 429, "too_many_login_attempts")
        assert "retry-after" in r.headers


# --- devices (sign-in sessions) ------------------------------------------------------------------


async def test_sessions_list_and_revoke(client, app):
    name, here = await signed_up(client)
    phone = (
        await client.post(
            f"{API}/auth/login",
            json={"login": name, "password": PASSWORD},
            headers={"User-Agent": "HaloBuzz-Android/2.1"},
        )
    ).json()
    ended = (await login(client, name)).json()
    assert (await client.post(f"{API}/auth/logout", headers=bearer(ended))).status_code == 204

    r = await client.get(SESSIONS, headers=bearer(here))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["next_cursor"] is None
    items = body["items"]
    assert len(items) == 2  # the ended session is not listed
    assert set(items[0]) == {"id", "device", "ip", "created_at", "last_seen_at", "current"}
    assert items[0]["device"] == "HaloBuzz-Android/2.1" and items[0]["current"] is False
    assert items[1]["current"] is True and items[1]["ip"] == "127.0.0.1"

    # Pages follow the cursor.
    r = await client.get(SESSIONS, headers=bearer(here), params={"limit": 1})
    first_page = r.json()
    assert len(first_page["items"]) == 1 and first_page["next_cursor"]
    r = await client.get(SESSIONS, headers=bearer(here), params={"limit": 1, "cursor": first_page["next_cursor"]})
    assert [i["id"] for i in r.json()["items"]] == [items[1]["id"]] and r.json()["next_cursor"] is None

    # Sign the phone out.
    phone_id = items[0]["id"]
    r = await client.delete(f"{SESSIONS}/{phone_id}", headers=bearer(here))
    assert r.status_code == 204, r.text
    assert_error(await client.get(SESSIONS, headers=bearer(phone)), 401, "session_revoked")
    assert [i["id"] for i in (await client.get(SESSIONS, headers=bearer(here))).json()["items"]] == [items[1]["id"]]
    async with app.runtime.db.session(write=False) as s:
        grant = await s.get(AuthSession, uuid.UUID(phone_id))
    assert grant is not None and grant.revoke_reason == "revoked_by_user"
    assert len(await audit_rows(app, action="account.session.revoke")) == 1

    # Someone else's session is not found; neither is a made-up one.
    _, stranger = await signed_up(client)
    assert_error(
        await client.delete(f"{SESSIONS}/{items[1]['id']}", headers=bearer(stranger)), 404, "session_not_found"
    )
    assert_error(
        await client.delete(f"{SESSIONS}/00000000-0000-7000-8000-000000000000", headers=bearer(here)),
        404,
        "session_not_found",
    )
    assert (await client.get(SESSIONS, headers=bearer(here))).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", SESSIONS, {"limit": 0}),
        ("GET", SESSIONS, {"limit": 101}),
        ("GET", SESSIONS, {"cursor": "not-a-cursor"}),
        ("DELETE", f"{SESSIONS}/not-a-uuid", {}),
    ],
)
async def test_sessions_refuse_bad_input(client, method, path, params):
    _, tokens = await signed_up(client)
    r = await client.request(method, path, params=params, headers=bearer(tokens))
    assert_error(r, 422)


async def test_account_routes_need_a_signed_in_user(client):
    for method, path in [
        ("GET", SESSIONS),
        ("DELETE", f"{SESSIONS}/00000000-0000-7000-8000-000000000000"),
        ("POST", f"{TWO_FA}/setup"),
        ("POST", f"{TWO_FA}/confirm"),
        ("POST", f"{TWO_FA}/disable"),
        ("POST", CREATOR),
        ("POST", PASSWORD_CHANGE),
    ]:
        assert_error(await client.request(method, path), 401, "not_authenticated")


# --- two-factor authentication ---------------------------------------------------------------------


async def enrol(client, tokens) -> tuple[str, list[str]]:
    r = await client.post(f"{TWO_FA}/setup", headers=bearer(tokens))
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = await client.post(f"{TWO_FA}/confirm", headers=bearer(tokens), json={"otp": pyotp.TOTP(secret).now()})
    assert r.status_code == 200, r.text
    return secret, r.json()["recovery_codes"]


def _wrong_code(secret: str) -> str:
    valid = {otp_at(secret, k) for k in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


async def test_two_factor_enrolment_and_sign_in(client, app):
    name, tokens = await signed_up(client)
    r = await client.post(f"{TWO_FA}/setup", headers=bearer(tokens))
    assert r.status_code == 200, r.text
    setup = r.json()
    secret = setup["secret"]
    uri = urlparse(setup["otpauth_uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert parse_qs(uri.query)["issuer"] == ["HaloBuzz"] and parse_qs(uri.query)["secret"] == [secret]
    assert f"{name}%40example.com" in setup["otpauth_uri"] or f"{name}@example.com" in setup["otpauth_uri"]
    # Not on until confirmed.
    assert (await login(client, name)).status_code == 200
    assert (await stored_user(app, name)).totp_enabled_at is None

    assert_error(
        await client.post(f"{TWO_FA}/confirm", headers=bearer(tokens), json={"otp": _wrong_code(secret)}),
        403,
        "invalid_otp",
    )
    r = await client.post(f"{TWO_FA}/confirm", headers=bearer(tokens), json={"otp": otp_at(secret, 0)})
    assert r.status_code == 200, r.text
    codes = r.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(len(c) == 11 and c[5] == "-" for c in codes)
    user = await stored_user(app, name)
    assert user.totp_enabled_at is not None
    async with app.runtime.db.session(write=False) as s:
        stored = list(
            (await s.execute(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id))).scalars()
        )
    assert len(stored) == 10 and not set(codes) & set(stored)  # only hashes are kept
    assert_error(await client.post(f"{TWO_FA}/setup", headers=bearer(tokens)), 409, "two_factor_already_enabled")
    assert_error(
        await client.post(f"{TWO_FA}/confirm", headers=bearer(tokens), json={"otp": otp_at(secret, 1)}),
        409,
        "two_factor_already_enabled",
    )

    # Signing in now needs the second factor.
    assert_error(await login(client, name), 401, "otp_required")
    assert_error(await login(client, name, otp=_wrong_code(secret)), 401, "invalid_otp")
    assert_error(await login(client, name, "Wrong-Password-123", otp=otp_at(secret, 1)), 401, "invalid_credentials")
    code = otp_at(secret, 1)
    assert (await login(client, name, otp=code)).status_code == 200
    # A code works once.
    assert_error(await login(client, name, otp=code), 401, "invalid_otp")

    # A recovery code stands in for the code, once.
    r = await login(client, name, otp=codes[0].upper())
    assert r.status_code == 200, r.text
    assert_error(await login(client, name, otp=codes[0]), 401, "invalid_otp")
    assert (await login(client, name, otp=codes[1].replace("-", ""))).status_code == 200
    failed = await audit_rows(app, action="auth.login", result="failed")
    assert sorted(row.details["reason"] for row in failed) == [
        "invalid_credentials",
        "invalid_otp",
        "invalid_otp",
        "invalid_otp",
    ]
    assert len(await audit_rows(app, action="account.2fa.enable")) == 1


async def test_two_factor_disable_needs_password_and_code(client, app):
    name, tokens = await signed_up(client)
    secret, codes = await enrol(client, tokens)
    disable = f"{TWO_FA}/disable"
    assert_error(
        await client.post(disable, headers=bearer(tokens), json={"password": "Wrong-One-123", "otp": codes[0]}),
        403,
        "invalid_password",
    )
    assert_error(
        await client.post(disable, headers=bearer(tokens), json={"password": PASSWORD, "otp": _wrong_code(secret)}),
        403,
        "invalid_otp",
    )
    assert_error(await client.post(disable, headers=bearer(tokens), json={"password": PASSWORD}), 422, "invalid_input")
    r = await client.post(disable, headers=bearer(tokens), json={"password": PASSWORD, "otp": otp_at(secret, 1)})
    assert r.status_code == 204, r.text
    user = await stored_user(app, name)
    assert user.totp_enabled_at is None and user.totp_secret is None
    async with app.runtime.db.session(write=False) as s:
        assert (await s.execute(select(RecoveryCode).where(RecoveryCode.user_id == user.id))).first() is None
    assert (await login(client, name)).status_code == 200
    assert_error(
        await client.post(disable, headers=bearer(tokens), json={"password": PASSWORD, "otp": codes[1]}),
        409,
        "two_factor_not_enabled",
    )
    [row] = await audit_rows(app, action="account.2fa.disable")
    assert row.details == {"method": "totp"}

    # Disabling with a recovery code works too.
    secret, codes = await enrol(client, tokens)
    r = await client.post(disable, headers=bearer(tokens), json={"password": PASSWORD, "otp": codes[3]})
    assert r.status_code == 204, r.text


async def test_two_factor_confirm_needs_a_setup_first(client):
    _, tokens = await signed_up(client)
    assert_error(
        await client.post(f"{TWO_FA}/confirm", headers=bearer(tokens), json={"otp": "123456"}),
        409,
        "two_factor_not_set_up",
    )
    for body in ({}, {"otp": ""}, {"otp": "1" * 33}, {"otp": 123456}):
        assert_error(await client.post(f"{TWO_FA}/confirm", headers=bearer(tokens), json=body), 422, "invalid_input")


# --- creators ----------------------------------------------------------------------------------


async def test_creator_application_is_approved_at_once_by_default(client, app):
    _, tokens = await signed_up(client)
    r = await client.post(CREATOR, headers=bearer(tokens))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["creator_status"] == "approved" and body["roles"] == ["user", "creator"]
    assert_error(await client.post(CREATOR, headers=bearer(tokens)), 409, "already_creator")
    # The role reaches the access token on the next refresh (checks use the stored user already).
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert app.runtime.jwt.decode_access(r.json()["access_token"]).roles == ("user", "creator")
    [row] = await audit_rows(app, action="account.creator.apply")
    assert row.details == {"creator_status": "approved"}


async def test_creator_application_can_wait_for_an_administrator(app_factory, make_user):
    approving = await app_factory(auth={"creator_requires_approval": True})
    async with client_for(approving) as c:
        name, tokens = await signed_up(c)
        r = await c.post(CREATOR, headers=bearer(tokens))
        assert r.status_code == 202, r.text
        assert r.json()["creator_status"] == "pending" and r.json()["roles"] == ["user"]
        assert_error(await c.post(CREATOR, headers=bearer(tokens)), 409, "creator_application_pending")

        admin = await make_user(roles=["admin"])
        user = await stored_user(approving, name)
        async with approving.runtime.db.session() as s:
            actor = await s.get(User, admin.id)
            decided = await service.approve_creator(
                session=s, actor=actor, user_id=user.id, approve=False, reason="thin"
            )
            assert decided.creator_status == "rejected"
        # A rejected applicant may apply again.
        assert (await c.post(CREATOR, headers=bearer(tokens))).status_code == 202
        async with approving.runtime.db.session() as s:
            actor = await s.get(User, admin.id)
            decided = await service.approve_creator(session=s, actor=actor, user_id=user.id, approve=True)
            assert decided.roles == ["user", "creator"]
        stored = await stored_user(approving, name)
        assert stored.creator_status == "approved" and stored.has_role("creator")
        actions = [row.action for row in await audit_rows(approving, target_id=str(user.id))]
        assert actions.count("account.creator.apply") == 2
        assert "admin.user.creator.reject" in actions and "admin.user.creator.approve" in actions
