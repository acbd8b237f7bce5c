"""Routes: a stream's chat history, chat modes and chat moderation (under /streams/{id}/chat)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from halobuzz.accounts.deps import CurrentUser
from halobuzz.chat import service
from halobuzz.chat.schemas import (
    BanIn,
    ChatBanList,
    ChatBanOut,
    ChatMessageOut,
    ChatModeratorList,
    ChatModeratorOut,
    ChatModesIn,
    ChatModesOut,
    ChatPage,
    TimeoutIn,
)
from halobuzz.core.deps import RuntimeDep, SessionDep
from halobuzz.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from halobuzz.core.runtime import Runtime
from halobuzz.realtime.asgi import gateway_of

router = APIRouter(prefix="/streams", tags=["chat"])

StreamId = Annotated[uuid.UUID, Path(description="stream id")]
UserId = Annotated[uuid.UUID, Path(description="user id")]
MessageId = Annotated[uuid.UUID, Path(description="chat message id")]


def _events(runtime: Runtime) -> service.ChatEvents | None:
    return gateway_of(runtime)


@router.get("/{stream_id}/chat", response_model=ChatPage, summary="A stream's chat history, oldest first")
async def chat_history(
    stream_id: StreamId,
    session: SessionDep,
    before: Annotated[
        str | None,
        Query(min_length=1, max_length=512, description="a message id, or next_cursor of the page after"),
    ] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=512, description="same as before")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="messages per page")] = DEFAULT_LIMIT,
) -> ChatPage:
    page = await service.list_history(session=session, stream_id=stream_id, before=before or cursor, limit=limit)
    return ChatPage(items=[ChatMessageOut.model_validate(m) for m in page.items], next_cursor=page.next_cursor)


@router.get("/{stream_id}/chat/modes", response_model=ChatModesOut, summary="A stream's chat modes")
async def get_modes(stream_id: StreamId, session: SessionDep) -> ChatModesOut:
    return ChatModesOut.of(await service.get_chat_modes(session=session, stream_id=stream_id))


@router.patch("/{stream_id}/chat/modes", response_model=ChatModesOut, summary="Change chat modes (moderators)")
async def set_modes(
    stream_id: StreamId, body: ChatModesIn, session: SessionDep, user: CurrentUser, runtime: RuntimeDep
) -> ChatModesOut:
    modes = await service.set_chat_modes(
        session=session,
        actor=user,
        stream_id=stream_id,
        changes=body.changes(),  # type: ignore[arg-type]
        events=_events(runtime),
    )
    return ChatModesOut.of(modes)


@router.delete("/{stream_id}/chat/messages/{message_id}", status_code=204, summary="Delete a chat message (moderators)")
async def delete_message(
    stream_id: StreamId, message_id: MessageId, session: SessionDep, user: CurrentUser, runtime: RuntimeDep
) -> Response:
    gateway = gateway_of(runtime)
    await service.delete_message(
        session=session, actor=user, stream_id=stream_id, message_id=message_id, recent=gateway, events=gateway
    )
    return Response(status_code=204)


@router.post(
    "/{stream_id}/chat/timeouts", response_model=ChatBanOut, status_code=201, summary="Time a user out (moderators)"
)
async def timeout_user(
    stream_id: StreamId, body: TimeoutIn, session: SessionDep, user: CurrentUser, runtime: RuntimeDep
) -> ChatBanOut:
    row, name = await service.timeout_user(
        session=session,
        actor=user,
        stream_id=stream_id,
        user_id=body.user_id,
        duration_seconds=body.duration_seconds,
        reason=body.reason,
        max_duration_seconds=runtime.settings.chat.max_timeout_seconds,
        events=_events(runtime),
    )
    return ChatBanOut.of(row, name)


@router.post("/{stream_id}/chat/bans", response_model=ChatBanOut, status_code=201, summary="Ban a user (moderators)")
async def ban_user(
    stream_id: StreamId, body: BanIn, session: SessionDep, user: CurrentUser, runtime: RuntimeDep
) -> ChatBanOut:
    row, name = await service.ban_user(
        session=session,
        actor=user,
        stream_id=stream_id,
        user_id=body.user_id,
        reason=body.reason,
        events=_events(runtime),
    )
    return ChatBanOut.of(row, name)


@router.get("/{stream_id}/chat/bans", response_model=ChatBanList, summary="Current bans and timeouts (moderators)")
async def list_bans(stream_id: StreamId, session: SessionDep, user: CurrentUser) -> ChatBanList:
    rows = await service.list_bans(session=session, actor=user, stream_id=stream_id)
    return ChatBanList(items=[ChatBanOut.of(row, name) for row, name in rows])


@router.delete("/{stream_id}/chat/bans/{user_id}", status_code=204, summary="Lift a ban or timeout (moderators)")
async def lift_ban(stream_id: StreamId, user_id: UserId, session: SessionDep, user: CurrentUser) -> Response:
    await service.lift_ban(session=session, actor=user, stream_id=stream_id, user_id=user_id)
    return Response(status_code=204)


@router.get("/{stream_id}/chat/moderators", response_model=ChatModeratorList, summary="A stream's chat moderators")
async def list_moderators(stream_id: StreamId, session: SessionDep) -> ChatModeratorList:
    rows = await service.list_moderators(session=session, stream_id=stream_id)
    return ChatModeratorList(items=[ChatModeratorOut.of(row, name) for row, name in rows])


@router.put(
    "/{stream_id}/chat/moderators/{user_id}",
    response_model=ChatModeratorOut,
    summary="Appoint a chat moderator (owner or admin)",
)
async def add_moderator(
    stream_id: StreamId, user_id: UserId, session: SessionDep, user: CurrentUser
) -> ChatModeratorOut:
    row, name = await service.add_moderator(session=session, actor=user, stream_id=stream_id, user_id=user_id)
    return ChatModeratorOut.of(row, name)


@router.delete(
    "/{stream_id}/chat/moderators/{user_id}", status_code=204, summary="Withdraw a chat moderator (owner or admin)"
)
async def remove_moderator(stream_id: StreamId, user_id: UserId, session: SessionDep, user: CurrentUser) -> Response:
    await service.remove_moderator(session=session, actor=user, stream_id=stream_id, user_id=user_id)
    return Response(status_code=204)
