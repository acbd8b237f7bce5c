"""Storage backends: the local directory, and S3 against a real SeaweedFS with signed requests."""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError
from PIL import Image

from halobuzz.config import S3Settings
from halobuzz.core.storage import LocalStorage, ObjectNotFound, S3Storage, make_storage
from tests.conftest import assert_error, client_for
from tests.core.conftest import SeaweedS3

UNSAFE_KEYS = ["", "/", "../etc/passwd", "a/../../b", "a/./b", "a\\b", "a\x00b", "line\nbreak", "k" * 1025]


# --- local directory -----------------------------------------------------------------------------


async def test_local_put_get_exists_delete(tmp_path: Path):
    storage = LocalStorage(tmp_path / "media")
    await storage.put("avatars/u1/abc.webp", b"bytes", "image/webp")
    assert await storage.exists("avatars/u1/abc.webp")
    assert await storage.get("/avatars//u1/abc.webp") == b"bytes"
    assert storage.url("avatars/u1/abc.webp") == "/media/avatars/u1/abc.webp"
    await storage.put("avatars/u1/abc.webp", b"new", "image/webp")
    assert await storage.get("avatars/u1/abc.webp") == b"new"
    await storage.delete("avatars/u1/abc.webp")
    assert not await storage.exists("avatars/u1/abc.webp")
    await storage.delete("avatars/u1/abc.webp")  # deleting nothing is fine
    with pytest.raises(ObjectNotFound):
        await storage.get("avatars/u1/abc.webp")
    with pytest.raises(ObjectNotFound):
        await storage.get("avatars/u1")  # a directory is not an object
    assert sorted(p.name for p in (tmp_path / "media").rglob("*")) == ["avatars", "u1"]


async def test_local_concurrent_writes_of_one_key(tmp_path: Path):
    storage = LocalStorage(tmp_path)
    payloads = [bytes([i]) * 50_000 for i in range(20)]
    await asyncio.gather(*(storage.put("same/key.bin", p, "application/octet-stream") for p in payloads))
    assert await storage.get("same/key.bin") in payloads
    assert [p.name for p in (tmp_path / "same").iterdir()] == ["key.bin"]  # no temporary files left


@pytest.mark.parametrize("key", UNSAFE_KEYS)
async def test_local_refuses_unsafe_keys(tmp_path: Path, key: str):
    storage = LocalStorage(tmp_path / "media")
    with pytest.raises(ValueError, match="storage key"):
        await storage.put(key, b"x", "text/plain")
    with pytest.raises(ValueError, match="storage key"):
        storage.url(key)
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").iterdir())


def test_make_storage_picks_the_backend(tmp_path: Path, seaweedfs: SeaweedS3):
    assert isinstance(make_storage(S3Settings(endpoint=None), tmp_path), LocalStorage)
    assert isinstance(make_storage(S3Settings(**seaweedfs.settings()), tmp_path), S3Storage)


# --- S3 (SeaweedFS) ------------------------------------------------------------------------------


def s3_storage(server: SeaweedS3, **overrides: str) -> S3Storage:
    return S3Storage(S3Settings(**{**server.settings(), **overrides}))


async def test_s3_put_get_exists_delete(seaweedfs: SeaweedS3):
    storage = s3_storage(seaweedfs)
    assert not await storage.exists("avatars/u1/a.webp")  # the bucket does not exist yet
    with pytest.raises(ObjectNotFound):
        await storage.get("avatars/u1/a.webp")
    await storage.put("avatars/u1/a.webp", b"webp bytes", "image/webp", cache_control="public, max-age=60")
    assert await storage.exists("avatars/u1/a.webp")
    assert await storage.get("/avatars/u1/a.webp") == b"webp bytes"
    head = seaweedfs.client().head_object(Bucket=storage.bucket, Key="avatars/u1/a.webp")
    assert head["ContentType"] == "image/webp"
    assert head["CacheControl"] == "public, max-age=60"
    await storage.delete("avatars/u1/a.webp")
    assert not await storage.exists("avatars/u1/a.webp")
    await storage.delete("avatars/u1/a.webp")
    with pytest.raises(ObjectNotFound):
        await storage.get("avatars/u1/a.webp")
    await storage.ensure_bucket()  # idempotent
    with pytest.raises(ValueError, match="storage key"):
        await storage.put("../escape", b"x", "text/plain")


async def test_s3_presigned_url_works_and_unsigned_access_does_not(seaweedfs: SeaweedS3):
    storage = s3_storage(seaweedfs)
    await storage.put("docs/hello.txt", b"hello from s3", "text/plain")
    url = storage.url("docs/hello.txt", expires_seconds=120)
    assert "X-Amz-Signature=" in url
    async with httpx.AsyncClient() as http:
        r = await http.get(url)
        assert r.status_code == 200
        assert r.content == b"hello from s3"
        unsigned = await http.get(f"{seaweedfs.endpoint}/{storage.bucket}/docs/hello.txt")
        assert unsigned.status_code == 403
        tampered = await http.get(url.replace("docs/hello.txt", "docs/other.txt"))
        assert tampered.status_code == 403


async def test_s3_wrong_secret_is_rejected(seaweedfs: SeaweedS3):
    good = s3_storage(seaweedfs)
    await good.put("private/a.txt", b"secret", "text/plain")
    bad = s3_storage(seaweedfs, bucket=good.bucket, secret_key="not-the-secret")
    with pytest.raises(ClientError) as put_error:
        await bad.put("private/b.txt", b"intruder", "text/plain")
    assert put_error.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId")
    with pytest.raises(ClientError):
        await bad.get("private/a.txt")
    async with httpx.AsyncClient() as http:
        assert (await http.get(bad.url("private/a.txt"))).status_code == 403
    assert not await good.exists("private/b.txt")
    assert await good.get("private/a.txt") == b"secret"


def test_s3_public_url_setting(seaweedfs: SeaweedS3):
    storage = s3_storage(seaweedfs, public_url="https://cdn.example/media/")
    assert storage.url("avatars/u/a.webp") == "https://cdn.example/media/avatars/u/a.webp"


async def test_avatar_upload_through_the_api_lands_in_the_bucket(app_factory, make_user, seaweedfs: SeaweedS3):
    settings = seaweedfs.settings()
    app = await app_factory(s3=settings)
    assert isinstance(app.runtime.storage, S3Storage)
    user = await make_user()
    raw = seaweedfs.client()
    async with client_for(app) as client, httpx.AsyncClient() as http:
        png = io.BytesIO()
        Image.new("RGB", (120, 90), (10, 200, 30)).save(png, "PNG")
        r = await client.put(
            "/api/v1/users/me/avatar", files={"file": ("a.png", png.getvalue(), "image/png")}, headers=user.headers
        )
        assert r.status_code == 200, r.text
        url = r.json()["avatar_url"]
        assert url.startswith(f"{seaweedfs.endpoint}/{settings['bucket']}/avatars/{user.id}/")
        key = url.split(f"/{settings['bucket']}/", 1)[1].split("?", 1)[0]
        stored = raw.get_object(Bucket=settings["bucket"], Key=key)
        assert stored["ContentType"] == "image/webp"
        assert "immutable" in stored["CacheControl"]
        body = stored["Body"].read()
        fetched = await http.get(url)
        assert fetched.status_code == 200 and fetched.content == body
        assert Image.open(io.BytesIO(body)).format == "WEBP"

        # Refused uploads put nothing in the bucket.
        r = await client.put(
            "/api/v1/users/me/avatar", files={"file": ("a.png", b"GIF89a...", "image/png")}, headers=user.headers
        )
        assert_error(r, 415, "unsupported_image_type")

        # A new avatar replaces the old object; removing it empties the user's prefix.
        png = io.BytesIO()
        Image.new("RGB", (90, 120), (200, 10, 30)).save(png, "PNG")
        r = await client.put(
            "/api/v1/users/me/avatar", files={"file": ("b.png", png.getvalue(), "image/png")}, headers=user.headers
        )
        assert r.status_code == 200, r.text
        listed = raw.list_objects_v2(Bucket=settings["bucket"], Prefix=f"avatars/{user.id}/")
        keys = [item["Key"] for item in listed.get("Contents", [])]
        assert len(keys) == 1 and keys[0] != key
        r = await client.delete("/api/v1/users/me/avatar", headers=user.headers)
        assert r.status_code == 200 and r.json()["avatar_url"] is None
        listed = raw.list_objects_v2(Bucket=settings["bucket"], Prefix=f"avatars/{user.id}/")
        assert listed.get("KeyCount", 0) == 0
        # No local media is served with S3 configured.
        assert (await client.get(f"/media/avatars/{user.id}/{uuid.uuid4().hex}.webp")).status_code == 404
