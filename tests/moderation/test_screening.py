"""Profiles and stream titles screened on write, automatic tags, and image checks (hash blocklist,
classifier plugin) for avatars and stream covers — through the HTTP API."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw

from tests.conftest import assert_error, client_for

API = "/api/v1"


def picture(
    seed: int, size: tuple[int, int] = (400, 300), fmt: str = "PNG", colour: tuple[int, int, int] | None = None
) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGB", (400, 300), colour or (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(image)
    if colour is None:
        for _ in range(12):
            x, y = rng.randrange(350), rng.randrange(250)
            fill = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            draw.rectangle((x, y, x + rng.randrange(20, 120), y + rng.randrange(20, 120)), fill=fill)
    image = image.resize(size)
    out = io.BytesIO()
    image.save(out, fmt, quality=70) if fmt == "JPEG" else image.save(out, fmt)
    return out.getvalue()


async def test_profiles_are_screened(app, client, make_user):
    user, mod = await make_user(), await make_user(roles=["moderator"])
    err = assert_error(
        await client.patch(f"{API}/users/me", json={"display_name": "r3tard"}, headers=user.headers), 422
    )
    assert err["code"] == "content_blocked" and err["details"]["field"] == "display_name"
    me = (await client.get(f"{API}/users/me", headers=user.headers)).json()
    assert me["display_name"] == user.username  # nothing saved
    # Held: saved, and an automatic case waits in the queue with the AI's score.
    r = await client.patch(f"{API}/users/me", json={"bio": "what the fuck is this"}, headers=user.headers)
    assert r.status_code == 200 and r.json()["bio"] == "what the fuck is this"
    queue = (await client.get(f"{API}/moderation/queue", headers=mod.headers)).json()
    assert [(c["target_type"], c["target_id"], c["report_count"]) for c in queue] == [("user", str(user.id), 0)]
    assert queue[0]["ai_score"] == 0.75
    ctx = (await client.get(f"{API}/moderation/cases/{queue[0]['id']}", headers=mod.headers)).json()
    assert ctx["target"]["bio"] == "what the fuck is this"
    # Clean edits pass without a case.
    assert (
        await client.patch(f"{API}/users/me", json={"bio": "Cricket fan from Lalitpur"}, headers=user.headers)
    ).status_code == 200
    assert len((await client.get(f"{API}/moderation/queue", headers=mod.headers)).json()) == 1


async def test_streams_are_screened_and_tagged(app, client, make_user):
    creator, mod = await make_user(roles=["creator"]), await make_user(roles=["moderator"])
    err = assert_error(
        await client.post(f"{API}/streams", json={"title": "chamar log dekho"}, headers=creator.headers), 422
    )
    assert err["code"] == "content_blocked" and err["details"]["field"] == "title"
    r = await client.post(
        f"{API}/streams",
        json={"title": "Cooking momo with dai", "description": "Dashain special recipe #momo", "region": "np"},
        headers=creator.headers,
    )
    assert r.status_code == 201, r.text
    stream = r.json()
    assert stream["auto_tags"][:2] == ["cooking", "festival"] and "momo" in stream["auto_tags"]
    r = await client.patch(
        f"{API}/streams/{stream['id']}", json={"title": "PUBG ranked grind"}, headers=creator.headers
    )
    assert r.json()["auto_tags"] == ["gaming", "cooking", "festival", "momo"]
    # Mild insults are only held where the region's rules say so (Nepal here).
    r = await client.patch(
        f"{API}/streams/{stream['id']}", json={"description": "murkha haru lai"}, headers=creator.headers
    )
    assert r.status_code == 200
    queue = (await client.get(f"{API}/moderation/queue", headers=mod.headers)).json()
    assert [(c["target_type"], c["target_id"]) for c in queue] == [("stream", stream["id"])]
    elsewhere = await client.post(
        f"{API}/streams", json={"title": "talk", "description": "murkha haru lai"}, headers=creator.headers
    )
    assert elsewhere.status_code == 201
    assert len((await client.get(f"{API}/moderation/queue", headers=mod.headers)).json()) == 1


async def test_image_blocklist_and_classifier(app_factory, make_user):
    app = await app_factory(moderation={"image_classifier": "tests.moderation.classifier_plugin:factory"})
    mod, user = await make_user(roles=["moderator"]), await make_user(roles=["creator"])
    bad, good = picture(1), picture(2)
    async with client_for(app) as client:
        url = f"{API}/admin/moderation/image-blocklist"
        assert_error(await client.get(url, headers=user.headers), 403)
        added = await client.post(
            f"{url}/upload",
            data={"reason": "known abuse image"},
            files={"file": ("b.png", bad, "image/png")},
            headers=mod.headers,
        )
        assert added.status_code == 201, added.text
        block = added.json()
        assert len(block["phash"]) == 16 and len(block["dhash"]) == 16
        again = await client.post(
            f"{url}", json={**{k: block[k] for k in ("phash", "dhash")}, "reason": "x"}, headers=mod.headers
        )
        assert_error(again, 409, "already_blocked")
        assert_error(
            await client.post(url, json={"phash": "zz" * 8, "dhash": "0" * 16, "reason": "x"}, headers=mod.headers), 422
        )

        # Broken or foreign files are refused with a clear 4xx, never a 500.
        for data, status in ((bad[: len(bad) // 3], 422), (b"GIF89a" + b"\0" * 64, 415), (b"", 422)):
            r = await client.post(
                f"{url}/upload", data={"reason": "x"}, files={"file": ("b.png", data, "image/png")}, headers=mod.headers
            )
            assert_error(r, status)
            r = await client.put(
                f"{API}/users/me/avatar", files={"file": ("b.png", data, "image/png")}, headers=user.headers
            )
            assert 400 <= r.status_code < 500, r.text

        # The same picture, smaller and re-encoded as JPEG, is still refused as an avatar and as a cover.
        variant = picture(1, size=(200, 150), fmt="JPEG")
        avatar = await client.put(
            f"{API}/users/me/avatar", files={"file": ("a.jpg", variant, "image/jpeg")}, headers=user.headers
        )
        err = assert_error(avatar, 422, "image_blocked")
        assert err["details"]["phash_distance"] <= 8
        stream = (await client.post(f"{API}/streams", json={"title": "covers"}, headers=user.headers)).json()
        cover = await client.put(
            f"{API}/streams/{stream['id']}/thumbnail",
            files={"file": ("c.jpg", variant, "image/jpeg")},
            headers=user.headers,
        )
        assert_error(cover, 422, "image_blocked")
        assert_error(await client.get(f"{API}/streams/{stream['id']}/thumbnail"), 404, "thumbnail_not_found")

        # Other pictures pass; the cover is served through a redirect.
        ok = await client.put(
            f"{API}/users/me/avatar", files={"file": ("g.png", good, "image/png")}, headers=user.headers
        )
        assert ok.status_code == 200, ok.text
        cover = await client.put(
            f"{API}/streams/{stream['id']}/thumbnail",
            files={"file": ("g.png", good, "image/png")},
            headers=user.headers,
        )
        assert cover.status_code == 200, cover.text
        redirect = await client.get(f"{API}/streams/{stream['id']}/thumbnail")
        assert redirect.status_code == 307 and redirect.headers["location"] == cover.json()["thumbnail_url"]
        served = await client.get(redirect.headers["location"])
        assert served.status_code == 200 and Image.open(io.BytesIO(served.content)).size == (640, 360)
        other = await make_user(roles=["creator"])
        assert_error(
            await client.put(
                f"{API}/streams/{stream['id']}/thumbnail",
                files={"file": ("g.png", good, "image/png")},
                headers=other.headers,
            ),
            403,
        )

        # The classifier plugin refuses what it flags.
        red = await client.put(
            f"{API}/users/me/avatar",
            files={"file": ("r.png", picture(3, colour=(230, 20, 20)), "image/png")},
            headers=user.headers,
        )
        err = assert_error(red, 422, "image_rejected")
        assert err["details"]["labels"] == {"gore": 0.99}

        # Unblocked: the picture is accepted again.
        listed = (await client.get(url, headers=mod.headers)).json()["items"]
        assert [b["id"] for b in listed] == [block["id"]]
        assert (await client.delete(f"{url}/{block['id']}", headers=mod.headers)).status_code == 204
        assert_error(await client.delete(f"{url}/{block['id']}", headers=mod.headers), 404)
        ok = await client.put(
            f"{API}/users/me/avatar", files={"file": ("a.jpg", variant, "image/jpeg")}, headers=user.headers
        )
        assert ok.status_code == 200
