"""The profile read's fast path (PostgreSQL) answers exactly as the FastAPI route does, and never
serves a caller whose sign-in has ended."""

from __future__ import annotations

from tests.conftest import assert_error, client_for


async def _get(app, path, headers=None):
    async with client_for(app) as c:
        return await c.get(path, headers=headers or {})


async def test_fast_path_is_used_on_postgresql_only(app):
    from halobuzz.accounts.users_schemas import ProfileOut

    # The fast path writes these fields by hand: a new field must be added there too.
    assert list(ProfileOut.model_fields) == [
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
        "is_following",
        "is_followed_by",
        "is_blocked",
    ]
    fast = [r.template for r in app.runtime.fast_paths.routes]
    if app.runtime.db.is_sqlite:
        assert fast == []
    else:
        assert fast == ["/api/v1/users/{id_or_username}"]


async def test_fast_and_routed_profiles_are_identical(app_factory, make_user):
    fast_app = await app_factory()
    routed_app = await app_factory(http={"fast_paths": False})
    viewer = await make_user()
    creator = await make_user(roles=["creator"], bio="hello", country="NP")
    async with client_for(fast_app) as c:
        assert (await c.post(f"/api/v1/users/{creator.id}/follow", headers=viewer.headers)).status_code in (200, 201)
        assert (await c.post(f"/api/v1/users/{viewer.id}/follow", headers=creator.headers)).status_code in (200, 201)
    for ref in (str(creator.id), creator.username, creator.username.upper()):
        for headers in (None, viewer.headers, creator.headers):
            path = f"/api/v1/users/{ref}"
            fast = await _get(fast_app, path, headers)
            routed = await _get(routed_app, path, headers)
            assert fast.status_code == routed.status_code == 200
            assert fast.content == routed.content
            assert fast.headers["content-type"] == "application/json"
    assert fast_app.runtime.fast_paths.served == (0 if fast_app.runtime.db.is_sqlite else 9)
    assert routed_app.runtime.fast_paths.served == 0
    body = (await _get(fast_app, f"/api/v1/users/{creator.id}", viewer.headers)).json()
    assert body["is_following"] is True and body["is_followed_by"] is True and body["is_blocked"] is False
    assert body["follower_count"] == 1 and body["bio"] == "hello"
    anonymous = (await _get(fast_app, f"/api/v1/users/{creator.id}")).json()
    assert anonymous["is_following"] is None


async def test_errors_fall_through_to_the_route(app, make_user):
    viewer = await make_user()
    assert_error(await _get(app, "/api/v1/users/nobody-here"), 404, "user_not_found")
    assert_error(await _get(app, f"/api/v1/users/{viewer.id}", {"Authorization": "Bearer nope"}), 401)
    assert_error(await _get(app, f"/api/v1/users/{viewer.id}", {"Authorization": "Basic x"}), 401)
    me = await _get(app, "/api/v1/users/me", viewer.headers)
    assert me.status_code == 200 and me.json()["id"] == str(viewer.id)


async def test_ended_sign_in_is_refused_at_once(app, make_user):
    viewer = await make_user()
    admin = await make_user(roles=["admin"])
    target = await make_user()
    path = f"/api/v1/users/{target.id}"
    assert (await _get(app, path, viewer.headers)).status_code == 200  # the session is now cached
    served = app.runtime.fast_paths.served
    assert served == (0 if app.runtime.db.is_sqlite else 1)
    async with client_for(app) as c:
        r = await c.post(f"/api/v1/admin/users/{viewer.id}/ban", json={"reason": "spam"}, headers=admin.headers)
        assert r.status_code == 200, r.text
    assert_error(await _get(app, path, viewer.headers), 401)

    other = await make_user()
    assert (await _get(app, path, other.headers)).status_code == 200
    async with client_for(app) as c:
        assert (await c.post("/api/v1/auth/logout", headers=other.headers)).status_code == 204
    assert_error(await _get(app, path, other.headers), 401)


async def test_concurrent_reads_each_get_their_own_answer(app, make_user):
    """Reads coalesced into one statement still answer each caller about the user they asked for."""
    import asyncio
    import itertools

    users = [await make_user() for _ in range(6)]
    async with client_for(app) as c:
        # users[i] follows users[i + 1]
        for a, b in itertools.pairwise(users):
            assert (await c.post(f"/api/v1/users/{b.id}/follow", headers=a.headers)).status_code in (200, 201)
        asks = []
        for i, viewer in enumerate(users):
            for j, target in enumerate(users):
                ref = str(target.id) if (i + j) % 2 else target.username.upper()
                asks.append((viewer, target, j == i + 1, i == j + 1))
                asks[-1] = (*asks[-1], ref)
        responses = await asyncio.gather(
            *(c.get(f"/api/v1/users/{ref}", headers=viewer.headers) for viewer, _, _, _, ref in asks),
            c.get("/api/v1/users/nobody-by-this-name"),
            c.get(f"/api/v1/users/{users[0].id}"),
        )
    for (_viewer, target, following, followed_by, _), r in zip(asks, responses, strict=False):
        body = r.json()
        assert r.status_code == 200 and body["id"] == str(target.id), body
        assert body["is_following"] is following and body["is_followed_by"] is followed_by
    assert_error(responses[-2], 404, "user_not_found")
    assert responses[-1].json()["is_following"] is None
