"""File storage behind one small interface: a local directory (default) or S3-compatible.

Keys are relative paths such as ``avatars/<user id>/<hash>.webp``. ``url(key)`` is what clients
fetch: ``/media/<key>`` served by HaloBuzz for the local backend, a presigned (or public) URL for S3.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Protocol

from halobuzz.config import S3Settings


class Storage(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...

    def url(self, key: str, expires_seconds: int = 3600) -> str: ...


def _safe_key(key: str) -> str:
    parts = [p for p in key.split("/") if p]
    if not parts or any(p in (".", "..") or "\\" in p for p in parts):
        raise ValueError(f"unsafe storage key {key!r}")
    return "/".join(parts)


class LocalStorage:
    def __init__(self, root: Path, url_prefix: str = "/media") -> None:
        self.root = root
        self.url_prefix = url_prefix.rstrip("/")

    def path(self, key: str) -> Path:
        return self.root / _safe_key(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)

        await asyncio.to_thread(write)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    def url(self, key: str, expires_seconds: int = 3600) -> str:
        return f"{self.url_prefix}/{_safe_key(key)}"


class S3Storage:
    """S3-compatible storage through boto3 (calls run in a thread; boto3 is blocking)."""

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

    async def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        def run() -> None:
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
                    self.client.create_bucket(Bucket=self.bucket)
                else:
                    raise

        await asyncio.to_thread(run)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.bucket,
            Key=_safe_key(key),
            Body=data,
            ContentType=content_type,
        )

    async def get(self, key: str) -> bytes:
        def run() -> bytes:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=_safe_key(key))["Body"].read()
            return body

        return await asyncio.to_thread(run)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=_safe_key(key))

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        def run() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=_safe_key(key))
                return True
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
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
