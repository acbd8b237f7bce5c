"""Routes: /streams and /categories."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, cast

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel

from halobuzz.accounts.deps import AdminUser, CreatorUser, CurrentUser
from halobuzz.core.cache import ResponseCache
from halobuzz.core.deps import PageDep, RequestMetaDep, RuntimeDep, SessionDep
from halobuzz.core.pagination import Page
from halobuzz.core.runtime import Runtime
from halobuzz.moderation import screening
from halobuzz.realtime import hooks as realtime_hooks
from halobuzz.streams import service
from halobuzz.streams.schemas import (
    BroadcastOut,
    CategoryCreate,
    CategoryList,
    CategoryOut,
    CategoryUpdate,
    Language,
    LiveSort,
    LiveStreamOut,
    Region,
    SearchText,
    Slug,
    StreamCreate,
    StreamCreatedOut,
    StreamKeyOut,
    StreamOut,
    StreamUpdate,
)

streams_router = APIRouter(prefix="/streams", tags=["streams"])
categories_router = APIRouter(prefix="/categories", tags=["categories"])

LIVE_PATH = "/api/v1/streams/live"
CATEGORIES_PATH = "/api/v1/categories"

StreamId = Annotated[uuid.UUID, Path(description="stream id")]
CategorySlug = Annotated[str, Path(min_length=1, max_length=64, description="category slug")]


def _announcer(rt: Runtime) -> service.OnAir:
    """Tell the stream's room (real-time gateway) that it went live or off air."""

    def announce(change: service.AirChange) -> None:
        if change.live and change.broadcast_id is not None:
            realtime_hooks.stream_started(
                rt,
                stream_id=change.stream_id,
                broadcast_id=change.broadcast_id,
                title=change.title,
                started_at=change.at,
            )
        elif not change.live:
            realtime_hooks.stream_ended(
                rt, stream_id=change.stream_id, broadcast_id=change.broadcast_id, ended_at=change.at
            )
        media = rt.extras.get("media")  # the media plane stops transcoding a stream that ended
        if media is not None and hasattr(media, "on_air_change"):
            media.on_air_change(change)

    return announce


def register_cache(cache: ResponseCache) -> None:
    """Serve the anonymous live listing and category list from the response cache."""
    cache.register(LIVE_PATH, service.LIVE_CACHE_TAG)
    cache.register(CATEGORIES_PATH, service.CATEGORIES_CACHE_TAG)


@streams_router.get("", response_model=Page[StreamOut], summary="A creator's streams, newest first")
async def list_streams(
    session: SessionDep,
    page: PageDep,
    owner: Annotated[str, Query(min_length=1, max_length=64, description="the creator's user id or username")],
) -> Page[StreamOut]:
    found = await service.list_streams_of(session=session, owner=owner, limit=page.limit, cursor=page.cursor)
    return Page(items=[StreamOut.of(v) for v in found.items], next_cursor=found.next_cursor)


@streams_router.post("", response_model=StreamCreatedOut, status_code=201, summary="Create a stream (creators)")
async def create_stream(body: StreamCreate, session: SessionDep, user: CreatorUser, rt: RuntimeDep) -> StreamCreatedOut:
    created = await service.create_stream(session=session, actor=user, **body.model_dump())
    await screening.screen_stream(session=session, runtime=rt, stream=created.stream, changed={"title", "description"})
    return StreamCreatedOut.of(created, stream_key=created.stream_key)


@streams_router.get("/live", response_model=Page[LiveStreamOut], summary="Live streams")
async def live_streams(
    session: SessionDep,
    page: PageDep,
    sort: Annotated[LiveSort, Query(description="viewers (default) or recent")] = "viewers",
    category: Annotated[Slug | None, Query(description="category slug")] = None,
    language: Annotated[Language | None, Query(description="language code")] = None,
    region: Annotated[Region | None, Query(description="region code, e.g. np, in, global")] = None,
    q: Annotated[SearchText | None, Query(description="words the title contains (any case)")] = None,
) -> Page[LiveStreamOut]:
    found = await service.list_live_streams(
        session=session,
        sort=sort,
        category=category,
        language=language,
        region=region,
        q=q or None,
        limit=page.limit,
        cursor=page.cursor,
    )
    return Page(items=[LiveStreamOut.of(row) for row in found.items], next_cursor=found.next_cursor)


@streams_router.get("/{stream_id}", response_model=StreamOut, summary="A stream")
async def get_stream(stream_id: StreamId, session: SessionDep) -> StreamOut:
    return StreamOut.of(await service.get_stream(session=session, stream_id=stream_id))


@streams_router.patch("/{stream_id}", response_model=StreamOut, summary="Edit a stream (owner or admin)")
async def update_stream(
    stream_id: StreamId,
    body: StreamUpdate,
    session: SessionDep,
    user: CurrentUser,
    rt: RuntimeDep,
    meta: RequestMetaDep,
) -> StreamOut:
    changes = cast(service.StreamChanges, body.model_dump(exclude_unset=True))
    view = await service.update_stream(
        session=session, actor=user, stream_id=stream_id, changes=changes, cache=rt.cache, client=meta
    )
    await screening.screen_stream(session=session, runtime=rt, stream=view.stream, changed=set(changes))
    return StreamOut.of(view)


@streams_router.delete("/{stream_id}", status_code=204, summary="Delete an offline stream (owner or admin)")
async def delete_stream(
    stream_id: StreamId, session: SessionDep, user: CurrentUser, rt: RuntimeDep, meta: RequestMetaDep
) -> Response:
    await service.delete_stream(session=session, actor=user, stream_id=stream_id, cache=rt.cache, client=meta)
    return Response(status_code=204)


@streams_router.post("/{stream_id}/key/rotate", response_model=StreamKeyOut, summary="Replace the secret stream key")
async def rotate_key(stream_id: StreamId, session: SessionDep, user: CurrentUser, meta: RequestMetaDep) -> StreamKeyOut:
    key = await service.rotate_stream_key(session=session, actor=user, stream_id=stream_id, client=meta)
    return StreamKeyOut(stream_key=key)


@streams_router.post("/{stream_id}/start", response_model=StreamOut, summary="Go live (owner or admin)")
async def start_stream(
    stream_id: StreamId, session: SessionDep, user: CurrentUser, rt: RuntimeDep, meta: RequestMetaDep
) -> StreamOut:
    view = await service.start_stream(
        session=session, actor=user, stream_id=stream_id, cache=rt.cache, client=meta, on_air=_announcer(rt)
    )
    return StreamOut.of(view)


@streams_router.post("/{stream_id}/end", response_model=StreamOut, summary="End the live broadcast (owner or admin)")
async def end_stream(
    stream_id: StreamId, session: SessionDep, user: CurrentUser, rt: RuntimeDep, meta: RequestMetaDep
) -> StreamOut:
    view = await service.end_stream(
        session=session, actor=user, stream_id=stream_id, cache=rt.cache, client=meta, on_air=_announcer(rt)
    )
    return StreamOut.of(view)


class RaidIn(BaseModel):
    target_stream_id: uuid.UUID


class RaidOut(BaseModel):
    stream_id: uuid.UUID
    target_stream_id: uuid.UUID
    target: dict[str, Any]


@streams_router.post("/{stream_id}/raid", response_model=RaidOut, summary="Raid another live stream and end this one")
async def raid_stream(
    stream_id: StreamId, body: RaidIn, session: SessionDep, user: CurrentUser, rt: RuntimeDep, meta: RequestMetaDep
) -> RaidOut:
    """Owner (or admin) of a live stream: send its viewers to ``target_stream_id`` (live, another
    stream) and end the broadcast; the room gets ``raid`` after commit."""
    from halobuzz.streams import raids

    result = await raids.raid_stream(
        session=session,
        actor=user,
        stream_id=stream_id,
        target_stream_id=body.target_stream_id,
        cache=rt.cache,
        client=meta,
        on_air=_announcer(rt),
        on_raid=lambda r: realtime_hooks.raid(rt, stream_id=r.stream_id, payload=r.payload()),
    )
    return RaidOut(**result.payload())


@streams_router.get("/{stream_id}/broadcasts", response_model=Page[BroadcastOut], summary="Broadcast history")
async def list_broadcasts(stream_id: StreamId, session: SessionDep, page: PageDep) -> Page[BroadcastOut]:
    found = await service.list_broadcasts(session=session, stream_id=stream_id, limit=page.limit, cursor=page.cursor)
    return Page(items=[BroadcastOut.of(b) for b in found.items], next_cursor=found.next_cursor)


@categories_router.get("", response_model=CategoryList, summary="Active categories in display order")
async def list_categories(session: SessionDep) -> CategoryList:
    return CategoryList(items=[CategoryOut.of(c) for c in await service.list_categories(session=session)])


@categories_router.post("", response_model=CategoryOut, status_code=201, summary="Add a category (admins)")
async def create_category(
    body: CategoryCreate, session: SessionDep, user: AdminUser, rt: RuntimeDep, meta: RequestMetaDep
) -> CategoryOut:
    category = await service.create_category(
        session=session, actor=user, **body.model_dump(), cache=rt.cache, client=meta
    )
    return CategoryOut.of(category)


@categories_router.patch("/{slug}", response_model=CategoryOut, summary="Edit a category (admins)")
async def update_category(
    slug: CategorySlug, body: CategoryUpdate, session: SessionDep, user: AdminUser, rt: RuntimeDep, meta: RequestMetaDep
) -> CategoryOut:
    category = await service.update_category(
        session=session,
        actor=user,
        slug=slug,
        changes=cast(service.CategoryChanges, body.model_dump(exclude_unset=True)),
        cache=rt.cache,
        client=meta,
    )
    return CategoryOut.of(category)


@categories_router.delete("/{slug}", status_code=204, summary="Deactivate a category (admins)")
async def deactivate_category(
    slug: CategorySlug, session: SessionDep, user: AdminUser, rt: RuntimeDep, meta: RequestMetaDep
) -> Response:
    await service.deactivate_category(session=session, actor=user, slug=slug, cache=rt.cache, client=meta)
    return Response(status_code=204)
