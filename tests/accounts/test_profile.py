"""Profiles through the API: the caller's account, profile edits, public profiles with the viewer's
relationship, and avatars (validated by content, re-encoded, stored, served, replaced, removed)."""

from __future__ import annotations

import io
import os
import re
import struct
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import event, select, update

from halobuzz.accounts.models import User
from halobuzz.app import HaloBuzzApp
from halobuzz.core.storage import LocalStorage
from tests.conftest import assert_error, client_for

API = "/api/v1/users"
PUBLIC_FIELDS = {
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
}
RELATION_FIELDS = {"is_following", "is_followed_by", "is_blocked"}


# --- helpers -----------------------------------------------------------------------------------


async def stored(app: HaloBuzzApp, user_id: uuid.UUID) -> User:
    async with app.runtime.db.session(write=False) as s:
        return (await s.execute(select(User).where(User.id == user_id))).scalar_one()


async def set_status(app: HaloBuzzApp, user_id: uuid.UUID, status: str) -> None:
    async with app.runtime.db.session() as s:
        await s.execute(update(User).where(User.id == user_id).values(status=status))


@contextmanager
def counted_queries(app: HaloBuzzApp) -> Iterator[list[str]]:
    """The SQL statements (not transaction control) the app runs inside the block."""
    statements: list[str] = []
    engines = {app.runtime.db.read_engine.sync_engine, app.runtime.db.write_engine.sync_engine}

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not re.match(r"\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)", statement, re.I):
            statements.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", **save: Any) -> bytes:
    colour: Any = (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30) if mode == "RGB" else 120
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, fmt, **save)
    return out.getvalue()


def halves(size: tuple[int, int] = (200, 100)) -> Image.Image:
    """Left half red, right half blue."""
    image = Image.new("RGB", size, (255, 0, 0))
    image.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    return image


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a ``width``x``height`` canvas (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


async def upload(
    client: httpx.AsyncClient,
    who: Any,
    data: bytes,
    filename: str = "avatar.png",
    content_type: str = "image/png",
) -> httpx.Response:
    return await client.put(f"{API}/me/avatar", files={"file": (filename, data, content_type)}, headers=who.headers)


def media_files(app: HaloBuzzApp) -> list[str]:
    storage = app.runtime.storage
    assert isinstance(storage, LocalStorage)
    if not storage.root.exists():
        return []
    return sorted(str(p.relative_to(storage.root)) for p in storage.root.rglob("*") if p.is_file())


# --- the caller's account ------------------------------------------------------------------------


async def test_get_me(client, make_user):
    alice = await make_user("Alice_1")
    r = await client.get(f"{API}/me", headers=alice.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= PUBLIC_FIELDS
    assert body["id"] == str(alice.id)
    assert body["username"] == "Alice_1"
    assert body["email"] == "alice_1@example.com"
    assert body["roles"] == ["user"]
    assert body["timezone"] == "UTC" and body["language"] == "en"
    assert body["email_verified"] is False and body["two_factor_enabled"] is False
    assert body["avatar_url"] is None


async def test_get_me_needs_a_valid_token(client):
    assert_error(await client.get(f"{API}/me"), 401, "not_authenticated")
    assert_error(await client.get(f"{API}/me", headers={"Authorization": "Bearer x.y.z"}), 401, "invalid_token")
    assert_error(await client.get(f"{API}/me", headers={"Authorization": "Basic abc"}), 401, "invalid_token")


async def test_patch_me_normalises_and_stores(app, client, make_user):
    alice = await make_user()
    changes = {
        "display_name": "  Alice Wonder  ",
        "bio": "Streams at night.\nNamaste!",
        "country": "np",
        "language": "EN-us",
        "timezone": "asia/kathmandu",
    }
    r = await client.patch(f"{API}/me", json=changes, headers=alice.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["display_name"] == "Alice Wonder"
    assert body["bio"] == "Streams at night.\nNamaste!"
    assert body["country"] == "NP"
    assert body["language"] == "en-US"
    assert body["timezone"] == "Asia/Kathmandu"
    user = await stored(app, alice.id)
    assert (user.display_name, user.country, user.language, user.timezone) == (
        "Alice Wonder",
        "NP",
        "en-US",
        "Asia/Kathmandu",
    )
    # Absent fields stay; null clears the optional ones.
    r = await client.patch(f"{API}/me", json={"country": None, "bio": None}, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json()["country"] is None and r.json()["bio"] == ""
    assert r.json()["display_name"] == "Alice Wonder" and r.json()["timezone"] == "Asia/Kathmandu"
    for language in ("ne", "hi", "ur", "bn", "zh-hans", "es-419"):
        r = await client.patch(f"{API}/me", json={"language": language}, headers=alice.headers)
        assert r.status_code == 200, (language, r.text)
    assert r.json()["language"] == "es-419"
    r = await client.patch(f"{API}/me", json={}, headers=alice.headers)
    assert r.status_code == 200 and r.json()["language"] == "es-419"


async def test_patch_me_refuses_bad_input_and_stores_nothing(app, client, make_user):
    alice = await make_user(display_name="Alice")
    before = await stored(app, alice.id)
    bad_bodies: list[tuple[Any, str | None]] = [
        ({"country": "XX"}, "country"),
        ({"country": "Nepal"}, "country"),
        ({"country": "N1"}, "country"),
        ({"language": "english"}, "language"),
        ({"language": "e"}, "language"),
        ({"language": "en_US_POSIX"}, "language"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "localtime"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "   "}, "display_name"),
        ({"display_name": None}, "display_name"),
        ({"display_name": "x" * 61}, "display_name"),
        ({"display_name": "bad\u0000name"}, "display_name"),
        ({"bio": "b" * 501}, "bio"),
        ({"bio": "bell\u0007"}, "bio"),
        ({"bio": 5}, "bio"),
        ({"language": None}, "language"),
        ({"timezone": None}, "timezone"),
        ({"username": "takeover"}, "username"),
        ({"roles": ["admin"]}, "roles"),
        # A valid change next to an invalid one: nothing is stored.
        ({"display_name": "Changed", "timezone": "Nowhere/City"}, "timezone"),
        ([], None),
        ("not an object", None),
    ]
    for body, field in bad_bodies:
        r = await client.patch(f"{API}/me", json=body, headers=alice.headers)
        err = assert_error(r, 422, "invalid_input")
        if field is not None:
            assert any(d["field"] == field for d in err["details"]), (body, err)
    r = await client.patch(
        f"{API}/me", content=b"{not json", headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert_error(r, 422, "invalid_input")
    assert_error(await client.patch(f"{API}/me", json={"bio": "x"}), 401, "not_authenticated")
    after = await stored(app, alice.id)
    assert (after.display_name, after.bio, after.country, after.language, after.timezone) == (
        before.display_name,
        before.bio,
        before.country,
        before.language,
        before.timezone,
    )


# --- public profiles ----------------------------------------------------------------------------


async def test_public_profile_by_id_or_username(client, make_user):
    bob = await make_user("Bob_Stream", roles=["creator"])
    for ref in (str(bob.id), "Bob_Stream", "bob_stream", "BOB_STREAM"):
        r = await client.get(f"{API}/{ref}")
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == PUBLIC_FIELDS | RELATION_FIELDS
        assert body["id"] == str(bob.id) and body["username"] == "Bob_Stream"
        assert body["roles"] == ["user", "creator"]
        assert body["follower_count"] == 0 and body["following_count"] == 0
        assert all(body[f] is None for f in RELATION_FIELDS)


async def test_profile_relationship_fields_for_a_signed_in_viewer(client, make_user):
    alice, bob = await make_user(), await make_user()
    r = await client.get(f"{API}/{bob.id}", headers=alice.headers)
    assert r.status_code == 200, r.text
    assert {f: r.json()[f] for f in RELATION_FIELDS} == dict.fromkeys(RELATION_FIELDS, False)
    await client.post(f"{API}/{bob.id}/follow", headers=alice.headers)
    await client.post(f"{API}/{alice.id}/follow", headers=bob.headers)
    r = await client.get(f"{API}/{bob.username}", headers=alice.headers)
    assert r.json()["is_following"] is True and r.json()["is_followed_by"] is True
    assert r.json()["follower_count"] == 1 and r.json()["following_count"] == 1
    r = await client.get(f"{API}/me", headers=alice.headers)
    assert r.json()["id"] == str(alice.id)


async def test_profile_not_found_and_hidden_users(app, client, make_user):
    alice, banned, deleted, suspended = await make_user(), await make_user(), await make_user(), await make_user()
    await set_status(app, banned.id, "banned")
    await set_status(app, deleted.id, "deleted")
    await set_status(app, suspended.id, "suspended")
    for ref in (str(banned.id), banned.username, str(deleted.id), deleted.username, str(uuid.uuid4()), "nobody"):
        assert_error(await client.get(f"{API}/{ref}"), 404, "user_not_found")
        assert_error(await client.get(f"{API}/{ref}", headers=alice.headers), 404, "user_not_found")
    assert (await client.get(f"{API}/{suspended.id}")).status_code == 200
    assert_error(await client.get(f"{API}/{'x' * 65}"), 422, "invalid_input")
    assert_error(await client.get(f"{API}/{alice.id}", headers={"Authorization": "Bearer bad"}), 401, "invalid_token")


async def test_profile_read_is_one_query_plus_authentication(app_factory, make_user):
    # The routed read (the PostgreSQL fast path, tests/accounts/test_fastpaths.py, bypasses it).
    app = await app_factory(http={"fast_paths": False})
    client = client_for(app)
    alice, bob = await make_user(), await make_user()
    with counted_queries(app) as anonymous:
        assert (await client.get(f"{API}/{bob.id}")).status_code == 200
    assert len(anonymous) == 1, anonymous
    with counted_queries(app) as signed_in:
        assert (await client.get(f"{API}/{bob.username}", headers=alice.headers)).status_code == 200
    assert len(signed_in) == 2, signed_in  # the token's session, then the profile with the relationship


# --- avatars ------------------------------------------------------------------------------------


async def test_avatar_upload_is_reencoded_stored_and_served(app, client, make_user):
    alice = await make_user()
    r = await upload(client, alice, image_bytes("PNG", (300, 200)))
    assert r.status_code == 200, r.text
    url = r.json()["avatar_url"]
    assert re.fullmatch(rf"/media/avatars/{alice.id}/[0-9a-f]{{32}}\.webp", url), url
    user = await stored(app, alice.id)
    assert user.avatar_key == url.removeprefix("/media/")
    assert media_files(app) == [user.avatar_key]

    served = await client.get(url)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/webp"
    assert served.content == (app.runtime.storage.root / user.avatar_key).read_bytes()
    image = Image.open(io.BytesIO(served.content))
    assert image.format == "WEBP" and image.size == (512, 512)

    # Everyone sees the URL on the profile.
    assert (await client.get(f"{API}/{alice.id}")).json()["avatar_url"] == url
    assert (await client.get(f"{API}/me", headers=alice.headers)).json()["avatar_url"] == url


async def test_avatar_accepts_jpeg_and_webp_and_strips_metadata(app, client, make_user):
    alice = await make_user()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    exif[0x010F] = "SecretCam"  # make
    exif[0x8825] = {1: "N", 2: (27.0, 42.0, 0.0)}  # GPS
    photo = io.BytesIO()
    halves().save(photo, "JPEG", exif=exif.tobytes(), quality=95)
    r = await upload(client, alice, photo.getvalue(), "photo.jpg", "image/jpeg")
    assert r.status_code == 200, r.text
    data = (await client.get(r.json()["avatar_url"])).content
    assert b"SecretCam" not in data and b"Exif" not in data
    image = Image.open(io.BytesIO(data))
    assert not image.getexif() and "exif" not in image.info and "icc_profile" not in image.info
    image = image.convert("RGB")
    # Turned upright: the left (red) half of the stored photo is now on top.
    top, bottom = image.getpixel((256, 40)), image.getpixel((256, 470))
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom

    r = await upload(client, alice, image_bytes("WEBP", (40, 40), "RGBA"), "a.webp", "image/webp")
    assert r.status_code == 200, r.text
    image = Image.open(io.BytesIO((await client.get(r.json()["avatar_url"])).content))
    assert image.size == (512, 512) and image.mode == "RGBA"


async def test_avatar_replace_deletes_old_file_and_delete_removes_it(app, client, make_user):
    alice = await make_user()
    first = (await upload(client, alice, image_bytes("PNG", (50, 50)))).json()["avatar_url"]
    again = (await upload(client, alice, image_bytes("PNG", (50, 50)))).json()["avatar_url"]
    assert again == first  # same content, same key: the current file is kept
    assert (await client.get(first)).status_code == 200
    second = (await upload(client, alice, image_bytes("PNG", (80, 20), "L"))).json()["avatar_url"]
    assert second != first
    assert media_files(app) == [second.removeprefix("/media/")]
    assert (await client.get(first)).status_code == 404

    r = await client.delete(f"{API}/me/avatar", headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json()["avatar_url"] is None
    assert (await stored(app, alice.id)).avatar_key is None
    assert media_files(app) == []
    r = await client.delete(f"{API}/me/avatar", headers=alice.headers)
    assert r.status_code == 200 and r.json()["avatar_url"] is None
    assert_error(await client.delete(f"{API}/me/avatar"), 401, "not_authenticated")


async def test_avatar_type_is_decided_by_content(app, client, make_user):
    alice = await make_user()
    refused = [
        (image_bytes("GIF"), "avatar.png", "image/png"),
        (image_bytes("BMP"), "avatar.jpg", "image/jpeg"),
        (image_bytes("TIFF"), "avatar.webp", "image/webp"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "avatar.png", "image/png"),
        (b"%PDF-1.7 hello", "avatar.png", "image/png"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "avatar.webp", "image/webp"),
    ]
    for data, name, content_type in refused:
        r = await upload(client, alice, data, name, content_type)
        assert_error(r, 415, "unsupported_image_type")
    # A real PNG is accepted whatever the name and declared type say.
    r = await upload(client, alice, image_bytes("PNG"), "notes.txt", "text/plain")
    assert r.status_code == 200, r.text


async def test_avatar_refuses_broken_huge_and_oversized_files(app_factory, make_user):
    small = await app_factory(avatar={"max_bytes": 40_000, "max_pixels": 1000, "size": 128})
    user = await make_user()
    png = image_bytes("PNG")
    noise = io.BytesIO()
    Image.frombytes("RGB", (150, 150), os.urandom(150 * 150 * 3)).save(noise, "PNG")
    cases: list[tuple[bytes, int, str]] = [
        (png[:40], 422, "invalid_image"),  # truncated
        (png[:8] + b"\x00" * 200, 422, "invalid_image"),  # a PNG signature, then garbage
        (b"\xff\xd8\xff\xe0" + b"\x00" * 100, 422, "invalid_image"),
        (b"", 422, "invalid_image"),
        (image_bytes("PNG", (1001, 10)), 422, "image_too_large"),
        (image_bytes("PNG", (10, 1001)), 422, "image_too_large"),
        (png_claiming(100_000, 100_000), 422, "image_too_large"),  # decompression bombs
        (png_claiming(20_000, 20_000), 422, "image_too_large"),
        (png_claiming(0, 10), 422, "invalid_image"),
        (noise.getvalue(), 413, "avatar_too_large"),  # 150x150 but over 40 kB
    ]
    async with client_for(small) as client:
        for data, status, code in cases:
            assert_error(await upload(client, user, data), status, code)
        r = await client.put(f"{API}/me/avatar", headers=user.headers)
        assert_error(r, 422, "invalid_input")
        r = await client.put(f"{API}/me/avatar", json={"file": "x"}, headers=user.headers)
        assert_error(r, 422, "invalid_input")
        r = await client.put(f"{API}/me/avatar", files={"image": ("a.png", png, "image/png")}, headers=user.headers)
        assert_error(r, 422, "invalid_input")
        files = {"file": ("a.png", png, "image/png")}
        assert_error(await client.put(f"{API}/me/avatar", files=files), 401, "not_authenticated")
        r = await client.put(f"{API}/me/avatar", files=files, headers={"Authorization": "Bearer not.a.token"})
        assert_error(r, 401, "invalid_token")
        assert (await stored(small, user.id)).avatar_key is None
        assert media_files(small) == []

        r = await upload(client, user, image_bytes("PNG", (1000, 10)))
        assert r.status_code == 200, r.text
        served = await client.get(r.json()["avatar_url"])
        assert Image.open(io.BytesIO(served.content)).size == (128, 128)


async def test_upload_past_the_request_limit_is_413(app_factory, make_user):
    small = await app_factory(http={"max_upload_bytes": 50_000})
    user = await make_user()
    async with client_for(small) as client:
        r = await upload(client, user, b"\x89PNG\r\n\x1a\n" + b"\x00" * 60_000)
        assert_error(r, 413, "payload_too_large")
    assert media_files(small) == []
