"""Sign-up, sign-in, throttling, token rotation, logout and access-token checks through the HTTP API."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from argon2 import extract_parameters
from sqlalchemy import func, select, update

from halobuzz.accounts.models import AuthSession, RefreshToken, User
from halobuzz.accounts.throttle import account_key
from tests.accounts.conftest import (
    API,
    SESSIONS,
    audit_rows,
    bearer,
    free_port,
    login,
    register,
    signed_up,
    stored_user,
)
from tests.conftest import PASSWORD, assert_error, client_for

REGISTER = f"{API}/auth/register"
REFRESH = f"{API}/auth/refresh"
LOGOUT = f"{API}/auth/logout"

ME_FIELDS = {
    "id",
    "username",
    "display_name",
    "bio",
    "avatar_url",
    "country",
    "language",
    "roles",
    "follower_count",
    "following_count",
    "created_at",
    "email",
    "phone",
    "timezone",
    "email_verified",
    "two_factor_enabled",
    "creator_status",
    "status",
}


async def user_count(app) -> int:
    async with app.runtime.db.session(write=False) as s:
        return int((await s.execute(select(func.count()).select_from(User))).scalar_one())


async def set_user(app, username: str, **values) -> None:
    async with app.runtime.db.session() as s:
        await s.execute(update(User).where(User.username_key == username.lower()).values(**values))


# --- registration --------------------------------------------------------------------------------


async def test_register_creates_the_account_and_returns_the_own_view(client, app):
    r = await client.post(
        REGISTER,
        json={
            "username": "Night_Owl",
            "email": "Night.Owl@Example.COM",
            "password": PASSWORD,
            "phone": "+9779812345678",
            "display_name": "  Night Owl  ",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == ME_FIELDS
    assert body["username"] == "Night_Owl"
    assert body["email"] == "night.owl@example.com"
    assert body["phone"] == "+9779812345678"
    assert body["display_name"] == "Night Owl"
    assert body["roles"] == ["user"]
    assert body["email_verified"] is False
    assert body["two_factor_enabled"] is False
    assert body["creator_status"] == "none"
    assert body["status"] == "active"
    assert body["follower_count"] == body["following_count"] == 0

    user = await stored_user(app, "night_owl")
    assert str(user.id) == body["id"]
    assert user.username_key == "night_owl"
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    [row] = await audit_rows(app, action="auth.register")
    assert row.actor_id == user.id and row.result == "ok"

    # The display name defaults to the username; the phone is optional.
    r = await register(client, "plain_user")
    assert r.status_code == 201, r.text
    assert r.json()["display_name"] == "plain_user"
    assert r.json()["phone"] is None


def _body(**over):
    return {"username": "someone_new", "email": "someone@example.com", "password": PASSWORD, **over}


BAD_REGISTRATIONS = [
    # (body, error code, field named in details)
    (_body(password="short-pw"), "weak_password", "password"),
    (_body(password="password1234"), "weak_password", "password"),
    (_body(username="someone_new1", password="someone_new1"), "weak_password", "password"),
    (_body(username="longer_username1", password="Longer_Username1"), "weak_password", "password"),
    (_body(email="tricky.person@example.com", password="tricky.person@example.com"), "weak_password", "password"),
    (_body(username="ab"), "invalid_input", "username"),
    (_body(username="a" * 31), "invalid_input", "username"),
    (_body(username="bad-name"), "invalid_input", "username"),
    (_body(username="with space"), "invalid_input", "username"),
    (_body(username="naïve_name"), "invalid_input", "username"),
    (_body(username=12345), "invalid_input", "username"),
    (_body(email="not-an-email"), "invalid_input", "email"),
    (_body(email="someone@"), "invalid_input", "email"),
    (_body(email="@example.com"), "invalid_input", "email"),
    (_body(email="two@@example.com"), "invalid_input", "email"),
    (_body(email="nul\x00@example.com"), "invalid_input", "email"),
    (_body(phone="9812345678"), "invalid_input", "phone"),
    (_body(phone="+0123456789"), "invalid_input", "phone"),
    (_body(phone="+1234567890123456"), "invalid_input", "phone"),
    (_body(phone="+977-981-234"), "invalid_input", "phone"),
    (_body(display_name=""), "invalid_input", "display_name"),
    (_body(display_name="x" * 61), "invalid_input", "display_name"),
    (_body(display_name="bell\x07"), "invalid_input", "display_name"),
    (_body(password="p" * 257), "invalid_input", "password"),
    (_body(role="admin"), "invalid_input", "role"),
    ({"username": "someone_new", "password": PASSWORD}, "invalid_input", "email"),
    ({"email": "someone@example.com", "password": PASSWORD}, "invalid_input", "username"),
    ({"username": "someone_new", "email": "someone@example.com"}, "invalid_input", "password"),
]


@pytest.mark.parametrize(("body", "code", "field"), BAD_REGISTRATIONS)
async def test_register_refuses_bad_input_and_stores_nothing(client, app, body, code, field):
    err = assert_error(await client.post(REGISTER, json=body), 422, code)
    assert field in err["message"]
    assert any(d["field"] == field for d in err["details"]), err
    assert await user_count(app) == 0


async def test_register_password_policy_messages_are_actionable(client):
    err = assert_error(await client.post(REGISTER, json=_body(password="short-pw")), 422, "weak_password")
    assert err["message"] == "password must be at least 10 characters long"
    assert err["details"][0]["type"] == "too_short"
    err = assert_error(await client.post(REGISTER, json=_body(password="password1234")), 422, "weak_password")
    assert "common" in err["message"] and err["details"][0]["type"] == "too_common"
    err = assert_error(
        await client.post(REGISTER, json=_body(email="someone@example.com", password="SOMEONE@example.com")),
        422,
        "weak_password",
    )
    assert err["details"][0]["type"] == "matches_account"


async def test_register_refuses_non_json_bodies(client, app):
    assert_error(await client.post(REGISTER, content=b"not json", headers={"content-type": "application/json"}), 422)
    assert_error(await client.post(REGISTER, json=["a", "list"]), 422)
    assert_error(await client.post(REGISTER), 422)
    assert await user_count(app) == 0


async def test_register_duplicates_conflict_ignoring_case(client, app):
    assert (await register(client, "Taken_Name")).status_code == 201
    err = assert_error(
        await client.post(REGISTER, json=_body(username="taken_NAME", email="other@example.com")),
        409,
        "username_taken",
    )
    assert "username" in err["message"]
    assert_error(
        await client.post(REGISTER, json=_body(username="fresh_name", email="TAKEN_name@EXAMPLE.com")),
        409,
        "email_taken",
    )
    assert await user_count(app) == 1


async def test_racing_registrations_create_exactly_one_account(client, app):
    async def attempt(i: int):
        return await client.post(REGISTER, json=_body(username="racer", email=f"racer{i}@example.com"))

    responses = await asyncio.gather(*(attempt(i) for i in range(5)))
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    for r in responses:
        if r.status_code == 409:
            assert_error(r, 409, "username_taken")

    responses = await asyncio.gather(
        *(client.post(REGISTER, json=_body(username=f"mail_racer{i}", email="same@example.com")) for i in range(4))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert await user_count(app) == 2


# --- sign-in -------------------------------------------------------------------------------------


async def test_login_by_username_or_email_returns_a_token_pair(client, app):
    assert (await register(client, "Sky_Walker")).status_code == 201
    for name in ("Sky_Walker", "sky_walker", "SKY_WALKER@example.com", "  sky_walker "):
        r = await login(client, name)
        assert r.status_code == 200, (name, r.text)
        body = r.json()
        assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == app.runtime.settings.auth.access_token_ttl_seconds
        claims = app.runtime.jwt.decode_access(body["access_token"])
        assert claims.roles == ("user",)
        assert (await client.get(SESSIONS, headers=bearer(body))).status_code == 200

    user = await stored_user(app, "sky_walker")
    async with app.runtime.db.session(write=False) as s:
        sessions = list((await s.execute(select(AuthSession).where(AuthSession.user_id == user.id))).scalars())
    assert len(sessions) == 4
    assert all(g.device.startswith("python-httpx") and g.ip == "127.0.0.1" for g in sessions)
    for g in sessions:
        assert g.expires_at - g.created_at == timedelta(days=30)
    ok = await audit_rows(app, action="auth.login", result="ok")
    assert len(ok) == 4 and all(row.actor_id == user.id for row in ok)


async def test_unknown_user_and_wrong_password_fail_alike(client, app):
    await register(client, "real_person")
    wrong = await login(client, "real_person", "Wrong-Password-123")
    unknown = await login(client, "nobody_here", "Wrong-Password-123")
    unknown_mail = await login(client, "nobody@example.com", "Wrong-Password-123")
    bodies = [assert_error(r, 401, "invalid_credentials") for r in (wrong, unknown, unknown_mail)]
    assert len({(b["code"], b["message"], str(b["details"])) for b in bodies}) == 1

    # Each failure is audited although the request answered 401 (its own transaction).
    failed = await audit_rows(app, action="auth.login", result="failed")
    assert len(failed) == 3
    user = await stored_user(app, "real_person")
    assert [row.actor_id for row in failed] == [user.id, None, None]
    assert all(row.details == {"reason": "invalid_credentials"} for row in failed)
    assert all(row.ip == "127.0.0.1" for row in failed)


@pytest.mark.parametrize(
    "body",
    [
        {"login": "someone"},
        {"password": PASSWORD},
        {"login": "", "password": PASSWORD},
        {"login": "   ", "password": PASSWORD},
        {"login": "someone", "password": ""},
        {"login": "x" * 255, "password": PASSWORD},
        {"login": "nul\x00byte", "password": PASSWORD},
        {"login": "someone", "password": PASSWORD, "otp": ""},
        {"login": "someone", "password": PASSWORD, "otp": "1" * 33},
        {"login": ["someone"], "password": PASSWORD},
        {"login": "someone", "password": PASSWORD, "remember": True},
    ],
)
async def test_login_refuses_bad_input(client, body):
    assert_error(await client.post(f"{API}/auth/login", json=body), 422, "invalid_input")


async def test_suspended_and_banned_users_cannot_sign_in(client, app):
    for name in ("on_hold", "banned_one", "back_again"):
        await register(client, name)
    until = datetime.now(UTC) + timedelta(days=2)
    await set_user(app, "on_hold", status="suspended", suspended_until=until)
    await set_user(app, "banned_one", status="banned")
    await set_user(app, "back_again", status="suspended", suspended_until=datetime.now(UTC) - timedelta(minutes=1))

    # A wrong password tells nothing about the status.
    for name in ("on_hold", "banned_one"):
        assert_error(await login(client, name, "Wrong-Password-123"), 401, "invalid_credentials")
    err = assert_error(await login(client, "on_hold"), 403, "account_suspended")
    assert err["details"]["suspended_until"] == until.isoformat()
    assert_error(await login(client, "banned_one"), 403, "account_banned")
    # A suspension that has ended no longer stops sign-in.
    assert (await login(client, "back_again")).status_code == 200
    refused = await audit_rows(app, action="auth.login", result="refused")
    assert sorted(row.details["reason"] for row in refused) == ["account_banned", "account_suspended"]


async def test_deleted_accounts_sign_in_like_unknown_ones(client, app):
    await register(client, "gone_user")
    await set_user(app, "gone_user", status="deleted")
    assert_error(await login(client, "gone_user"), 401, "invalid_credentials")


async def test_login_rehashes_passwords_made_with_older_argon2_parameters(app_factory):
    old = await app_factory(auth={"argon2_time_cost": 1, "argon2_memory_kib": 1024})
    async with client_for(old) as c:
        assert (await register(c, "rehash_me")).status_code == 201
    before = (await stored_user(old, "rehash_me")).password_hash
    assert extract_parameters(before).time_cost == 1

    new = await app_factory(auth={"argon2_time_cost": 2, "argon2_memory_kib": 2048})
    async with client_for(new) as c:
        assert (await login(c, "rehash_me")).status_code == 200
        after = (await stored_user(new, "rehash_me")).password_hash
        params = extract_parameters(after)
        assert (params.time_cost, params.memory_cost) == (2, 2048)
        assert after != before
        # The upgraded hash still verifies; a second sign-in leaves it alone.
        assert (await login(c, "rehash_me")).status_code == 200
        assert (await stored_user(new, "rehash_me")).password_hash == after


# --- throttling ----------------------------------------------------------------------------------


def assert_throttled(response, *, at_most: int) -> int:
    err = assert_error(response, 429, "too_many_login_attempts")
    retry = int(response.headers["retry-after"])
    assert 1 <= retry <= at_most
    assert err["details"]["retry_after"] == retry
    return retry


async def test_failed_logins_make_the_account_wait_ever_longer(app_factory, app):
    throttled = await app_factory(auth={"login_delay_after_failures": 2, "login_delay_cap_seconds": 30})
    async with client_for(throttled) as c:
        await register(c, "slow_down")
        user = await stored_user(throttled, "slow_down")
        for _ in range(2):
            assert_error(await login(c, "slow_down", "Wrong-Password-123"), 401, "invalid_credentials")
        # Refused before the password is even checked: the right one waits too.
        assert assert_throttled(await login(c, "slow_down"), at_most=1) == 1
        assert assert_throttled(await login(c, "SLOW_DOWN@example.com"), at_most=1) == 1

        wait_key = f"login:wait:{account_key(user_id=user.id, login='')}"
        delays = []
        for _ in range(6):
            await throttled.runtime.kv.delete(wait_key)  # as if the wait had passed
            assert_error(await login(c, "slow_down", "Wrong-Password-123"), 401, "invalid_credentials")
            delays.append(assert_throttled(await login(c, "slow_down"), at_most=30))
        assert delays == [2, 4, 8, 16, 30, 30]

        await throttled.runtime.kv.delete(wait_key)
        assert (await login(c, "slow_down")).status_code == 200


async def test_an_account_gets_a_fixed_number_of_attempts_per_hour(app_factory):
    throttled = await app_factory(auth={"max_failed_logins_per_hour": 3, "login_delay_after_failures": 100})
    async with client_for(throttled) as c:
        await register(c, "capped")
        for _ in range(3):
            assert_error(await login(c, "capped", "Wrong-Password-123"), 401, "invalid_credentials")
        assert_throttled(await login(c, "capped"), at_most=3600)
        assert_throttled(await login(c, "capped@example.com", "Wrong-Password-123"), at_most=3600)

        # Another account from the same address is not affected.
        await register(c, "neighbour")
        assert (await login(c, "neighbour")).status_code == 200


async def test_a_successful_login_resets_the_account_counter(app_factory):
    throttled = await app_factory(auth={"max_failed_logins_per_hour": 3, "login_delay_after_failures": 100})
    async with client_for(throttled) as c:
        await register(c, "forgetful")
        for _round in range(3):
            for _ in range(2):
                assert_error(await login(c, "forgetful", "Wrong-Password-123"), 401, "invalid_credentials")
            assert (await login(c, "forgetful")).status_code == 200


async def test_unknown_accounts_are_throttled_like_real_ones(app_factory):
    throttled = await app_factory(auth={"max_failed_logins_per_hour": 2, "login_delay_after_failures": 100})
    async with client_for(throttled) as c:
        await register(c, "exists_here")
        outcomes = {}
        for name in ("exists_here", "ghost_user"):
            statuses = [(await login(c, name, "Wrong-Password-123")).status_code for _ in range(3)]
            outcomes[name] = statuses
        assert outcomes == {"exists_here": [401, 401, 429], "ghost_user": [401, 401, 429]}


async def test_failed_logins_per_ip_are_capped(app_factory):
    throttled = await app_factory(auth={"max_failed_logins_per_ip_per_hour": 3})
    async with client_for(throttled, ip="10.0.0.7") as attacker, client_for(throttled, ip="10.0.0.8") as other:
        await register(attacker, "ip_victim")
        for name in ("first_try", "second_try", "ip_victim"):
            assert_error(await login(attacker, name, "Wrong-Password-123"), 401, "invalid_credentials")
        assert_throttled(await login(attacker, "fourth_try", "Wrong-Password-123"), at_most=3600)
        assert_throttled(await login(attacker, "ip_victim"), at_most=3600)
        # Other addresses sign in as usual.
        assert (await login(other, "ip_victim")).status_code == 200


# --- refresh tokens ------------------------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_whole_session(client, app):
    name, first = await signed_up(client)
    r = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (await client.get(SESSIONS, headers=bearer(second))).status_code == 200
    claims_1 = app.runtime.jwt.decode_access(first["access_token"])
    claims_2 = app.runtime.jwt.decode_access(second["access_token"])
    assert claims_1.session_id == claims_2.session_id

    # Presenting the used token again: the session is revoked (and that is committed).
    assert_error(
        await client.post(REFRESH, json={"refresh_token": first["refresh_token"]}), 401, "refresh_token_reused"
    )
    async with app.runtime.db.session(write=False) as s:
        grant = await s.get(AuthSession, claims_1.session_id)
    assert grant is not None and grant.revoked_at is not None and grant.revoke_reason == "refresh_reuse"
    [row] = await audit_rows(app, action="auth.refresh_reuse")
    assert row.target_id == str(claims_1.user_id) and row.details == {"session_id": str(claims_1.session_id)}

    # The rotated token of the family and its access token fail too.
    assert_error(await client.post(REFRESH, json={"refresh_token": second["refresh_token"]}), 401, "session_revoked")
    assert_error(await client.get(SESSIONS, headers=bearer(second)), 401, "session_revoked")
    # Other sign-ins of the account are untouched.
    other = (await login(client, name)).json()
    assert (await client.post(REFRESH, json={"refresh_token": other["refresh_token"]})).status_code == 200


async def test_racing_refreshes_let_exactly_one_win(client, app):
    _, tokens = await signed_up(client)
    body = {"refresh_token": tokens["refresh_token"]}
    responses = await asyncio.gather(*(client.post(REFRESH, json=body) for _ in range(3)))
    assert sorted(r.status_code for r in responses) == [200, 401, 401]
    async with app.runtime.db.session(write=False) as s:
        used = (
            await s.execute(select(func.count()).select_from(RefreshToken).where(RefreshToken.used_at.is_not(None)))
        ).scalar_one()
    assert used == 1


async def test_refresh_updates_the_session_but_never_extends_it(app):
    async with client_for(app, ip="192.0.2.10") as first_ip, client_for(app, ip="192.0.2.20") as second_ip:
        _, tokens = await signed_up(first_ip)
        sid = app.runtime.jwt.decode_access(tokens["access_token"]).session_id
        async with app.runtime.db.session(write=False) as s:
            before = await s.get(AuthSession, sid)
        r = await second_ip.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 200, r.text
        async with app.runtime.db.session(write=False) as s:
            after = await s.get(AuthSession, sid)
        assert before is not None and after is not None
        assert (before.ip, after.ip) == ("192.0.2.10", "192.0.2.20")
        assert after.last_seen_at >= before.last_seen_at
        assert after.expires_at == before.expires_at

        # Past its absolute lifetime a session cannot be refreshed.
        async with app.runtime.db.session() as s:
            await s.execute(
                update(AuthSession)
                .where(AuthSession.id == sid)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert_error(
            await second_ip.post(REFRESH, json={"refresh_token": r.json()["refresh_token"]}), 401, "session_expired"
        )


async def test_refresh_is_refused_for_suspended_or_banned_users(client, app):
    for status, extra in (("suspended", {"suspended_until": datetime.now(UTC) + timedelta(days=1)}), ("banned", {})):
        name, tokens = await signed_up(client)
        await set_user(app, name, status=status, **extra)
        assert_error(
            await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]}), 401, f"account_{status}"
        )


@pytest.mark.parametrize(
    "body",
    [{}, {"refresh_token": ""}, {"refresh_token": "x" * 513}, {"refresh_token": 42}, {"token": "abc"}],
)
async def test_refresh_refuses_bad_input(client, body):
    assert_error(await client.post(REFRESH, json=body), 422, "invalid_input")


async def test_refresh_refuses_unknown_tokens(client):
    assert_error(await client.post(REFRESH, json={"refresh_token": "not-a-real-token"}), 401, "invalid_refresh_token")


# --- logout ------------------------------------------------------------------------------------


async def test_logout_ends_the_session_and_its_tokens(client, app):
    name, tokens = await signed_up(client)
    other = (await login(client, name)).json()
    r = await client.post(LOGOUT, headers=bearer(tokens))
    assert r.status_code == 204 and r.content == b""
    assert_error(await client.get(SESSIONS, headers=bearer(tokens)), 401, "session_revoked")
    assert_error(await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]}), 401, "session_revoked")
    assert_error(await client.post(LOGOUT, headers=bearer(tokens)), 401, "session_revoked")
    # The other device is still signed in.
    assert (await client.get(SESSIONS, headers=bearer(other))).status_code == 200
    [row] = await audit_rows(app, action="auth.logout")
    assert row.details["all"] is False and row.details["revoked"] == 1


async def test_logout_everywhere_ends_every_session(client, app):
    name, tokens = await signed_up(client)
    others = [(await login(client, name)).json() for _ in range(2)]
    r = await client.post(LOGOUT, headers=bearer(tokens), json={"all": True})
    assert r.status_code == 204
    for pair in (tokens, *others):
        assert_error(await client.get(SESSIONS, headers=bearer(pair)), 401, "session_revoked")
        assert_error(await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}), 401, "session_revoked")


async def test_logout_needs_a_valid_access_token_and_good_input(client):
    assert_error(await client.post(LOGOUT), 401, "not_authenticated")
    _, tokens = await signed_up(client)
    assert_error(await client.post(LOGOUT, headers=bearer(tokens), json={"all": "yes"}), 422, "invalid_input")
    assert_error(await client.post(LOGOUT, headers=bearer(tokens), json={"everything": True}), 422, "invalid_input")


# --- access tokens -----------------------------------------------------------------------------


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def test_only_genuine_current_access_tokens_are_accepted(client, app):
    _, tokens = await signed_up(client)
    settings = app.runtime.settings.auth
    key = settings.jwt_secret.get_secret_value()
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    now = int(time.time())

    def signed(**changes):
        return jwt.encode({**claims, **changes}, key, algorithm=settings.jwt_algorithm)

    header, payload, signature = tokens["access_token"].split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    forged_payload = _b64({**claims, "roles": ["user", "admin"]})
    bad_tokens = {
        "refresh token as access token": tokens["refresh_token"],
        "tampered signature": f"{header}.{payload}.{flipped}",
        "tampered claims": f"{header}.{forged_payload}.{signature}",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "wrong audience": signed(aud="someone-else"),
        "wrong issuer": signed(iss="evil"),
        "expired": signed(iat=now - 3600, nbf=now - 3600, exp=now - 60),
        "not yet valid": signed(nbf=now + 600),
        "other key": jwt.encode(claims, "another-secret-that-is-long-enough-0123", algorithm="HS256"),
        "wrong type": signed(typ="refresh"),
        "no session": signed(sid="not-a-uuid"),
        "unknown session": signed(sid="00000000-0000-7000-8000-000000000000"),
        "garbage": "abc.def.ghi",
    }
    for label, token in bad_tokens.items():
        r = await client.get(SESSIONS, headers=bearer(token))
        assert r.status_code == 401, (label, r.text)
        assert r.json()["error"]["code"] in {"invalid_token", "session_revoked"}, label
    assert_error(
        await client.get(SESSIONS, headers={"Authorization": f"Token {tokens['access_token']}"}), 401, "invalid_token"
    )
    assert_error(await client.get(SESSIONS), 401, "not_authenticated")
    # The genuine token still works.
    assert (await client.get(SESSIONS, headers=bearer(tokens))).status_code == 200


async def test_sign_in_keeps_working_when_the_limit_store_is_down(app_factory):
    down = await app_factory(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with client_for(down) as c:
        assert (await register(c, "no_redis")).status_code == 201
        assert_error(await login(c, "no_redis", "Wrong-Password-123"), 401, "invalid_credentials")
        assert (await login(c, "no_redis")).status_code == 200
