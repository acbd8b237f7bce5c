from tests.accounts.conftest import register, login, bearer, SESSIONS


async def test_smoke(client):
    r = await register(client, "alice")
    assert r.status_code == 201, r.text
    print(r.json())
    r = await login(client, "alice")
    assert r.status_code == 200, r.text
    t = r.json()
    r = await client.get(SESSIONS, headers=bearer(t))
    assert r.status_code == 200, r.text
    print(r.json())
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": t["refresh_token"]})
    assert r.status_code == 200, r.text
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": t["refresh_token"]})
    print(r.status_code, r.text)
