"""Administration through the HTTP API: users, roles, suspensions, bans, creator decisions, audit log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from halobuzz.accounts import auth
from halobuzz.accounts.models import AuthSession, User
from halobuzz.core.audit import AuditLog
from halobuzz.core.errors import Unauthorized
from tests.conftest import assert_error

USERS = "/api/v1/admin/users"
AUDIT = "/api/v1/admin/audit-log"


def future(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def audit_rows(app, **filters) -> list[AuditLog]:
    async with app.runtime.db.session(write=False) as s:
        query = select(AuditLog).order_by(AuditLog.created_at)
        for name, value in filters.items():
            query = query.where(getattr(AuditLog, name) == value)
        return list((await s.execute(query)).scalars())


async def stored_user(app, user_id) -> User:
    async with app.runtime.db.session(write=False) as s:
        return (await s.execute(select(User).where(User.id == user_id))).scalar_one()


async def token_refused(app, token: str) -> str:
    """The error code ``authenticate_access_token`` refuses ``token`` with."""
    async with app.runtime.db.session(write=False) as s:
        with pytest.raises(Unauthorized) as caught:
            await auth.authenticate_access_token(session=s, jwt=app.runtime.jwt, token=token)
    return caught.value.code


async def refresh_refused(app, refresh_token: str) -> str:
    """The error code a refresh with ``refresh_token`` is refused with (nothing is committed)."""
    async with app.runtime.db.session() as s:
        with pytest.raises(Unauthorized) as caught:
            await auth.refresh_session(
                session=s,
                db=app.runtime.db,
                jwt=app.runtime.jwt,
                sessions=app.runtime.sessions,
                refresh_token=refresh_token,
                ip=None,
                user_agent=None,
            )
        await s.rollback()
    return caught.value.code


async def set_creator_status(app, user_id, status: str) -> None:
    async with app.runtime.db.session() as s:
        await s.execute(update(User).where(User.id == user_id).values(creator_status=status))


# --- reading users ----------------------------------------------------------------------------


async def test_list_users_filters_by_prefix_role_and_status(client, make_user):
    admin = await make_user("root_admin", roles=["admin"])
    await make_user("ali_x")
    await make_user("alix")
    bob = await make_user("Bobby", roles=["moderator"])

    r = await client.get(USERS, params={"q": "ALI"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert sorted(u["username"] for u in r.json()["items"]) == ["ali_x", "alix"]

    # LIKE wildcards in q are literal characters.
    r = await client.get(USERS, params={"q": "ali_"}, headers=admin.headers)
    assert [u["username"] for u in r.json()["items"]] == ["ali_x"]

    r = await client.get(USERS, params={"q": "bobby@EXAMPLE"}, headers=admin.headers)
    [item] = r.json()["items"]
    assert item["id"] == str(bob.id)
    assert set(item) == {
        "id",
        "username",
        "email",
        "display_name",
        "roles",
        "status",
        "suspended_until",
        "status_reason",
        "creator_status",
        "created_at",
        "follower_count",
    }
    assert item["email"] == "bobby@example.com" and item["roles"] == ["user", "moderator"]
    assert item["status"] == "active" and item["suspended_until"] is None

    r = await client.get(USERS, params={"role": "moderator"}, headers=admin.headers)
    assert [u["username"] for u in r.json()["items"]] == ["Bobby"]
    r = await client.get(USERS, params={"role": "admin"}, headers=admin.headers)
    assert [u["username"] for u in r.json()["items"]] == ["root_admin"]

    r = await client.post(
        f"{USERS}/{bob.id}/suspend", json={"until": future(days=1), "reason": "spam"}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    r = await client.get(USERS, params={"status": "suspended"}, headers=admin.headers)
    assert [u["username"] for u in r.json()["items"]] == ["Bobby"]
    r = await client.get(USERS, params={"status": "active", "q": "ali"}, headers=admin.headers)
    assert len(r.json()["items"]) == 2

    for params in ({"role": "wizard"}, {"status": "asleep"}, {"limit": 0}, {"limit": 101}, {"q": "x" * 255}):
        assert_error(await client.get(USERS, params=params, headers=admin.headers), 422, "invalid_input")
    assert_error(
        await client.get(USERS, params={"cursor": "not-a-cursor"}, headers=admin.headers), 422, "invalid_cursor"
    )


async def test_list_users_paginates_newest_first(client, make_user):
    admin = await make_user(roles=["admin"])
    created = [admin.id] + [(await make_user()).id for _ in range(4)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get(USERS, params=params, headers=admin.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 2
        seen += [u["id"] for u in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(i) for i in reversed(created)]


async def test_get_user_shows_active_sessions(client, make_user, app):
    moderator = await make_user(roles=["moderator"])
    target = await make_user()
    r = await client.get(f"{USERS}/{target.id}", headers=moderator.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == str(target.id) and body["username"] == target.username
    assert body["active_session_count"] == 1

    async with app.runtime.db.session() as s:
        user = (await s.execute(select(User).where(User.id == target.id))).scalar_one()
        await auth.start_session(
            session=s, jwt=app.runtime.jwt, settings=app.runtime.settings.auth, user=user, device="phone", ip=None
        )
    assert (await client.get(f"{USERS}/{target.id}", headers=moderator.headers)).json()["active_session_count"] == 2

    assert_error(await client.get(f"{USERS}/{uuid.uuid4()}", headers=moderator.headers), 404, "user_not_found")
    assert_error(await client.get(f"{USERS}/not-a-uuid", headers=moderator.headers), 422, "invalid_input")


async def test_reads_need_moderator_or_admin(client, make_user):
    user = await make_user()
    creator = await make_user(roles=["creator"])
    assert_error(await client.get(USERS), 401, "not_authenticated")
    assert_error(await client.get(USERS, headers={"Authorization": "Bearer nope"}), 401, "invalid_token")
    for who in (user, creator):
        assert_error(await client.get(USERS, headers=who.headers), 403, "insufficient_role")
        assert_error(await client.get(f"{USERS}/{user.id}", headers=who.headers), 403, "insufficient_role")
        assert_error(await client.get(AUDIT, headers=who.headers), 403, "insufficient_role")


# --- roles ------------------------------------------------------------------------------------


async def test_set_roles_keeps_creator_status_in_step(client, make_user, app):
    admin = await make_user(roles=["admin"])
    target = await make_user()
    url = f"{USERS}/{target.id}/roles"

    r = await client.put(url, json={"roles": ["moderator", "creator", "user", "creator"]}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["user", "creator", "moderator"]
    assert r.json()["creator_status"] == "approved"
    stored = await stored_user(app, target.id)
    assert stored.roles == ["user", "creator", "moderator"] and stored.creator_status == "approved"

    r = await client.put(url, json={"roles": ["user"]}, headers=admin.headers)
    assert r.json()["roles"] == ["user"] and r.json()["creator_status"] == "none"

    # A pending application is left alone by a role change that does not grant "creator".
    await set_creator_status(app, target.id, "pending")
    r = await client.put(url, json={"roles": ["user", "moderator"]}, headers=admin.headers)
    assert r.json()["creator_status"] == "pending"

    [first, second, third] = await audit_rows(app, action="admin.user.roles")
    assert first.actor_id == admin.id and first.target_type == "user" and first.target_id == str(target.id)
    assert first.details["before"] == ["user"] and first.details["after"] == ["user", "creator", "moderator"]
    assert first.details["creator_status"] == {"before": "none", "after": "approved"}
    assert second.details["creator_status"] == {"before": "approved", "after": "none"}
    assert "creator_status" not in third.details


async def test_set_roles_refuses_bad_input_and_self_demotion(client, make_user, app):
    admin = await make_user(roles=["admin"])
    moderator = await make_user(roles=["moderator"])
    target = await make_user()
    url = f"{USERS}/{target.id}/roles"
    for body in (
        {"roles": ["user", "wizard"]},
        {"roles": ["creator"]},
        {"roles": []},
        {"roles": "user"},
        {},
        {"roles": ["user"], "extra": 1},
    ):
        assert_error(await client.put(url, json=body, headers=admin.headers), 422, "invalid_input")
    err = assert_error(await client.put(url, json={"roles": ["creator"]}, headers=admin.headers), 422)
    assert err["details"][0]["field"] == "roles" and '"user"' in err["details"][0]["message"]

    err = assert_error(
        await client.put(f"{USERS}/{admin.id}/roles", json={"roles": ["user"]}, headers=admin.headers),
        409,
        "cannot_remove_own_admin",
    )
    assert "own admin role" in err["message"]
    r = await client.put(
        f"{USERS}/{admin.id}/roles", json={"roles": ["user", "admin", "creator"]}, headers=admin.headers
    )
    assert r.status_code == 200 and r.json()["roles"] == ["user", "creator", "admin"]

    assert_error(
        await client.put(url, json={"roles": ["user", "moderator"]}, headers=moderator.headers),
        403,
        "insufficient_role",
    )
    assert_error(
        await client.put(f"{USERS}/{uuid.uuid4()}/roles", json={"roles": ["user"]}, headers=admin.headers),
        404,
        "user_not_found",
    )
    assert (await stored_user(app, target.id)).roles == ["user"]
    assert len(await audit_rows(app, action="admin.user.roles")) == 1


# --- suspensions and bans ---------------------------------------------------------------------


async def test_suspension_signs_the_user_out_at_once(client, make_user, app):
    admin = await make_user(roles=["admin"])
    victim = await make_user(roles=["moderator"])
    assert (await client.get(USERS, headers=victim.headers)).status_code == 200
    # Fast paths remember sessions found valid; the suspension must make them forget.
    cache = app.runtime.sessions
    claims = cache.claims(victim.access_token)
    cache.remember(claims, cache.generation, claims.expires_at.timestamp())
    assert cache.session_valid(claims)

    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    r = await client.post(
        f"{USERS}/{victim.id}/suspend",
        json={"until": until.astimezone(UTC).isoformat(), "reason": "  repeated spam  "},
        headers={**admin.headers, "User-Agent": "admin-console/1.0"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "suspended" and body["status_reason"] == "repeated spam"
    assert datetime.fromisoformat(body["suspended_until"]) == until

    # The victim's existing access token stops working at once.
    assert_error(await client.get(USERS, headers=victim.headers), 401, "session_revoked")
    assert not cache.session_valid(claims)
    assert await token_refused(app, victim.access_token) == "session_revoked"
    assert await refresh_refused(app, victim.refresh_token) == "session_revoked"
    async with app.runtime.db.session(write=False) as s:
        grants = list((await s.execute(select(AuthSession).where(AuthSession.user_id == victim.id))).scalars())
    assert grants and all(g.revoked_at is not None and g.revoke_reason == "suspended" for g in grants)
    detail = (await client.get(f"{USERS}/{victim.id}", headers=admin.headers)).json()
    assert detail["active_session_count"] == 0

    [row] = await audit_rows(app, action="admin.user.suspend")
    assert row.actor_id == admin.id and row.target_id == str(victim.id) and row.result == "ok"
    assert row.ip == "127.0.0.1" and row.user_agent == "admin-console/1.0"
    assert row.details["reason"] == "repeated spam" and row.details["sessions_revoked"] == 1
    assert datetime.fromisoformat(row.details["until"]) == until

    # A new suspension replaces the end time.
    r = await client.post(
        f"{USERS}/{victim.id}/suspend", json={"until": future(hours=1), "reason": "shortened"}, headers=admin.headers
    )
    assert r.status_code == 200 and r.json()["status_reason"] == "shortened"

    r = await client.post(f"{USERS}/{victim.id}/reinstate", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active" and r.json()["suspended_until"] is None and r.json()["status_reason"] is None
    # Reinstating does not revive old sessions: the user signs in anew.
    assert await token_refused(app, victim.access_token) == "session_revoked"
    async with app.runtime.db.session() as s:
        user = (await s.execute(select(User).where(User.id == victim.id))).scalar_one()
        pair = await auth.start_session(
            session=s, jwt=app.runtime.jwt, settings=app.runtime.settings.auth, user=user, device="d", ip=None
        )
    r = await client.get(USERS, headers={"Authorization": f"Bearer {pair.access_token}"})
    assert r.status_code == 200
    [row] = await audit_rows(app, action="admin.user.reinstate")
    assert row.details["previous_status"] == "suspended"


async def test_suspend_refuses_bad_input_and_stores_nothing(client, make_user, app):
    admin = await make_user(roles=["admin"])
    target = await make_user()
    url = f"{USERS}/{target.id}/suspend"
    naive = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None).isoformat()
    cases = [
        ({"until": future(minutes=-1), "reason": "x"}, "invalid_until", "until"),
        ({"until": future(days=4000), "reason": "x"}, "invalid_until", "until"),
        ({"until": "9999-12-31T23:59:59-05:00", "reason": "x"}, "invalid_until", "until"),
        ({"until": naive, "reason": "x"}, "invalid_input", "until"),
        ({"until": "tomorrow", "reason": "x"}, "invalid_input", "until"),
        ({"until": future(days=1)}, "invalid_input", "reason"),
        ({"until": future(days=1), "reason": "   "}, "invalid_input", "reason"),
        ({"until": future(days=1), "reason": "x" * 501}, "invalid_input", "reason"),
        ({"reason": "x"}, "invalid_input", "until"),
    ]
    for body, code, field in cases:
        err = assert_error(await client.post(url, json=body, headers=admin.headers), 422, code)
        assert err["details"][0]["field"] == field, (body, err)
    assert_error(await client.post(url, content=b"{not json", headers=admin.headers), 422, "invalid_input")
    stored = await stored_user(app, target.id)
    assert stored.status == "active" and stored.suspended_until is None
    assert await audit_rows(app) == []
    assert (await client.get(f"{USERS}/{target.id}", headers=admin.headers)).json()["active_session_count"] == 1


async def test_who_may_suspend_whom(client, make_user, app):
    admin = await make_user(roles=["admin"])
    other_admin = await make_user(roles=["admin"])
    moderator = await make_user(roles=["moderator"])
    other_moderator = await make_user(roles=["moderator"])
    creator = await make_user(roles=["creator"])
    user = await make_user()
    body = {"until": future(days=1), "reason": "rules"}

    def suspend(target, actor):
        return client.post(f"{USERS}/{target.id}/suspend", json=body, headers=actor.headers)

    assert_error(await suspend(admin, admin), 409, "cannot_restrict_self")
    assert_error(await suspend(other_admin, admin), 403, "target_is_admin")
    assert_error(await suspend(moderator, moderator), 409, "cannot_restrict_self")
    assert_error(await suspend(admin, moderator), 403, "target_is_admin")
    err = assert_error(await suspend(other_moderator, moderator), 403, "target_is_moderator")
    assert "administrators" in err["message"]
    assert_error(await suspend(moderator, user), 403, "insufficient_role")
    assert_error(
        await client.post(f"{USERS}/{uuid.uuid4()}/suspend", json=body, headers=moderator.headers),
        404,
        "user_not_found",
    )
    assert await audit_rows(app) == []

    assert (await suspend(creator, moderator)).status_code == 200
    assert (await suspend(user, moderator)).status_code == 200
    assert (await suspend(other_moderator, admin)).status_code == 200
    # Moderators lift suspensions of users, but not of moderators.
    assert (await client.post(f"{USERS}/{user.id}/reinstate", headers=moderator.headers)).status_code == 200
    assert_error(
        await client.post(f"{USERS}/{other_moderator.id}/reinstate", headers=moderator.headers),
        403,
        "target_is_moderator",
    )
    assert (await client.post(f"{USERS}/{other_moderator.id}/reinstate", headers=admin.headers)).status_code == 200
    actions = [(row.action, row.actor_id) for row in await audit_rows(app)]
    assert actions == [
        ("admin.user.suspend", moderator.id),
        ("admin.user.suspend", moderator.id),
        ("admin.user.suspend", admin.id),
        ("admin.user.reinstate", moderator.id),
        ("admin.user.reinstate", admin.id),
    ]


async def test_ban_is_for_admins_and_revokes_every_session(client, make_user, app):
    admin = await make_user(roles=["admin"])
    moderator = await make_user(roles=["moderator"])
    victim = await make_user(roles=["creator"])
    async with app.runtime.db.session() as s:
        user = (await s.execute(select(User).where(User.id == victim.id))).scalar_one()
        second = await auth.start_session(
            session=s, jwt=app.runtime.jwt, settings=app.runtime.settings.auth, user=user, device="tv", ip=None
        )
    url = f"{USERS}/{victim.id}/ban"
    # Before the ban the victim is signed in (and merely lacks the role for this route).
    assert_error(await client.get(USERS, headers=victim.headers), 403, "insufficient_role")

    assert_error(await client.post(url, json={"reason": "fraud"}, headers=moderator.headers), 403, "insufficient_role")
    assert_error(await client.post(url, json={}, headers=admin.headers), 422, "invalid_input")
    assert_error(await client.post(url, json={"reason": ""}, headers=admin.headers), 422, "invalid_input")
    assert_error(await client.post(f"{USERS}/{admin.id}/ban", json={"reason": "x"}, headers=admin.headers), 409)
    assert_error(
        await client.post(f"{USERS}/{uuid.uuid4()}/ban", json={"reason": "x"}, headers=admin.headers),
        404,
        "user_not_found",
    )
    assert (await stored_user(app, victim.id)).status == "active"

    r = await client.post(url, json={"reason": "fraud"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "banned" and r.json()["status_reason"] == "fraud"
    for token in (victim.access_token, second.access_token):
        assert await token_refused(app, token) == "session_revoked"
        r = await client.get(USERS, headers={"Authorization": f"Bearer {token}"})
        assert_error(r, 401, "session_revoked")
    for refresh in (victim.refresh_token, second.refresh_token):
        assert await refresh_refused(app, refresh) == "session_revoked"
    async with app.runtime.db.session(write=False) as s:
        reasons = (
            await s.execute(
                select(AuthSession.revoke_reason, func.count())
                .where(AuthSession.user_id == victim.id)
                .group_by(AuthSession.revoke_reason)
            )
        ).all()
    assert reasons == [("banned", 2)]
    [row] = await audit_rows(app, action="admin.user.ban")
    assert row.details == {"reason": "fraud", "previous_status": "active", "sessions_revoked": 2}

    # Even a brand-new session of a banned user is refused.
    async with app.runtime.db.session() as s:
        user = (await s.execute(select(User).where(User.id == victim.id))).scalar_one()
        third = await auth.start_session(
            session=s, jwt=app.runtime.jwt, settings=app.runtime.settings.auth, user=user, device="x", ip=None
        )
    assert await token_refused(app, third.access_token) == "account_banned"

    assert_error(await client.post(url, json={"reason": "again"}, headers=admin.headers), 409, "already_banned")
    assert_error(
        await client.post(
            f"{USERS}/{victim.id}/suspend", json={"until": future(days=1), "reason": "x"}, headers=admin.headers
        ),
        409,
        "user_banned",
    )
    assert_error(
        await client.post(f"{USERS}/{victim.id}/reinstate", headers=moderator.headers), 403, "insufficient_role"
    )
    r = await client.post(f"{USERS}/{victim.id}/reinstate", json={"reason": "appeal granted"}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert (await client.get(f"{USERS}/{victim.id}", headers=admin.headers)).json()["roles"] == ["user", "creator"]
    assert_error(await client.post(f"{USERS}/{victim.id}/reinstate", headers=admin.headers), 409, "not_restricted")
    assert_error(
        await client.post(f"{USERS}/{victim.id}/reinstate", json={"reason": 5}, headers=admin.headers),
        422,
        "invalid_input",
    )
    [row] = await audit_rows(app, action="admin.user.reinstate")
    assert row.details == {"reason": "appeal granted", "previous_status": "banned"}


async def test_moderation_counters_reach_metrics(client, make_user):
    admin = await make_user(roles=["admin"])
    user = await make_user()
    r = await client.post(f"{USERS}/{user.id}/ban", json={"reason": "spam"}, headers=admin.headers)
    assert r.status_code == 200
    metrics = (await client.get("/metrics")).text
    assert 'halobuzz_business_events_total{event="user_banned"}' in metrics


# --- creator applications ---------------------------------------------------------------------


async def test_creator_applications_are_approved_or_rejected(client, make_user, app):
    admin = await make_user(roles=["admin"])
    moderator = await make_user(roles=["moderator"])
    applicant = await make_user()
    other = await make_user()
    await set_creator_status(app, applicant.id, "pending")
    await set_creator_status(app, other.id, "pending")

    assert_error(
        await client.post(f"{USERS}/{applicant.id}/creator", json={"approve": True}, headers=moderator.headers),
        403,
        "insufficient_role",
    )
    for body in ({}, {"approve": "yes"}, {"approve": True, "reason": "x" * 501}):
        assert_error(
            await client.post(f"{USERS}/{applicant.id}/creator", json=body, headers=admin.headers), 422, "invalid_input"
        )

    r = await client.post(f"{USERS}/{applicant.id}/creator", json={"approve": True}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["creator_status"] == "approved" and r.json()["roles"] == ["user", "creator"]
    err = assert_error(
        await client.post(f"{USERS}/{applicant.id}/creator", json={"approve": False}, headers=admin.headers), 409
    )
    assert "pending" in err["message"]

    r = await client.post(
        f"{USERS}/{other.id}/creator", json={"approve": False, "reason": "not enough content"}, headers=admin.headers
    )
    assert r.status_code == 200
    assert r.json()["creator_status"] == "rejected" and r.json()["roles"] == ["user"]
    stored = await stored_user(app, other.id)
    assert stored.creator_status == "rejected" and stored.roles == ["user"]
    assert_error(
        await client.post(f"{USERS}/{uuid.uuid4()}/creator", json={"approve": True}, headers=admin.headers), 404
    )
    actions = sorted(row.action for row in await audit_rows(app) if row.action.startswith("admin.user.creator"))
    assert actions == ["admin.user.creator.approve", "admin.user.creator.reject"]


# --- the audit log ----------------------------------------------------------------------------


async def test_audit_log_lists_filters_and_paginates(client, make_user):
    admin = await make_user(roles=["admin"])
    moderator = await make_user(roles=["moderator"])
    a = await make_user()
    b = await make_user()
    body = {"until": future(days=1), "reason": "r"}
    assert (await client.post(f"{USERS}/{a.id}/suspend", json=body, headers=moderator.headers)).status_code == 200
    assert (await client.post(f"{USERS}/{b.id}/suspend", json=body, headers=admin.headers)).status_code == 200
    assert (await client.post(f"{USERS}/{a.id}/reinstate", headers=admin.headers)).status_code == 200
    assert (await client.post(f"{USERS}/{b.id}/ban", json={"reason": "r"}, headers=admin.headers)).status_code == 200
    assert (
        await client.put(f"{USERS}/{a.id}/roles", json={"roles": ["user", "creator"]}, headers=admin.headers)
    ).status_code == 200

    r = await client.get(AUDIT, headers=admin.headers)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["action"] for i in items] == [
        "admin.user.roles",
        "admin.user.ban",
        "admin.user.reinstate",
        "admin.user.suspend",
        "admin.user.suspend",
    ]
    assert r.json()["next_cursor"] is None
    first = items[-1]
    assert first["actor_id"] == str(moderator.id) and first["target_type"] == "user"
    assert first["target_id"] == str(a.id) and first["ip"] == "127.0.0.1" and first["result"] == "ok"
    assert first["details"]["reason"] == "r"

    r = await client.get(AUDIT, params={"action": "admin.user.suspend"}, headers=admin.headers)
    assert [i["target_id"] for i in r.json()["items"]] == [str(b.id), str(a.id)]
    r = await client.get(AUDIT, params={"actor_id": str(moderator.id)}, headers=admin.headers)
    assert [i["action"] for i in r.json()["items"]] == ["admin.user.suspend"]
    r = await client.get(AUDIT, params={"target_id": str(a.id)}, headers=admin.headers)
    assert [i["action"] for i in r.json()["items"]] == [
        "admin.user.roles",
        "admin.user.reinstate",
        "admin.user.suspend",
    ]
    r = await client.get(AUDIT, params={"target_id": str(b.id), "action": "admin.user.ban"}, headers=admin.headers)
    assert len(r.json()["items"]) == 1

    seen: list[str] = []
    cursor = None
    while True:
        r = await client.get(
            AUDIT, params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=admin.headers
        )
        seen += [i["id"] for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["id"] for i in items]

    assert_error(await client.get(AUDIT, headers=moderator.headers), 403, "insufficient_role")
    for params in ({"actor_id": "nope"}, {"limit": 0}, {"cursor": "abc"}, {"action": "a" * 65}):
        assert_error(await client.get(AUDIT, params=params, headers=admin.headers), 422)


async def test_deleted_accounts_are_left_alone(client, make_user, app):
    admin = await make_user(roles=["admin"])
    gone = await make_user()
    async with app.runtime.db.session() as s:
        await s.execute(update(User).where(User.id == gone.id).values(status="deleted", creator_status="pending"))
    url = f"{USERS}/{gone.id}"
    assert_error(
        await client.post(f"{url}/suspend", json={"until": future(days=1), "reason": "x"}, headers=admin.headers),
        409,
        "user_deleted",
    )
    assert_error(await client.post(f"{url}/ban", json={"reason": "x"}, headers=admin.headers), 409, "user_deleted")
    assert_error(await client.put(f"{url}/roles", json={"roles": ["user"]}, headers=admin.headers), 409, "user_deleted")
    assert_error(
        await client.post(f"{url}/creator", json={"approve": True}, headers=admin.headers), 409, "user_deleted"
    )
    assert_error(await client.post(f"{url}/reinstate", headers=admin.headers), 409, "not_restricted")
    assert (await client.get(url, headers=admin.headers)).json()["status"] == "deleted"
    assert await audit_rows(app) == []
