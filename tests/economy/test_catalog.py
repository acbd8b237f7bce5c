"""Coin packages and the gift catalog: public listings and admin management."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from halobuzz.economy import service
from tests.conftest import assert_error

API = "/api/v1"


async def test_coin_packages_admin_crud_and_public_list(client, admin, fan):
    body = {"name": "Starter", "coins": 500, "bonus_coins": 50, "prices": {"NPR": 1000, "USD": 99}}
    r = await client.post(f"{API}/admin/coin-packages", json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    package = r.json()
    assert package["coins"] == 500 and package["prices"] == {"NPR": 1000, "USD": 99} and package["is_active"]
    assert_error(await client.post(f"{API}/admin/coin-packages", json=body, headers=admin.headers), 409, "name_taken")
    assert_error(await client.post(f"{API}/admin/coin-packages", json=body, headers=fan.headers), 403)
    for bad in (
        {**body, "name": "x", "prices": {}},
        {**body, "name": "x", "prices": {"EUR": 100}},
        {**body, "name": "x", "prices": {"NPR": 0}},
        {**body, "name": "x", "coins": 0},
        {**body, "name": "x", "bonus_coins": -1},
        {**body, "name": "x", "extra": 1},
        {"name": "x"},
    ):
        assert_error(await client.post(f"{API}/admin/coin-packages", json=bad, headers=admin.headers), 422)
    listed = (await client.get(f"{API}/coin-packages")).json()["items"]
    assert [p["id"] for p in listed] == [package["id"]]
    url = f"{API}/admin/coin-packages/{package['id']}"
    r = await client.patch(url, json={"prices": {"NPR": 1200}, "position": 2}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["prices"] == {"NPR": 1200}
    assert_error(await client.patch(url, json={"prices": {"XXX": 1}}, headers=admin.headers), 422)
    assert_error(await client.patch(f"{API}/admin/coin-packages/{uuid.uuid4()}", json={}, headers=admin.headers), 404)
    assert (await client.delete(url, headers=admin.headers)).json()["is_active"] is False
    assert (await client.get(f"{API}/coin-packages")).json()["items"] == []
    assert len((await client.get(f"{API}/admin/coin-packages", headers=admin.headers)).json()["items"]) == 1


async def test_gift_catalog_window_and_admin_crud(client, admin, fan):
    now = datetime.now(UTC)
    r = await client.post(
        f"{API}/admin/gifts",
        json={"name": "Rose", "coin_price": 1, "rarity": "common", "animation_url": "https://cdn.example/rose.json"},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    rose = r.json()
    later = {
        "name": "Lantern",
        "coin_price": 50,
        "rarity": "epic",
        "available_from": (now + timedelta(days=1)).isoformat(),
        "available_until": (now + timedelta(days=2)).isoformat(),
    }
    assert (await client.post(f"{API}/admin/gifts", json=later, headers=admin.headers)).status_code == 201
    assert [g["name"] for g in (await client.get(f"{API}/gifts")).json()["items"]] == ["Rose"]
    assert len((await client.get(f"{API}/admin/gifts", headers=admin.headers)).json()["items"]) == 2
    for bad in (
        {"name": "a", "coin_price": 0},
        {"name": "a", "coin_price": 1, "rarity": "mythic"},
        {"name": "", "coin_price": 1},
        {"name": "a", "coin_price": 1, "animation_url": "javascript:alert(1)"},
        {"name": "a", "coin_price": 1, "available_from": "2030-01-01T00:00:00"},
        {**later, "name": "b", "available_until": later["available_from"]},
    ):
        assert_error(await client.post(f"{API}/admin/gifts", json=bad, headers=admin.headers), 422)
    assert_error(
        await client.post(f"{API}/admin/gifts", json={"name": "Rose", "coin_price": 2}, headers=admin.headers), 409
    )
    assert_error(await client.post(f"{API}/admin/gifts", json={"name": "z", "coin_price": 2}, headers=fan.headers), 403)
    url = f"{API}/admin/gifts/{rose['id']}"
    r = await client.patch(url, json={"coin_price": 2, "name": None}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["coin_price"] == 2 and r.json()["name"] == "Rose"
    assert_error(await client.patch(url, json={"name": "Lantern"}, headers=admin.headers), 409, "name_taken")
    assert_error(await client.patch(f"{API}/admin/gifts/{uuid.uuid4()}", json={}, headers=admin.headers), 404)
    assert (await client.delete(url, headers=admin.headers)).json()["is_active"] is False
    assert (await client.get(f"{API}/gifts")).json()["items"] == []


async def test_default_catalog_is_idempotent(app, client):
    for _ in range(2):
        async with app.runtime.db.session() as session:
            await service.ensure_default_catalog(session)
    packages = (await client.get(f"{API}/coin-packages")).json()["items"]
    assert len(packages) == len(service.DEFAULT_PACKAGES)
    starter = packages[0]
    assert starter["coins"] == 500 and starter["prices"]["NPR"] == 1000  # NPR 10 = 500 coins
    assert set(starter["prices"]) == set(service.CURRENCIES)
    assert len((await client.get(f"{API}/gifts")).json()["items"]) == len(service.DEFAULT_GIFTS)
