"""Going live and ending, broadcast history, racing starts, the live listing and its cache."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from sqlalchemy import select, update

from halobuzz.accounts.models import User
from halobuzz.core.audit import AuditLog
from halobuzz.streams import service
from halobuzz.streams.models import Broadcast, Category, Stream
from tests.conftest import assert_error, client_for
from tests.streams.conftest import broadcast_count, set_viewers, settle_presence, stream_row

LIVE_FIELDS = {
    "id",
    "title",
    "status",
    "viewer_count",
    "like_count",
    "owner",
    "category",
    "tags",
    "language",
    "audio_only",
    "region",
    "started_at",
}


async def test_start_and_end_with_broadcast_history(app, client, creator, new_stream):
    stream = await new_stream(creator, title="First show")
    url = f"/api/v1/streams/{stream['id']}"
    r = await client.post(f"{url}/start", headers=creator.headers)
    assert r.status_code == 200, r.text
    live = r.json()
    assert live["status"] == "live" and live["viewer_count"] == 0
    first = live["current_broadcast"]
    assert first["peak_viewers"] == 0 and datetime.fromisoformat(first["started_at"]).tzinfo is not None
    assert "stream_key" not in live
    assert (await client.get(url)).json()["current_broadcast"] == first
    assert_error(await client.post(f"{url}/start", headers=creator.headers), 409, "already_live")

    await set_viewers(app, stream["id"], 42)
    assert (await client.get(url)).json()["viewer_count"] == 42
    r = await client.post(f"{url}/end", headers=creator.headers)
    assert r.status_code == 200, r.text
    ended = r.json()
    assert ended["status"] == "offline" and ended["viewer_count"] == 0 and ended["current_broadcast"] is None
    assert_error(await client.post(f"{url}/end", headers=creator.headers), 409, "not_live")
    row = await stream_row(app, stream["id"])
    assert row.current_broadcast_id is None and row.started_at is None

    # A second broadcast, under a new title.
    assert (await client.patch(url, json={"title": "Second show"}, headers=creator.headers)).status_code == 200
    second = (await client.post(f"{url}/start", headers=creator.headers)).json()["current_broadcast"]
    r = await client.get(f"{url}/broadcasts")
    assert r.status_code == 200
    items = r.json()["items"]
    assert [b["id"] for b in items] == [second["id"], first["id"]]
    assert items[0] == {
        "id": second["id"],
        "title": "Second show",
        "started_at": second["started_at"],
        "ended_at": None,
        "peak_viewers": 0,
        "duration_seconds": None,
    }
    done = items[1]
    assert done["title"] == "First show" and done["peak_viewers"] == 42
    assert done["duration_seconds"] is not None and done["duration_seconds"] >= 0
    assert datetime.fromisoformat(done["ended_at"]) >= datetime.fromisoformat(done["started_at"])

    # Cursor pagination, newest first.
    r = await client.get(f"{url}/broadcasts", params={"limit": 1})
    assert [b["id"] for b in r.json()["items"]] == [second["id"]]
    r = await client.get(f"{url}/broadcasts", params={"limit": 1, "cursor": r.json()["next_cursor"]})
    assert [b["id"] for b in r.json()["items"]] == [first["id"]] and r.json()["next_cursor"] is None
    assert_error(await client.get(f"{url}/broadcasts", params={"cursor": "!!"}), 422, "invalid_cursor")
    assert_error(await client.get(f"/api/v1/streams/{uuid.uuid4()}/broadcasts"), 404, "stream_not_found")


async def test_start_and_end_are_counted(client, creator, new_stream):
    stream = await new_stream(creator)
    assert (await client.post(f"/api/v1/streams/{stream['id']}/start", headers=creator.headers)).status_code == 200
    metrics = (await client.get("/metrics")).text
    assert 'halobuzz_business_events_total{event="stream_start"}' in metrics


async def test_racing_starts_open_exactly_one_broadcast(app, client, creator, new_stream):
    stream = await new_stream(creator)
    url = f"/api/v1/streams/{stream['id']}/start"
    responses = await asyncio.gather(*(client.post(url, headers=creator.headers) for _ in range(5)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409, 409, 409, 409], [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert_error(r, 409, "already_live")
    assert await broadcast_count(app, stream["id"]) == 1
    winner = next(r for r in responses if r.status_code == 200).json()
    assert (await stream_row(app, stream["id"])).current_broadcast_id == uuid.UUID(winner["current_broadcast"]["id"])

    # Racing ends: one closes the broadcast, the rest find it not live.
    url = f"/api/v1/streams/{stream['id']}/end"
    responses = await asyncio.gather(*(client.post(url, headers=creator.headers) for _ in range(3)))
    assert sorted(r.status_code for r in responses) == [200, 409, 409]


async def test_only_owner_or_admin_starts_and_ends(app, client, creator, fan, admin, make_user, new_stream):
    stream = await new_stream(creator)
    url = f"/api/v1/streams/{stream['id']}"
    other_creator = await make_user(roles=["creator"])
    for who in (fan, other_creator):
        assert_error(await client.post(f"{url}/start", headers=who.headers), 403, "not_stream_owner")
    assert_error(await client.post(f"{url}/start"), 401)
    assert (await stream_row(app, stream["id"])).status == "offline"

    assert (await client.post(f"{url}/start", headers=creator.headers)).status_code == 200
    for who in (fan, other_creator):
        assert_error(await client.post(f"{url}/end", headers=who.headers), 403, "not_stream_owner")
    assert (await stream_row(app, stream["id"])).status == "live"

    # An admin may end (and start) someone else's stream; both are audited.
    assert (await client.post(f"{url}/end", headers=admin.headers)).status_code == 200
    assert (await client.post(f"{url}/start", headers=admin.headers)).status_code == 200
    async with app.runtime.db.session(write=False) as session:
        rows = (await session.scalars(select(AuditLog).where(AuditLog.target_type == "stream"))).all()
    assert sorted((r.action, r.actor_id, r.target_id) for r in rows) == [
        ("stream_end", admin.id, stream["id"]),
        ("stream_start", admin.id, stream["id"]),
    ]
    assert all(r.details == {"owner_id": str(creator.id)} and r.ip == "127.0.0.1" for r in rows)


async def test_owner_who_is_banned_or_no_longer_a_creator_cannot_go_live(app, client, creator, admin, new_stream):
    stream = await new_stream(creator)
    url = f"/api/v1/streams/{stream['id']}/start"
    async with app.runtime.db.session() as session:
        await session.execute(update(User).where(User.id == creator.id).values(roles=["user"]))
    assert_error(await client.post(url, headers=creator.headers), 403, "not_a_creator")
    async with app.runtime.db.session() as session:
        await session.execute(
            update(User).where(User.id == creator.id).values(roles=["user", "creator"], status="banned")
        )
    assert_error(await client.post(url, headers=creator.headers), 401)
    assert_error(await client.post(url, headers=admin.headers), 403, "owner_not_active")
    assert await broadcast_count(app, stream["id"]) == 0


async def test_viewer_counts_raise_the_broadcast_peak(app, client, creator, new_stream):
    stream = await new_stream(creator)
    sid = uuid.UUID(stream["id"])
    r = await client.post(f"/api/v1/streams/{stream['id']}/start", headers=creator.headers)
    await settle_presence(app)  # the gateway's own recount at start must not land in between
    for count in (10, 75, 30):
        async with app.runtime.db.session() as session:
            assert await service.set_viewer_count(session=session, stream_id=sid, viewer_count=count)
    body = (await client.get(f"/api/v1/streams/{stream['id']}")).json()
    assert body["viewer_count"] == 30 and body["current_broadcast"]["peak_viewers"] == 75
    await client.post(f"/api/v1/streams/{stream['id']}/end", headers=creator.headers)
    async with app.runtime.db.session() as session:
        assert not await service.set_viewer_count(session=session, stream_id=sid, viewer_count=5)
        broadcast = await session.get(Broadcast, uuid.UUID(r.json()["current_broadcast"]["id"]))
    assert broadcast.peak_viewers == 75
    assert (await stream_row(app, stream["id"])).viewer_count == 0


async def _make_live(client, app, new_stream, owner, viewers: int, **fields):
    stream = await new_stream(owner, **fields)
    r = await client.post(f"/api/v1/streams/{stream['id']}/start", headers=owner.headers)
    assert r.status_code == 200, r.text
    await set_viewers(app, stream["id"], viewers)
    return stream["id"]


async def _all_pages(client, params):
    seen, cursor = [], None
    while True:
        r = await client.get("/api/v1/streams/live", params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        seen += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return seen


async def test_live_listing_sorts_filters_and_paginates(app, client, make_user, new_stream):
    async with app.runtime.db.session() as session:
        session.add_all([Category(slug="music", name="Music"), Category(slug="gaming", name="Gaming")])
    creators = [await make_user(roles=["creator"], display_name=f"Creator {i}") for i in range(6)]
    specs = [
        (5, {"category": "music", "language": "ne", "region": "np"}),
        (50, {"category": "gaming", "language": "en", "region": "in"}),
        (10, {"category": "music", "language": "en", "region": "np", "audio_only": True, "tags": ["Ghazal"]}),
        (50, {"language": "hi", "region": "in"}),
        (0, {"category": "music", "language": "ne", "region": "global"}),
    ]
    ids = [await _make_live(client, app, new_stream, creators[i], v, **f) for i, (v, f) in enumerate(specs)]
    offline = await new_stream(creators[5], category="music")  # never started: never listed

    r = await client.get("/api/v1/streams/live")
    assert r.status_code == 200
    items = r.json()["items"]
    assert all(set(item) == LIVE_FIELDS for item in items)
    tied = sorted([ids[1], ids[3]], key=uuid.UUID, reverse=True)
    assert [i["id"] for i in items] == [*tied, ids[2], ids[0], ids[4]]
    assert offline["id"] not in {i["id"] for i in items}
    radio = next(i for i in items if i["id"] == ids[2])
    assert radio["viewer_count"] == 10 and radio["category"] == "music" and radio["audio_only"] is True
    assert radio["tags"] == ["ghazal"] and radio["status"] == "live" and radio["like_count"] == 0
    assert radio["owner"] == {"id": str(creators[2].id), "username": creators[2].username, "display_name": "Creator 2"}
    assert datetime.fromisoformat(radio["started_at"]).tzinfo is not None

    # Every page size walks the same order without gaps or repeats.
    for limit in (1, 2, 3):
        assert [i["id"] for i in await _all_pages(client, {"limit": limit})] == [i["id"] for i in items]
    recent = await _all_pages(client, {"sort": "recent", "limit": 2})
    assert [i["id"] for i in recent] == list(reversed(ids))

    async def listed(**params):
        return [i["id"] for i in (await client.get("/api/v1/streams/live", params=params)).json()["items"]]

    assert await listed(category="music") == [ids[2], ids[0], ids[4]]
    assert await listed(category="music", language="ne") == [ids[0], ids[4]]
    assert await listed(region="in") == tied
    assert await listed(language="EN", sort="recent") == [ids[2], ids[1]]
    assert await listed(category="no-such-thing") == []

    # A stream that ends leaves the listing.
    c = creators[1]
    assert (await client.post(f"/api/v1/streams/{ids[1]}/end", headers=c.headers)).status_code == 200
    assert ids[1] not in await listed()


async def test_live_listing_searches_titles(app, client, make_user, new_stream):
    creators = [await make_user(roles=["creator"]) for _ in range(4)]
    titles = ["Evening Ghazal radio", "ghazal & chai", "100% Lo-fi_beats", "Morning news"]
    ids = [await _make_live(client, app, new_stream, c, 0, title=t) for c, t in zip(creators, titles, strict=True)]

    async def found(q: str, **params):
        r = await client.get("/api/v1/streams/live", params={"q": q, **params})
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()["items"]}

    assert await found("GHAZAL") == {ids[0], ids[1]}
    assert await found("  ghazal  ", sort="recent") == {ids[0], ids[1]}
    # LIKE wildcards in the query match themselves only.
    assert await found("100%") == {ids[2]}
    assert await found("o_b") == set()
    assert await found("lo-fi_") == {ids[2]}
    assert await found("%") == {ids[2]}
    assert await found("nothing like it") == set()
    # Paging a search keeps the filter.
    r = await client.get("/api/v1/streams/live", params={"q": "ghazal", "limit": 1})
    page1 = r.json()
    page2 = (
        await client.get("/api/v1/streams/live", params={"q": "ghazal", "limit": 1, "cursor": page1["next_cursor"]})
    ).json()
    assert {page1["items"][0]["id"], page2["items"][0]["id"]} == {ids[0], ids[1]} and page2["next_cursor"] is None
    assert_error(await client.get("/api/v1/streams/live", params={"q": "x" * 101}), 422, "invalid_input")
    assert_error(await client.get("/api/v1/streams/live", params={"q": "a\nb"}), 422, "invalid_input")


async def test_live_listing_rejects_bad_filters_and_cursors(client):
    first = await client.get("/api/v1/streams/live")
    assert first.json() == {"items": [], "next_cursor": None}
    from halobuzz.core.pagination import encode_cursor

    bad = [
        ({"sort": "likes"}, "invalid_input"),
        ({"category": "Not A Slug!"}, "invalid_input"),
        ({"language": "english"}, "invalid_input"),
        ({"region": "x"}, "invalid_input"),
        ({"limit": 0}, "invalid_input"),
        ({"limit": 101}, "invalid_input"),
        ({"limit": "ten"}, "invalid_input"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ({"cursor": encode_cursor("r", datetime.now().astimezone(), uuid.uuid4())}, "invalid_cursor"),
        ({"cursor": encode_cursor("v", 3, uuid.uuid4()), "sort": "recent"}, "invalid_cursor"),
        ({"cursor": encode_cursor("r", datetime(2030, 1, 1), uuid.uuid4()), "sort": "recent"}, "invalid_cursor"),  # noqa: DTZ001
        ({"cursor": encode_cursor("v", "many", uuid.uuid4())}, "invalid_cursor"),
        ({"cursor": "x" * 600}, "invalid_input"),
    ]
    for params, code in bad:
        assert_error(await client.get("/api/v1/streams/live", params=params), 422, code)


async def test_live_listing_cache_is_invalidated_by_start_end_and_edit(app_factory, make_user):
    cached_app = await app_factory(http={"cache_ttl_seconds": 300})
    creator = await make_user(roles=["creator"])
    async with client_for(cached_app) as anon, client_for(cached_app) as owner_client:

        async def live_titles():
            r = await anon.get("/api/v1/streams/live")
            assert r.status_code == 200
            return [i["title"] for i in r.json()["items"]]

        first = (await owner_client.post("/api/v1/streams", json={"title": "one"}, headers=creator.headers)).json()
        second = (await owner_client.post("/api/v1/streams", json={"title": "two"}, headers=creator.headers)).json()
        assert (
            await owner_client.post(f"/api/v1/streams/{first['id']}/start", headers=creator.headers)
        ).status_code == 200
        assert await live_titles() == ["one"]

        # The listing is served from the cache: a change behind the service's back is not seen.
        # (With Redis, each invalidation also echoes back through pub/sub and drops entries again
        # when it arrives; retry until a cached answer survives.)
        sneaky = None
        for attempt in range(200):
            before = await live_titles()
            sneaky = f"sneaky {attempt}"
            async with cached_app.runtime.db.session() as session:
                await session.execute(update(Stream).where(Stream.id == uuid.UUID(first["id"])).values(title=sneaky))
            if await live_titles() == before:
                break
        else:
            raise AssertionError("the live listing was never served from the cache")
        # An authenticated request bypasses the cache.
        r = await owner_client.get("/api/v1/streams/live", headers=creator.headers)
        assert [i["title"] for i in r.json()["items"]] == [sneaky]

        # Going live shows at once.
        assert (
            await owner_client.post(f"/api/v1/streams/{second['id']}/start", headers=creator.headers)
        ).status_code == 200
        assert sorted(await live_titles()) == sorted([sneaky, "two"])
        # So does an edit of a live stream, and ending.
        r = await owner_client.patch(f"/api/v1/streams/{second['id']}", json={"title": "deux"}, headers=creator.headers)
        assert r.status_code == 200
        assert sorted(await live_titles()) == sorted(["deux", sneaky])
        assert (
            await owner_client.post(f"/api/v1/streams/{first['id']}/end", headers=creator.headers)
        ).status_code == 200
        assert await live_titles() == ["deux"]
        # A failed change (already live) invalidates nothing and changes nothing.
        r = await owner_client.post(f"/api/v1/streams/{second['id']}/start", headers=creator.headers)
        assert_error(r, 409, "already_live")
        assert await live_titles() == ["deux"]
