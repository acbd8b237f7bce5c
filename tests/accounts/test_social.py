"""Follows and blocks through the API: idempotence, exact counters under races, blocking rules,
cursor pagination of followers / following / blocks."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select, update

from halobuzz.accounts import social
from halobuzz.accounts.models import Block, Follow, User
from halobuzz.app import HaloBuzzApp
from tests.conftest import assert_error

API = "/api/v1/users"


async def counts(app: HaloBuzzApp, user_id: uuid.UUID) -> tuple[int, int]:
    """(follower_count, following_count) as stored."""
    async with app.runtime.db.session(write=False) as s:
        row = (await s.execute(select(User.follower_count, User.following_count).where(User.id == user_id))).one()
        return row.follower_count, row.following_count


async def edge_counts(app: HaloBuzzApp, user_id: uuid.UUID) -> tuple[int, int]:
    """(followers, following) counted from the follow rows."""
    async with app.runtime.db.session(write=False) as s:
        followers = await s.scalar(select(func.count()).select_from(Follow).where(Follow.followee_id == user_id))
        following = await s.scalar(select(func.count()).select_from(Follow).where(Follow.follower_id == user_id))
        return int(followers or 0), int(following or 0)


async def set_status(app: HaloBuzzApp, user_id: uuid.UUID, status: str) -> None:
    async with app.runtime.db.session() as s:
        await s.execute(update(User).where(User.id == user_id).values(status=status))


async def follow(client: httpx.AsyncClient, who: Any, target: str | uuid.UUID) -> httpx.Response:
    return await client.post(f"{API}/{target}/follow", headers=who.headers)


async def unfollow(client: httpx.AsyncClient, who: Any, target: str | uuid.UUID) -> httpx.Response:
    return await client.delete(f"{API}/{target}/follow", headers=who.headers)


async def test_follow_and_unfollow_are_idempotent(app, client, make_user):
    alice, bob = await make_user(), await make_user()
    r = await follow(client, alice, bob.id)
    assert r.status_code == 200, r.text
    assert r.json() == {"user_id": str(bob.id), "following": True, "follower_count": 1}
    r = await follow(client, alice, bob.id)
    assert r.json() == {"user_id": str(bob.id), "following": True, "follower_count": 1}
    assert await counts(app, bob.id) == (1, 0)
    assert await counts(app, alice.id) == (0, 1)

    r = await client.get(f"{API}/{bob.id}", headers=alice.headers)
    assert r.json()["is_following"] is True and r.json()["follower_count"] == 1
    r = await client.get(f"{API}/{alice.id}", headers=bob.headers)
    assert r.json()["is_followed_by"] is True and r.json()["is_following"] is False

    r = await unfollow(client, alice, bob.id)
    assert r.status_code == 200, r.text
    assert r.json() == {"user_id": str(bob.id), "following": False, "follower_count": 0}
    r = await unfollow(client, alice, bob.id)
    assert r.json() == {"user_id": str(bob.id), "following": False, "follower_count": 0}
    assert await counts(app, bob.id) == (0, 0)
    assert await counts(app, alice.id) == (0, 0)


async def test_follow_by_username_any_case(app, client, make_user):
    alice, bob = await make_user(), await make_user("Bob_Builder")
    r = await follow(client, alice, "bob_BUILDER")
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == str(bob.id)
    assert await counts(app, bob.id) == (1, 0)


async def test_follow_errors(app, client, make_user):
    alice, bob = await make_user(), await make_user()
    assert_error(await follow(client, alice, alice.id), 422, "cannot_follow_self")
    assert_error(await follow(client, alice, "me"), 422, "cannot_follow_self")
    assert_error(await follow(client, alice, alice.username.upper()), 422, "cannot_follow_self")
    assert_error(await follow(client, alice, uuid.uuid4()), 404, "user_not_found")
    assert_error(await follow(client, alice, "nobody_here"), 404, "user_not_found")
    assert_error(await follow(client, alice, "x" * 65), 422, "invalid_input")
    assert_error(await client.post(f"{API}/{bob.id}/follow"), 401, "not_authenticated")
    assert_error(
        await client.post(f"{API}/{bob.id}/follow", headers={"Authorization": "Bearer nope"}), 401, "invalid_token"
    )
    assert_error(await unfollow(client, alice, alice.id), 422, "cannot_unfollow_self")
    assert_error(await unfollow(client, alice, uuid.uuid4()), 404, "user_not_found")
    await set_status(app, bob.id, "banned")
    assert_error(await follow(client, alice, bob.id), 404, "user_not_found")
    assert await counts(app, bob.id) == (0, 0)
    assert await counts(app, alice.id) == (0, 0)


async def test_racing_follows_count_exactly(app, client, make_user):
    star = await make_user()
    fans = await asyncio.gather(*(make_user() for _ in range(50)))
    responses = await asyncio.gather(*(follow(client, fan, star.id) for fan in fans))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    assert sorted(r.json()["follower_count"] for r in responses) == list(range(1, 51))
    assert await counts(app, star.id) == (50, 0)
    assert await edge_counts(app, star.id) == (50, 0)
    for fan in fans[:3]:
        assert await counts(app, fan.id) == (0, 1)


async def test_twelve_racing_follows_from_six_users(app, client, make_user):
    star = await make_user()
    fans = await asyncio.gather(*(make_user() for _ in range(6)))
    responses = await asyncio.gather(*(follow(client, fan, star.id) for fan in fans for _ in range(2)))
    assert {r.status_code for r in responses} == {200}
    assert all(r.json()["following"] is True for r in responses)
    assert await counts(app, star.id) == (6, 0)
    r = await client.get(f"{API}/{star.id}")
    assert r.json()["follower_count"] == 6


async def test_racing_follow_unfollow_pairs_keep_counts_equal_to_rows(app, client, make_user):
    star = await make_user()
    fans = await asyncio.gather(*(make_user() for _ in range(20)))
    # Half already follow; every fan now races a follow against an unfollow.
    await asyncio.gather(*(follow(client, fan, star.id) for fan in fans[:10]))
    calls = []
    for fan in fans:
        calls += [follow(client, fan, star.id), unfollow(client, fan, star.id)]
    responses = await asyncio.gather(*calls)
    assert {r.status_code for r in responses} == {200}
    followers, _ = await edge_counts(app, star.id)
    assert await counts(app, star.id) == (followers, 0)
    for fan in fans:
        stored = await counts(app, fan.id)
        assert stored == (0, (await edge_counts(app, fan.id))[1])


async def test_blocked_user_cannot_follow_and_block_removes_follows(app, client, make_user):
    alice, bob = await make_user(), await make_user()
    await follow(client, alice, bob.id)
    await follow(client, bob, alice.id)
    assert await counts(app, alice.id) == (1, 1)

    r = await client.post(f"{API}/{alice.id}/block", headers=bob.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"user_id": str(alice.id), "blocked": True}
    assert await counts(app, alice.id) == (0, 0)
    assert await counts(app, bob.id) == (0, 0)
    assert await edge_counts(app, alice.id) == (0, 0)
    # Blocking again is a no-op.
    r = await client.post(f"{API}/{alice.id}/block", headers=bob.headers)
    assert r.status_code == 200 and r.json()["blocked"] is True

    err = assert_error(await follow(client, alice, bob.id), 403, "blocked")
    assert "blocked you" in err["message"]
    err = assert_error(await follow(client, bob, alice.id), 403, "blocked")
    assert "unblock" in err["message"]
    assert await counts(app, bob.id) == (0, 0)

    r = await client.get(f"{API}/{alice.id}", headers=bob.headers)
    assert r.json()["is_blocked"] is True
    r = await client.get(f"{API}/{bob.id}", headers=alice.headers)
    assert r.json()["is_blocked"] is False  # alice does not learn of bob's block from his profile

    async with app.runtime.db.session(write=False) as s:
        assert await social.is_blocked(session=s, blocker_id=bob.id, blocked_id=alice.id)
        assert not await social.is_blocked(session=s, blocker_id=alice.id, blocked_id=bob.id)
        assert await social.blocked_either_way(session=s, a=alice.id, b=bob.id)
        assert await social.blocked_either_way(session=s, a=bob.id, b=alice.id)

    r = await client.delete(f"{API}/{alice.id}/block", headers=bob.headers)
    assert r.status_code == 200 and r.json() == {"user_id": str(alice.id), "blocked": False}
    r = await client.delete(f"{API}/{alice.id}/block", headers=bob.headers)
    assert r.status_code == 200 and r.json()["blocked"] is False
    async with app.runtime.db.session(write=False) as s:
        assert not await social.blocked_either_way(session=s, a=alice.id, b=bob.id)
    # Follows are not restored, but following works again.
    assert await counts(app, alice.id) == (0, 0)
    assert (await follow(client, alice, bob.id)).json()["follower_count"] == 1


async def test_block_only_one_direction_of_follows(app, client, make_user):
    alice, bob, carol = await make_user(), await make_user(), await make_user()
    await follow(client, alice, bob.id)
    await follow(client, carol, bob.id)
    await client.post(f"{API}/{alice.id}/block", headers=bob.headers)
    assert await counts(app, bob.id) == (1, 0)
    assert await counts(app, alice.id) == (0, 0)
    assert await counts(app, carol.id) == (0, 1)


async def test_block_errors(app, client, make_user):
    alice = await make_user()
    assert_error(await client.post(f"{API}/{alice.id}/block", headers=alice.headers), 422, "cannot_block_self")
    assert_error(await client.post(f"{API}/me/block", headers=alice.headers), 422, "cannot_block_self")
    assert_error(await client.delete(f"{API}/me/block", headers=alice.headers), 422, "cannot_unblock_self")
    assert_error(await client.post(f"{API}/{uuid.uuid4()}/block", headers=alice.headers), 404, "user_not_found")
    assert_error(await client.delete(f"{API}/nobody/block", headers=alice.headers), 404, "user_not_found")
    assert_error(await client.post(f"{API}/{alice.id}/block"), 401, "not_authenticated")
    assert_error(await client.get(f"{API}/me/blocks"), 401, "not_authenticated")
    async with app.runtime.db.session(write=False) as s:
        assert await s.scalar(select(func.count()).select_from(Block)) == 0


async def test_racing_blocks_and_follows_never_leave_a_follow_behind(app, client, make_user):
    alice, bob = await make_user(), await make_user()
    calls = []
    for _ in range(5):
        calls += [follow(client, alice, bob.id), client.post(f"{API}/{alice.id}/block", headers=bob.headers)]
    responses = await asyncio.gather(*calls)
    assert {r.status_code for r in responses} <= {200, 403}
    assert await edge_counts(app, bob.id) == (0, 0)
    assert await counts(app, bob.id) == (0, 0)
    assert await counts(app, alice.id) == (0, 0)


async def _walk(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None, limit: int = 2
) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(url, params=params, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= limit
        seen += [item["username"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


async def test_followers_and_following_pages_newest_first(app, client, make_user):
    star = await make_user()
    fans = [await make_user() for _ in range(5)]
    for fan in fans:
        assert (await follow(client, fan, star.id)).status_code == 200
    expected = [fan.username for fan in reversed(fans)]
    assert await _walk(client, f"{API}/{star.id}/followers") == expected
    assert await _walk(client, f"{API}/{star.username.upper()}/followers", limit=100) == expected
    r = await client.get(f"{API}/{star.id}/followers")
    item = r.json()["items"][0]
    assert {"id", "username", "display_name", "follower_count", "following_count", "roles"} <= set(item)
    assert "email" not in item

    for fan in fans[:3]:
        await follow(client, star, fan.id)
    assert await _walk(client, f"{API}/me/following", headers=star.headers) == [f.username for f in reversed(fans[:3])]
    assert await _walk(client, f"{API}/{fans[0].id}/following") == [star.username]

    # Banned users disappear from lists (their rows stay).
    await set_status(app, fans[4].id, "banned")
    assert await _walk(client, f"{API}/{star.id}/followers", limit=100) == expected[1:]


async def test_list_errors(app, client, make_user):
    star = await make_user()
    assert_error(await client.get(f"{API}/{star.id}/followers", params={"cursor": "garbage"}), 422, "invalid_cursor")
    assert_error(await client.get(f"{API}/{star.id}/following", params={"cursor": "e30"}), 422, "invalid_cursor")
    assert_error(await client.get(f"{API}/{star.id}/followers", params={"limit": 0}), 422, "invalid_input")
    assert_error(await client.get(f"{API}/{star.id}/followers", params={"limit": 101}), 422, "invalid_input")
    assert_error(await client.get(f"{API}/{star.id}/followers", params={"limit": "x"}), 422, "invalid_input")
    assert_error(await client.get(f"{API}/{uuid.uuid4()}/followers"), 404, "user_not_found")
    assert_error(await client.get(f"{API}/me/followers"), 401, "not_authenticated")
    assert_error(
        await client.get(f"{API}/me/blocks", params={"cursor": "!!"}, headers=star.headers), 422, "invalid_cursor"
    )
    r = await client.get(f"{API}/{star.id}/followers")
    assert r.json() == {"items": [], "next_cursor": None}


async def test_my_blocks_pages(app, client, make_user):
    me = await make_user()
    others = [await make_user() for _ in range(3)]
    for other in others:
        assert (await client.post(f"{API}/{other.username}/block", headers=me.headers)).status_code == 200
    assert await _walk(client, f"{API}/me/blocks", headers=me.headers) == [o.username for o in reversed(others)]
    # A banned user stays listed, so the block can be lifted.
    await set_status(app, others[0].id, "banned")
    assert others[0].username in await _walk(client, f"{API}/me/blocks", headers=me.headers, limit=100)
    r = await client.delete(f"{API}/{others[0].id}/block", headers=me.headers)
    assert r.status_code == 200
    assert await _walk(client, f"{API}/me/blocks", headers=me.headers) == [o.username for o in reversed(others[1:])]
