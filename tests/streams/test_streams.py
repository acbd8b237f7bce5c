"""Creating, reading, editing and deleting streams; the secret stream key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from halobuzz.core.audit import AuditLog
from halobuzz.core.security import token_hash
from halobuzz.streams import service
from halobuzz.streams.models import Category
from tests.conftest import assert_error
from tests.streams.conftest import stream_count, stream_row

STREAM_FIELDS = {
    "id",
    "title",
    "description",
    "status",
    "viewer_count",
    "like_count",
    "owner",
    "category",
    "tags",
    "auto_tags",
    "language",
    "audio_only",
    "region",
    "scheduled_start_at",
    "current_broadcast",
    "created_at",
}


async def add_category(app, slug: str, *, active: bool = True, position: int = 0) -> Category:
    async with app.runtime.db.session() as session:
        category = Category(slug=slug, name=slug.title(), position=position, is_active=active)
        session.add(category)
    return category


async def find_by_key(app, key: str):
    async with app.runtime.db.session(write=False) as session:
        return await service.find_stream_by_key(session=session, key=key)


async def test_creator_creates_a_stream_and_sees_the_key_once(app, client, creator):
    await add_category(app, "music")
    when = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    r = await client.post(
        "/api/v1/streams",
        json={
            "title": "  Evening ghazals  ",
            "description": "songs from Kathmandu",
            "category": "music",
            "tags": ["Ghazal", "#Nepali", "ghazal", "  live   music "],
            "language": "NE",
            "audio_only": True,
            "region": "np",
            "scheduled_start_at": when.isoformat(),
        },
        headers=creator.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == STREAM_FIELDS | {"stream_key"}
    assert body["title"] == "Evening ghazals"
    assert body["status"] == "offline" and body["viewer_count"] == 0 and body["like_count"] == 0
    assert body["owner"] == {"id": str(creator.id), "username": creator.username, "display_name": creator.username}
    assert body["category"] == "music"
    assert body["tags"] == ["ghazal", "nepali", "live music"]
    assert body["language"] == "ne" and body["audio_only"] is True and body["region"] == "np"
    assert datetime.fromisoformat(body["scheduled_start_at"]) == when
    assert body["current_broadcast"] is None
    key = body["stream_key"]
    assert len(key) >= 40

    # Stored hashed only; never shown again.
    row = await stream_row(app, body["id"])
    assert row.stream_key_hash == token_hash(key)
    assert key not in {row.title, row.description, row.stream_key_hash}
    r = await client.get(f"/api/v1/streams/{body['id']}")
    assert r.status_code == 200
    assert set(r.json()) == STREAM_FIELDS and key not in r.text
    r = await client.get("/api/v1/streams", params={"owner": creator.username})
    assert key not in r.text and "stream_key" not in r.text
    assert (await find_by_key(app, key)).id == uuid.UUID(body["id"])


async def test_defaults_and_category_by_id(app, client, make_user):
    owner = await make_user(roles=["creator"], language="hi")
    category = await add_category(app, "talk")
    r = await client.post(
        "/api/v1/streams", json={"title": "Morning chai", "category": str(category.id)}, headers=owner.headers
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["category"] == "talk"
    assert body["language"] == "hi"  # the owner's language
    assert body["region"] == "global" and body["audio_only"] is False and body["tags"] == []
    assert body["description"] == "" and body["scheduled_start_at"] is None


async def test_admin_may_create_plain_user_and_anonymous_may_not(client, admin, fan):
    r = await client.post("/api/v1/streams", json={"title": "admin's"}, headers=admin.headers)
    assert r.status_code == 201
    assert_error(
        await client.post("/api/v1/streams", json={"title": "mine"}, headers=fan.headers), 403, "insufficient_role"
    )
    assert_error(await client.post("/api/v1/streams", json={"title": "mine"}), 401, "not_authenticated")


BAD_CREATE = [
    ({}, "title"),
    ({"title": ""}, "title"),
    ({"title": "   "}, "title"),
    ({"title": "x" * 141}, "title"),
    ({"title": 123}, "title"),
    ({"title": "two\nlines"}, "title"),
    ({"title": None}, "title"),
    ({"title": "ok", "description": "d" * 2001}, "description"),
    ({"title": "ok", "description": None}, "description"),
    ({"title": "ok", "tags": [f"t{i}" for i in range(11)]}, "tags"),
    ({"title": "ok", "tags": ["x" * 31]}, "tags"),
    ({"title": "ok", "tags": ["  "]}, "tags"),
    ({"title": "ok", "tags": "music"}, "tags"),
    ({"title": "ok", "tags": [1]}, "tags.0"),
    ({"title": "ok", "language": "english"}, "language"),
    ({"title": "ok", "language": "e"}, "language"),
    ({"title": "ok", "language": 5}, "language"),
    ({"title": "ok", "audio_only": "yes"}, "audio_only"),
    ({"title": "ok", "audio_only": 1}, "audio_only"),
    ({"title": "ok", "region": "x"}, "region"),
    ({"title": "ok", "region": "np!"}, "region"),
    ({"title": "ok", "scheduled_start_at": "2030-01-01T00:00:00"}, "scheduled_start_at"),
    ({"title": "ok", "scheduled_start_at": "tomorrow"}, "scheduled_start_at"),
    ({"title": "ok", "category": ""}, "category"),
    ({"title": "ok", "status": "live"}, "status"),
    ({"title": "ok", "stream_key": "mine"}, "stream_key"),
]


@pytest.mark.parametrize(("body", "field"), BAD_CREATE)
async def test_create_rejects_bad_input_and_stores_nothing(app, client, creator, body, field):
    err = assert_error(await client.post("/api/v1/streams", json=body, headers=creator.headers), 422, "invalid_input")
    assert any(d["field"] == field for d in err["details"]), err
    assert await stream_count(app) == 0


async def test_create_rejects_bad_references_and_times(app, client, creator):
    await add_category(app, "retired", active=False)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    far = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    cases = [
        ({"title": "ok", "category": "nope"}, "unknown_category"),
        ({"title": "ok", "category": str(uuid.uuid4())}, "unknown_category"),
        ({"title": "ok", "category": "retired"}, "unknown_category"),
        ({"title": "ok", "scheduled_start_at": past}, "schedule_in_past"),
        ({"title": "ok", "scheduled_start_at": far}, "schedule_too_far"),
    ]
    for body, code in cases:
        assert_error(await client.post("/api/v1/streams", json=body, headers=creator.headers), 422, code)
    r = await client.post(
        "/api/v1/streams", content=b"{not json", headers={**creator.headers, "content-type": "application/json"}
    )
    assert_error(r, 422, "invalid_input")
    assert await stream_count(app) == 0


async def test_get_unknown_and_malformed_ids(client, creator):
    assert_error(await client.get(f"/api/v1/streams/{uuid.uuid4()}"), 404, "stream_not_found")
    assert_error(await client.get("/api/v1/streams/not-a-uuid"), 422, "invalid_input")
    r = await client.patch("/api/v1/streams/123", json={"title": "x"}, headers=creator.headers)
    assert_error(r, 422, "invalid_input")
    for action in ("start", "end", "key/rotate"):
        r = await client.post(f"/api/v1/streams/{uuid.uuid4()}/{action}", headers=creator.headers)
        assert_error(r, 404, "stream_not_found")
        assert_error(await client.post(f"/api/v1/streams/nope/{action}", headers=creator.headers), 422)


async def test_owner_edits_fields(app, client, creator, new_stream):
    await add_category(app, "gaming")
    stream = await new_stream(creator, tags=["a"])
    url = f"/api/v1/streams/{stream['id']}"
    when = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    r = await client.patch(
        url,
        json={
            "title": "Ranked grind",
            "category": "gaming",
            "tags": ["FPS", "fps", "Ranked"],
            "language": "en",
            "audio_only": True,
            "region": "in",
            "scheduled_start_at": when.isoformat(),
        },
        headers=creator.headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["title"] == "Ranked grind" and body["category"] == "gaming"
    assert body["tags"] == ["fps", "ranked"] and body["audio_only"] is True and body["region"] == "in"
    assert datetime.fromisoformat(body["scheduled_start_at"]) == when
    assert "stream_key" not in body

    # Only sent fields change; category and schedule may be cleared with null.
    r = await client.patch(url, json={"category": None, "scheduled_start_at": None}, headers=creator.headers)
    assert r.status_code == 200
    assert r.json()["category"] is None and r.json()["scheduled_start_at"] is None
    assert r.json()["title"] == "Ranked grind" and r.json()["tags"] == ["fps", "ranked"]
    assert (await client.get(url)).json()["title"] == "Ranked grind"


async def test_patch_rejects_bad_input_and_changes_nothing(app, client, creator, new_stream):
    stream = await new_stream(creator, title="Original")
    url = f"/api/v1/streams/{stream['id']}"
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    cases = [
        ({"title": None}, "invalid_input"),
        ({"title": ""}, "invalid_input"),
        ({"tags": None}, "invalid_input"),
        ({"audio_only": None}, "invalid_input"),
        ({"language": "??"}, "invalid_input"),
        ({"title": "New", "owner_id": str(uuid.uuid4())}, "invalid_input"),
        ({"title": "New", "category": "missing"}, "unknown_category"),
        ({"title": "New", "scheduled_start_at": past}, "schedule_in_past"),
    ]
    for body, code in cases:
        assert_error(await client.patch(url, json=body, headers=creator.headers), 422, code)
    assert (await stream_row(app, stream["id"])).title == "Original"


async def test_only_owner_or_admin_changes_a_stream(app, client, creator, fan, admin, make_user, new_stream):
    stream = await new_stream(creator)
    url = f"/api/v1/streams/{stream['id']}"
    other_creator = await make_user(roles=["creator"])
    for who in (fan, other_creator):
        assert_error(await client.patch(url, json={"title": "mine"}, headers=who.headers), 403, "not_stream_owner")
        assert_error(await client.post(f"{url}/key/rotate", headers=who.headers), 403, "not_stream_owner")
        assert_error(await client.delete(url, headers=who.headers), 403, "not_stream_owner")
    assert_error(await client.patch(url, json={"title": "mine"}), 401)
    assert (await stream_row(app, stream["id"])).title == stream["title"]

    r = await client.patch(url, json={"title": "Fixed by staff"}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["title"] == "Fixed by staff"
    async with app.runtime.db.session(write=False) as session:
        rows = (await session.scalars(select(AuditLog).where(AuditLog.action == "stream_update"))).all()
    assert [(r.actor_id, r.target_id, r.details["owner_id"]) for r in rows] == [
        (admin.id, stream["id"], str(creator.id))
    ]


async def test_key_rotation_invalidates_the_old_key(app, client, creator, new_stream):
    stream = await new_stream(creator)
    old = stream["stream_key"]
    r = await client.post(f"/api/v1/streams/{stream['id']}/key/rotate", headers=creator.headers)
    assert r.status_code == 200
    new = r.json()["stream_key"]
    assert set(r.json()) == {"stream_key"} and new != old
    assert await find_by_key(app, old) is None
    assert (await find_by_key(app, new)).id == uuid.UUID(stream["id"])
    assert await find_by_key(app, "") is None
    row = await stream_row(app, stream["id"])
    assert row.stream_key_hash == token_hash(new)
    assert row.key_rotated_at >= row.created_at
    assert_error(await client.post(f"/api/v1/streams/{uuid.uuid4()}/key/rotate", headers=creator.headers), 404)


async def test_delete_is_soft_and_only_when_offline(app, client, creator, new_stream):
    stream = await new_stream(creator)
    url = f"/api/v1/streams/{stream['id']}"
    assert (await client.post(f"{url}/start", headers=creator.headers)).status_code == 200
    assert_error(await client.delete(url, headers=creator.headers), 409, "stream_live")
    assert (await client.post(f"{url}/end", headers=creator.headers)).status_code == 200

    r = await client.delete(url, headers=creator.headers)
    assert r.status_code == 204 and r.content == b""
    assert (await stream_row(app, stream["id"])).deleted_at is not None
    assert await find_by_key(app, stream["stream_key"]) is None
    assert_error(await client.get(url), 404, "stream_not_found")
    assert_error(await client.get(f"{url}/broadcasts"), 404, "stream_not_found")
    assert_error(await client.post(f"{url}/start", headers=creator.headers), 404, "stream_not_found")
    assert_error(await client.patch(url, json={"title": "back"}, headers=creator.headers), 404, "stream_not_found")
    assert_error(await client.delete(url, headers=creator.headers), 404, "stream_not_found")
    r = await client.get("/api/v1/streams", params={"owner": str(creator.id)})
    assert r.json() == {"items": [], "next_cursor": None}


async def test_owner_listing_by_id_or_username_with_cursor(client, creator, make_user, new_stream):
    other = await make_user(roles=["creator"])
    await new_stream(other)
    created = [(await new_stream(creator, title=f"show {i}"))["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"owner": creator.username.upper(), "limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/api/v1/streams", params=params)
        assert r.status_code == 200, r.text
        seen += [s["id"] for s in r.json()["items"]]
        assert all(set(s) == STREAM_FIELDS for s in r.json()["items"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))
    r = await client.get("/api/v1/streams", params={"owner": str(creator.id), "limit": 100})
    assert [s["id"] for s in r.json()["items"]] == list(reversed(created))

    assert_error(await client.get("/api/v1/streams", params={"owner": "nobody-here"}), 404, "user_not_found")
    assert_error(await client.get("/api/v1/streams", params={"owner": str(uuid.uuid4())}), 404, "user_not_found")
    assert_error(await client.get("/api/v1/streams"), 422, "invalid_input")
    bad = {"owner": creator.username, "cursor": "garbage"}
    assert_error(await client.get("/api/v1/streams", params=bad), 422, "invalid_cursor")
    assert_error(await client.get("/api/v1/streams", params={"owner": creator.username, "limit": 0}), 422)
