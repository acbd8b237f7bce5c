"""The inbox through the HTTP API: notifications made by real follows, cursor pages, unread counts,
read marks, deletion, and every kind of bad input (a 4xx error that changes nothing)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from halobuzz.app import HaloBuzzApp
from tests.conftest import assert_error
from tests.notifications.conftest import API, wait_notified


async def _followed_by(client: httpx.AsyncClient, make_user: Any, target: Any, count: int) -> list[Any]:
    followers = []
    for _ in range(count):
        follower = await make_user()
        r = await client.post(f"{API}/users/{target.id}/follow", headers=follower.headers)
        assert r.status_code == 200, r.text
        followers.append(follower)
    return followers


async def test_follows_fill_the_inbox_newest_first_across_cursor_pages(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any
) -> None:
    target = await make_user()
    followers = await _followed_by(client, make_user, target, 23)
    await wait_notified(app, target.id, "new_follower", 23)

    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(f"{API}/notifications", params=params, headers=target.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor", "unread_count"}
        assert body["unread_count"] == 23
        for item in body["items"]:
            assert set(item) == {"id", "type", "data", "created_at", "read_at"}
            assert item["type"] == "new_follower" and item["read_at"] is None
        seen.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len({i["id"] for i in seen}) == 23
    assert [i["id"] for i in seen] == sorted((i["id"] for i in seen), reverse=True)
    # Newest first: the last follower is the first item; each names its follower.
    assert seen[0]["data"]["follower"] == {"id": str(followers[-1].id), "username": followers[-1].username}
    assert {i["data"]["follower"]["id"] for i in seen} == {str(f.id) for f in followers}

    # Nobody else sees them.
    other = await make_user()
    r = await client.get(f"{API}/notifications", headers=other.headers)
    assert r.json() == {"items": [], "next_cursor": None, "unread_count": 0}


async def test_read_marks_one_some_and_all_and_delete(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any
) -> None:
    target = await make_user()
    await _followed_by(client, make_user, target, 5)
    await wait_notified(app, target.id, "new_follower", 5)
    items = (await client.get(f"{API}/notifications", headers=target.headers)).json()["items"]
    ids = [i["id"] for i in items]

    r = await client.post(f"{API}/notifications/{ids[0]}/read", headers=target.headers)
    assert r.status_code == 200 and r.json()["read_at"] is not None
    first_read_at = r.json()["read_at"]
    r = await client.post(f"{API}/notifications/{ids[0]}/read", headers=target.headers)
    assert r.json()["read_at"] == first_read_at  # idempotent
    assert (await client.get(f"{API}/notifications/unread-count", headers=target.headers)).json() == {"unread_count": 4}

    r = await client.post(f"{API}/notifications/read", json={"ids": ids[1:3]}, headers=target.headers)
    assert r.status_code == 200 and r.json() == {"updated": 2, "unread_count": 2}
    unread = (await client.get(f"{API}/notifications", params={"unread": "true"}, headers=target.headers)).json()
    assert [i["id"] for i in unread["items"]] == ids[3:]

    # Another user's ids change nothing, and say nothing.
    stranger = await make_user()
    r = await client.post(f"{API}/notifications/read", json={"ids": ids[3:]}, headers=stranger.headers)
    assert r.json() == {"updated": 0, "unread_count": 0}
    assert_error(
        await client.post(f"{API}/notifications/{ids[3]}/read", headers=stranger.headers), 404, "notification_not_found"
    )
    assert_error(
        await client.delete(f"{API}/notifications/{ids[3]}", headers=stranger.headers), 404, "notification_not_found"
    )

    r = await client.post(f"{API}/notifications/read", json={"all": True}, headers=target.headers)
    assert r.json() == {"updated": 2, "unread_count": 0}

    r = await client.delete(f"{API}/notifications/{ids[0]}", headers=target.headers)
    assert r.status_code == 204
    left = (await client.get(f"{API}/notifications", headers=target.headers)).json()["items"]
    assert [i["id"] for i in left] == ids[1:]
    assert_error(
        await client.delete(f"{API}/notifications/{ids[0]}", headers=target.headers), 404, "notification_not_found"
    )


async def test_bad_input_is_refused_with_the_error_shape_and_changes_nothing(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any
) -> None:
    target = await make_user()
    await _followed_by(client, make_user, target, 1)
    await wait_notified(app, target.id, "new_follower")
    h = target.headers

    assert_error(await client.get(f"{API}/notifications"), 401, "not_authenticated")
    assert_error(
        await client.get(f"{API}/notifications", params={"cursor": "not-a-cursor"}, headers=h), 422, "invalid_cursor"
    )
    assert_error(await client.get(f"{API}/notifications", params={"limit": 0}, headers=h), 422, "invalid_input")
    assert_error(await client.get(f"{API}/notifications", params={"limit": 101}, headers=h), 422, "invalid_input")
    assert_error(await client.get(f"{API}/notifications", params={"unread": "maybe"}, headers=h), 422, "invalid_input")
    for body in (
        {},
        {"all": False},
        {"ids": []},
        {"ids": ["nope"]},
        {"ids": [str(uuid.uuid4())], "all": True},
        {"all": "yes please"},
        {"everything": True},
    ):
        err = assert_error(await client.post(f"{API}/notifications/read", json=body, headers=h), 422, "invalid_input")
        assert err["message"], body
    r = await client.post(
        f"{API}/notifications/read", content=b"{not json", headers={**h, "Content-Type": "application/json"}
    )
    assert_error(r, 422, "invalid_input")
    assert_error(await client.post(f"{API}/notifications/not-a-uuid/read", headers=h), 422, "invalid_input")
    assert_error(await client.delete(f"{API}/notifications/{uuid.uuid4()}", headers=h), 404, "notification_not_found")

    body = (await client.get(f"{API}/notifications", headers=h)).json()
    assert body["unread_count"] == 1 and len(body["items"]) == 1
