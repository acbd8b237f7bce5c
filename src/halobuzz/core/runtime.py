"""The long-lived objects of one process, built once from settings and shared by requests and jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from halobuzz.config import DEV_SECRET, Settings
from halobuzz.core.cache import ResponseCache
from halobuzz.core.db import Database
from halobuzz.core.fastpath import FastPaths
from halobuzz.core.kv import Store, make_store
from halobuzz.core.mail import Mailer, make_mailer
from halobuzz.core.security import JWTCodec, PasswordHashing, local_secret
from halobuzz.core.sessioncache import SessionCache
from halobuzz.core.storage import Storage, make_storage


@dataclass
class Runtime:
    settings: Settings
    db: Database
    kv: Store
    jwt: JWTCodec
    passwords: PasswordHashing
    cache: ResponseCache
    storage: Storage
    mailer: Mailer
    sessions: SessionCache
    fast_paths: FastPaths
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        key = settings.auth.jwt_secret.get_secret_value()
        if key == DEV_SECRET:  # never in production: settings refuse it there
            key = local_secret(settings.data_dir / "secrets", "jwt")
        jwt = JWTCodec(settings.auth, key)
        return cls(
            settings=settings,
            db=Database(settings.resolved_database_url, pool_size=settings.database_pool_size),
            kv=make_store(settings.redis_url, settings.redis_prefix),
            jwt=jwt,
            passwords=PasswordHashing(settings.auth),
            cache=ResponseCache(ttl_seconds=settings.http.cache_ttl_seconds),
            storage=make_storage(settings.s3, settings.data_dir),
            mailer=make_mailer(settings.mail, settings.data_dir),
            sessions=SessionCache(jwt),
            fast_paths=FastPaths(enabled=settings.http.fast_paths),
        )

    async def close(self) -> None:
        broker: Any = self.extras.pop("broker", None)
        if broker is not None:
            await broker.close()
        await self.db.dispose()
        await self.kv.close()
