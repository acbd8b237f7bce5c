"""The ASGI application: FastAPI routes behind a pure-ASGI middleware stack.

Outermost first: request context (id, logs, metrics, security headers, body limit) → CORS →
rate limiting → response cache for hot public reads → fast paths for hot reads → FastAPI routing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from halobuzz.accounts import fastpaths as accounts_fastpaths
from halobuzz.config import Settings, get_settings
from halobuzz.core.cache import ResponseCacheMiddleware
from halobuzz.core.errors import install_error_handlers
from halobuzz.core.fastpath import FastPathMiddleware
from halobuzz.core.kv import RedisStore
from halobuzz.core.observability import RequestContextMiddleware
from halobuzz.core.ratelimit import RateLimitMiddleware
from halobuzz.core.runtime import Runtime
from halobuzz.core.storage import LocalStorage
from halobuzz.core.tasks import cancel_and_wait
from halobuzz.economy import batch as gift_batch
from halobuzz.economy import fastpaths as economy_fastpaths
from halobuzz.jobs import runner as jobs_runner
from halobuzz.media import plane as media_plane
from halobuzz.media.radio_api import RADIO_TRACK_UPLOAD
from halobuzz.realtime.asgi import mount as realtime_mount
from halobuzz.streams import api as streams_api

log = structlog.get_logger(__name__)

API_PREFIX = "/api/v1"
CACHE_CHANNEL = "cache-invalidate"


def _include_routers(api: FastAPI) -> None:
    from halobuzz.accounts.api import account_router, auth_router
    from halobuzz.accounts.users_api import users_router
    from halobuzz.admin.api import router as admin_router
    from halobuzz.analytics.api import router as analytics_router
    from halobuzz.chat.api import router as chat_router
    from halobuzz.core.health import router as health_router
    from halobuzz.economy.api import admin_router as economy_admin_router
    from halobuzz.economy.api import router as economy_router
    from halobuzz.economy.payouts_api import admin_router as payouts_admin_router
    from halobuzz.economy.payouts_api import router as payouts_router
    from halobuzz.economy.perks_api import admin_router as perks_admin_router
    from halobuzz.economy.perks_api import router as perks_router
    from halobuzz.jobs.api import router as jobs_admin_router
    from halobuzz.kyc.api import admin_router as kyc_admin_router
    from halobuzz.kyc.api import router as kyc_router
    from halobuzz.media.api import router as media_router
    from halobuzz.media.radio_api import router as radio_router
    from halobuzz.moderation.api import admin_router as moderation_admin_router
    from halobuzz.moderation.api import router as moderation_router
    from halobuzz.notifications.api import router as notifications_router
    from halobuzz.payments.api import admin_router as payments_admin_router
    from halobuzz.payments.api import router as payments_router
    from halobuzz.privacy.api import router as privacy_router
    from halobuzz.streams.api import categories_router, streams_router
    from halobuzz.webhooks.api import router as webhooks_admin_router

    api.include_router(health_router)
    # account_router (/users/me/...) goes before users_router so /users/{id} never shadows it.
    for router in (
        auth_router,
        privacy_router,
        account_router,
        users_router,
        streams_router,
        categories_router,
        chat_router,
        economy_router,
        payments_router,
        admin_router,
        economy_admin_router,
        payments_admin_router,
        jobs_admin_router,
        webhooks_admin_router,
        payouts_router,
        payouts_admin_router,
        media_router,
        radio_router,
        moderation_router,
        notifications_router,
        kyc_router,
        kyc_admin_router,
        moderation_admin_router,
        analytics_router,
        perks_router,
        perks_admin_router,
    ):
        api.include_router(router, prefix=API_PREFIX)


async def _listen_for_invalidations(runtime: Runtime) -> None:
    """Drop local cache entries when another instance invalidates a tag (Redis pub/sub)."""
    kv = runtime.kv
    assert isinstance(kv, RedisStore)
    channel = kv.prefix + CACHE_CHANNEL
    while True:
        try:
            async with kv.client.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        tag = str(message["data"])
                        runtime.cache.invalidate_local(tag)
                        runtime.sessions.on_tag(tag)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reconnect: a lost subscription must not end invalidation
            log.warning("cache_invalidation_subscriber_reconnecting", error=str(exc))
            await asyncio.sleep(1.0)


class CrossOriginOnly:
    """Send only requests that carry an ``Origin`` header through the CORS layer (others skip its
    header rewriting); ``Vary: Origin`` is set on every response by the request-context layer."""

    def __init__(self, app: ASGIApp, cors: ASGIApp) -> None:
        self.app = app
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(name == b"origin" for name, _ in scope["headers"]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class HaloBuzzApp:
    """The served ASGI app; ``.api`` is the FastAPI instance, ``.runtime`` its shared objects."""

    def __init__(self, api: FastAPI, runtime: Runtime, stack: ASGIApp) -> None:
        self.api = api
        self.runtime = runtime
        self._stack = stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._stack(scope, receive, send)


def create_app(settings: Settings | None = None) -> HaloBuzzApp:
    settings = settings or get_settings()
    runtime = Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        tasks: list[asyncio.Task[None]] = []
        if isinstance(runtime.kv, RedisStore):
            redis_kv = runtime.kv

            async def publish(tag: str) -> None:
                await redis_kv.client.publish(redis_kv.prefix + CACHE_CHANNEL, tag)

            runtime.cache.publish = publish
            runtime.sessions.publish = publish
            tasks.append(asyncio.create_task(_listen_for_invalidations(runtime)))
        log.info("startup", database=runtime.db.dialect, redis=bool(settings.redis_url), env=settings.env)
        # Embedded mode: the outbox relay (event consumers) and the job scheduler run in this process.
        background = jobs_runner.start(runtime) if jobs_runner.runs_in_process(runtime) else []
        media_plane.start(runtime)
        try:
            yield
        finally:
            await jobs_runner.stop(background)
            await gift_batch.close(runtime)
            await media_plane.close(runtime)
            await _close_ai(runtime)
            await cancel_and_wait(tasks)
            await runtime.close()

    api = FastAPI(
        title="HaloBuzz API",
        version="1.0",
        description="Live streaming, chat, follows, gifts and coins. Errors share one shape: "
        '`{"error": {"code", "message", "details", "request_id"}}`.',
        lifespan=lifespan,
    )
    api.state.runtime = runtime
    install_error_handlers(api)
    _include_routers(api)
    streams_api.register_cache(runtime.cache)
    accounts_fastpaths.register(runtime)
    economy_fastpaths.register(runtime)
    if isinstance(runtime.storage, LocalStorage):
        runtime.storage.root.mkdir(parents=True, exist_ok=True)
        from halobuzz.media.api import PublicStorageFiles

        api.mount("/media", PublicStorageFiles(directory=runtime.storage.root, check_dir=False), name="media")
    # The browser web app (server-rendered pages) and its static assets.
    from halobuzz.web.routes import STATIC_DIR
    from halobuzz.web.routes import router as web_router

    api.include_router(web_router)
    api.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")

    stack: ASGIApp = FastPathMiddleware(api, paths=runtime.fast_paths)
    stack = ResponseCacheMiddleware(stack, cache=runtime.cache)
    stack = RateLimitMiddleware(
        stack,
        settings=settings.rate_limit,
        store=runtime.kv,
        jwt=runtime.jwt,
        trust_forwarded_for=settings.http.trust_forwarded_for,
    )
    stack = CrossOriginOnly(
        stack,
        CORSMiddleware(
            stack,
            allow_origins=settings.http.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=[
                "X-Request-ID",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ],
            max_age=600,
        ),
    )
    stack = RequestContextMiddleware(
        stack,
        max_body_bytes=settings.http.max_body_bytes,
        max_upload_bytes=settings.http.max_upload_bytes,
        upload_overrides=[(RADIO_TRACK_UPLOAD, settings.media.radio_track_max_bytes + 65536)],
        access_log=settings.http.access_log,
        trust_forwarded_for=settings.http.trust_forwarded_for,
    )
    # Real-time gateway: /socket.io goes to Socket.IO, the rest to the HTTP stack; the gateway's
    # background work starts and stops with the lifespan (docs/realtime.md).
    stack = realtime_mount(stack, runtime)
    _install_moderation(runtime)
    _install_subscriptions(runtime)
    return HaloBuzzApp(api, runtime, stack)


async def _close_ai(runtime: Runtime) -> None:
    from halobuzz.ai.service import AI

    found = runtime.extras.get("ai")
    if isinstance(found, AI):
        await found.close()


def _install_subscriptions(runtime: Runtime) -> None:
    """Let active OG members through subscribers-only chat (docs/economy.md)."""
    from halobuzz.economy import og
    from halobuzz.realtime.gateway import Gateway

    gateway = runtime.extras.get("realtime")
    if isinstance(gateway, Gateway):
        gateway.subscription_check = og.is_og_member


def _install_moderation(runtime: Runtime) -> None:
    """Plug the text moderator into the gateway's chat moderation hook (docs/moderation.md)."""
    from halobuzz.ai import hook as chat_hook
    from halobuzz.ai.service import ai_of
    from halobuzz.moderation.terms import ChannelRules
    from halobuzz.realtime.gateway import Gateway

    settings = runtime.settings.moderation
    gateway = runtime.extras.get("realtime")
    if not isinstance(gateway, Gateway) or not settings.chat_enabled:
        return
    ai = ai_of(runtime)
    rules = ChannelRules(runtime.db)
    runtime.extras["channel_rules"] = rules

    infos: dict[uuid.UUID, tuple[object, chat_hook.ChannelInfo]] = {}

    async def channel(stream_id: uuid.UUID) -> chat_hook.ChannelInfo | None:
        found = await rules.get(stream_id)
        if found is None:
            return None
        # One ChannelInfo (and one compiled term list) per cached Channel, not per message.
        held = infos.get(stream_id)
        if held is None or held[0] is not found:
            if len(infos) > 10_000:
                infos.clear()
            held = infos[stream_id] = (found, chat_hook.ChannelInfo(found.region, found.terms))
        return held[1]

    privileges = chat_hook.Privileges(low=settings.low_reputation, restricted=settings.restricted_reputation)
    if ai.client is not None:
        gateway.moderation_hook = chat_hook.make_remote_chat_hook(
            ai.client, ai.policy, moderator=ai.moderator, channel=channel, privileges=privileges
        )
        return
    gateway.moderation_hook = chat_hook.make_chat_hook(ai.moderator, ai.policy, channel=channel, privileges=privileges)
