"""Categories: the public list and admin management."""

from __future__ import annotations

from sqlalchemy import select

from halobuzz.core.audit import AuditLog
from tests.conftest import assert_error, client_for

CATEGORY_FIELDS = {"id", "slug", "name", "description", "position", "is_active", "created_at"}


async def test_admin_manages_categories(app, client, admin):
    r = await client.post(
        "/api/v1/categories",
        json={"slug": "Live-Music", "name": "  Live music ", "description": "Bands and DJs", "position": 2},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    music = r.json()
    assert set(music) == CATEGORY_FIELDS
    assert (music["slug"], music["name"], music["position"], music["is_active"]) == (
        "live-music",
        "Live music",
        2,
        True,
    )
    r = await client.post(
        "/api/v1/categories", json={"slug": "gaming", "name": "Gaming", "position": 1}, headers=admin.headers
    )
    assert r.status_code == 201
    r = await client.post("/api/v1/categories", json={"slug": "talk", "name": "Talk"}, headers=admin.headers)
    assert r.status_code == 201 and r.json()["description"] == "" and r.json()["position"] == 0

    r = await client.get("/api/v1/categories")
    assert r.status_code == 200
    assert [c["slug"] for c in r.json()["items"]] == ["talk", "gaming", "live-music"]

    assert_error(
        await client.post("/api/v1/categories", json={"slug": "gaming", "name": "Again"}, headers=admin.headers),
        409,
        "category_exists",
    )

    r = await client.patch("/api/v1/categories/gaming", json={"name": "Games", "position": 9}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["name"] == "Games" and r.json()["position"] == 9
    r = await client.get("/api/v1/categories")
    assert [c["slug"] for c in r.json()["items"]] == ["talk", "live-music", "gaming"]

    # Deactivated categories leave the list and can't be picked, but their slug stays taken.
    r = await client.delete("/api/v1/categories/talk", headers=admin.headers)
    assert r.status_code == 204 and r.content == b""
    assert [c["slug"] for c in (await client.get("/api/v1/categories")).json()["items"]] == ["live-music", "gaming"]
    r = await client.post("/api/v1/categories", json={"slug": "talk", "name": "Talk"}, headers=admin.headers)
    assert_error(r, 409, "category_exists")
    r = await client.post("/api/v1/streams", json={"title": "chat", "category": "talk"}, headers=admin.headers)
    assert_error(r, 422, "unknown_category")
    r = await client.patch("/api/v1/categories/talk", json={"is_active": True}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["is_active"] is True
    r = await client.post("/api/v1/streams", json={"title": "chat", "category": "talk"}, headers=admin.headers)
    assert r.status_code == 201 and r.json()["category"] == "talk"

    async with app.runtime.db.session(write=False) as session:
        rows = (await session.scalars(select(AuditLog).where(AuditLog.target_type == "category"))).all()
    assert sorted(r.action for r in rows) == [
        "category_create",
        "category_create",
        "category_create",
        "category_deactivate",
        "category_update",
        "category_update",
    ]
    assert all(r.actor_id == admin.id for r in rows)


async def test_non_admins_cannot_manage_categories(client, admin, make_user):
    assert (
        await client.post("/api/v1/categories", json={"slug": "music", "name": "Music"}, headers=admin.headers)
    ).status_code == 201
    for who in (await make_user(), await make_user(roles=["creator"]), await make_user(roles=["moderator"])):
        r = await client.post("/api/v1/categories", json={"slug": "mine", "name": "Mine"}, headers=who.headers)
        assert_error(r, 403, "insufficient_role")
        assert_error(await client.patch("/api/v1/categories/music", json={"name": "X"}, headers=who.headers), 403)
        assert_error(await client.delete("/api/v1/categories/music", headers=who.headers), 403)
    assert_error(await client.post("/api/v1/categories", json={"slug": "mine", "name": "Mine"}), 401)
    items = (await client.get("/api/v1/categories")).json()["items"]
    assert [(c["slug"], c["name"], c["is_active"]) for c in items] == [("music", "Music", True)]


async def test_category_input_is_validated(client, admin):
    bad = [
        {"slug": "Bad Slug", "name": "x"},
        {"slug": "a", "name": "x"},
        {"slug": "-music", "name": "x"},
        {"slug": "s" * 41, "name": "x"},
        {"slug": "music"},
        {"slug": "music", "name": ""},
        {"slug": "music", "name": "n" * 61},
        {"slug": "music", "name": "x", "description": "d" * 501},
        {"slug": "music", "name": "x", "position": -1},
        {"slug": "music", "name": "x", "position": "first"},
        {"slug": "music", "name": "x", "is_active": False},
    ]
    for body in bad:
        assert_error(await client.post("/api/v1/categories", json=body, headers=admin.headers), 422, "invalid_input")
    assert (await client.get("/api/v1/categories")).json() == {"items": []}

    assert (
        await client.post("/api/v1/categories", json={"slug": "music", "name": "Music"}, headers=admin.headers)
    ).status_code == 201
    for body in ({"name": None}, {"position": -5}, {"is_active": "no"}, {"slug": "other"}):
        r = await client.patch("/api/v1/categories/music", json=body, headers=admin.headers)
        assert_error(r, 422, "invalid_input")
    assert_error(
        await client.patch("/api/v1/categories/nope", json={"name": "X"}, headers=admin.headers),
        404,
        "category_not_found",
    )
    assert_error(await client.delete("/api/v1/categories/nope", headers=admin.headers), 404, "category_not_found")
    assert_error(await client.patch(f"/api/v1/categories/{'x' * 65}", json={"name": "X"}, headers=admin.headers), 422)


async def test_category_list_cache_is_invalidated_by_changes(app_factory, make_user):
    cached_app = await app_factory(http={"cache_ttl_seconds": 300})
    admin = await make_user(roles=["admin"])
    async with client_for(cached_app) as c:
        assert (await c.get("/api/v1/categories")).json() == {"items": []}
        r = await c.post("/api/v1/categories", json={"slug": "music", "name": "Music"}, headers=admin.headers)
        assert r.status_code == 201
        assert [x["slug"] for x in (await c.get("/api/v1/categories")).json()["items"]] == ["music"]
        assert (
            await c.patch("/api/v1/categories/music", json={"name": "Songs"}, headers=admin.headers)
        ).status_code == 200
        assert [x["name"] for x in (await c.get("/api/v1/categories")).json()["items"]] == ["Songs"]
        assert (await c.delete("/api/v1/categories/music", headers=admin.headers)).status_code == 204
        assert (await c.get("/api/v1/categories")).json() == {"items": []}
