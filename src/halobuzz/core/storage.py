"""File storage behind one small interface: a local directory (default) or S3-compatible.

Keys are relative paths such as ``avatars/<user id>/<hash>.webp``. ``url(key)`` is what clients
fetch: ``/media/<key>`` served by HaloBuzz for the local backend, a presigned (or public) URL for S3.
Both backends are blocking underneath (files, boto3); every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Protocol

from halobuzz.config import S3Settings

MAX_KEY_LENGTH = 1024  # S3's limit, in UTF-8 bytes


class ObjectNotFound(LookupError):
    """``get`` of a key that holds nothing."""


class Storage(Protocol):
    async def put(self, key: str, data: bytes, content_type: str, *, cache_control: str | None = None) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...

    def url(self, key: str, expires_seconds: int = 3600) -> str: ...


def _safe_key(key: str) -> str:
    """``key`` normalised (no empty segments); ``ValueError`` for traversal, control characters or excess length."""
    parts = [p for p in key.split("/") if p]
    if (
        not parts
        or any(p in (".", "..") or "\\" in p for p in parts)
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in key)
    ):
        raise ValueError(f"unsafe storage key {key!r}")
    safe = "/".join(parts)
    if len(safe.encode()) > MAX_KEY_LENGTH:
        raise ValueError(f"storage key longer than {MAX_KEY_LENGTH} bytes")
    return safe


class LocalStorage:
    """Files under ``root``; writes are atomic (a temporary file renamed into place)."""

    def __init__(self, root: Path, url_prefix: str = "/media") -> None:
        self.root = root
        self.url_prefix = url_prefix.rstrip("/")

    def path(self, key: str) -> Path:
        return self.root / _safe_key(key)

    async def put(self, key: str, data: bytes, content_type: str, *, cache_control: str | None = None) -> None:
        path = self.path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A name of its own per writer: concurrent puts of one key must not share a temporary file.
            tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
            try:
                tmp.write_bytes(data)
                tmp.replace(path)
            finally:
                tmp.unlink(missing_ok=True)

        await asyncio.to_thread(write)

    async def get(self, key: str) -> bytes:
        path = self.path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    def url(self, key: str, expires_seconds: int = 3600) -> str:
        return f"{self.url_prefix}/{_safe_key(key)}"


def _error_code(exc: Exception) -> str:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3Storage:
    """S3-compatible storage through boto3 (calls run in a thread; boto3 is blocking).

    The bucket is created on first use when it does not exist yet.
    """

    def __init__(self, settings: S3Settings) -> None:
        import boto3
        from botocore.config import Config

        self.settings = settings
        self.bucket = settings.bucket
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=settings.endpoint,
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key.get_secret_value() if settings.secret_key else None,
            region_name=settings.region,
            config=Config(
                signature_version="s3v4",
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
                s3={"addressing_style": "path"},
            ),
        )

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except ClientError as create_exc:  # another instance created it first
                if _error_code(create_exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    async def ensure_bucket(self) -> None:
        """Create the bucket unless it exists."""
        await asyncio.to_thread(self._ensure_bucket)

    async def put(self, key: str, data: bytes, content_type: str, *, cache_control: str | None = None) -> None:
        from botocore.exceptions import ClientError

        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": _safe_key(key),
            "Body": data,
            "ContentType": content_type,
        }
        if cache_control:
            params["CacheControl"] = cache_control

        def run() -> None:
            try:
                self.client.put_object(**params)
            except ClientError as exc:
                if _error_code(exc) != "NoSuchBucket":
                    raise
                self._ensure_bucket()
                self.client.put_object(**params)

        await asyncio.to_thread(run)

    async def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        safe = _safe_key(key)

        def run() -> bytes:
            try:
                body: bytes = self.client.get_object(Bucket=self.bucket, Key=safe)["Body"].read()
            except ClientError as exc:
                if _error_code(exc) in ("NoSuchKey", "404", "NotFound", "NoSuchBucket"):
                    raise ObjectNotFound(key) from exc
                raise
            return body

        return await asyncio.to_thread(run)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=_safe_key(key))

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        safe = _safe_key(key)

        def run() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=safe)
                return True
            except ClientError as exc:
                if _error_code(exc) in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
                    return False
                raise

        return await asyncio.to_thread(run)

    def url(self, key: str, expires_seconds: int = 3600) -> str:
        if self.settings.public_url:
            return f"{self.settings.public_url.rstrip('/')}/{_safe_key(key)}"
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": _safe_key(key)}, ExpiresIn=expires_seconds
        )
        return url


def make_storage(settings: S3Settings, data_dir: Path) -> Storage:
    if settings.endpoint:
        return S3Storage(settings)
    return LocalStorage(data_dir / "media")
