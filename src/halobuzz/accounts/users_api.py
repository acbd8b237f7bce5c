"""Routes: profiles, avatars, follows and blocks under /users.

``{id_or_username}`` takes a user id or a username (any case); ``me`` names the caller. The
``/me`` routes are declared first so ``/{id_or_username}`` never shadows them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Path, Request, UploadFile

from halobuzz.accounts import profile, social
from halobuzz.accounts.deps import CurrentUser, OptionalUser
from halobuzz.accounts.schemas import MeOut, UserOut, me_out, user_out
from halobuzz.accounts.users_schemas import BlockOut, FollowOut, ProfileOut, ProfileUpdateIn, profile_out
from halobuzz.core.deps import PageDep, RuntimeDep, SessionDep
from halobuzz.core.errors import Unauthorized
from halobuzz.core.pagination import Page
from halobuzz.core.runtime import Runtime
from halobuzz.moderation import images as image_screening
from halobuzz.moderation import screening

users_router = APIRouter(prefix="/users", tags=["users"])

UserRef = Annotated[
    str,
    Path(min_length=1, max_length=64, description="a user id, a username (any case), or 'me' for the caller"),
]


def _page(found: social.UserPage, rt: Runtime) -> Page[UserOut]:
    return Page(items=[user_out(u, rt.storage) for u in found.items], next_cursor=found.next_cursor)


async def _avatar_upload(
    request: Request,
    file: Annotated[UploadFile, File(description="a PNG, JPEG or WebP image")],
) -> bytes:
    """The upload, checked and re-encoded before the database transaction begins.

    Decoding runs ahead of the full sign-in check (which opens the transaction, the single writer
    on SQLite), so only a correctly signed, unexpired access token buys an image decode.
    """
    rt: Runtime = request.app.state.runtime
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("sign in first: send 'Authorization: Bearer <access token>'", code="not_authenticated")
    if rt.sessions.claims(token.strip()) is None:
        raise Unauthorized("access token is invalid or expired; refresh it or sign in again", code="invalid_token")
    data = await file.read(rt.settings.avatar.max_bytes + 1)
    avatar = await profile.prepare_avatar(data=data, limits=rt.settings.avatar)
    request.state.avatar_original = data  # screened with the avatar (a crop can hide a blocklist match)
    return avatar


@users_router.get("/me", response_model=MeOut, summary="The signed-in user's account")
async def get_me(user: CurrentUser, rt: RuntimeDep) -> MeOut:
    return me_out(user, rt.storage)


@users_router.patch("/me", response_model=MeOut, summary="Edit the signed-in user's profile")
async def update_me(body: ProfileUpdateIn, user: CurrentUser, session: SessionDep, rt: RuntimeDep) -> MeOut:
    changes = body.model_dump(exclude_unset=True)
    updated = await profile.update_profile(session=session, actor=user, changes=changes)
    await screening.screen_profile(session=session, runtime=rt, user=updated, changed=set(changes))
    return me_out(updated, rt.storage)


@users_router.put(
    "/me/avatar",
    response_model=MeOut,
    summary="Upload an avatar (PNG, JPEG or WebP; stored as a square WebP without metadata)",
    responses={413: {"description": "file too large"}, 415: {"description": "not a PNG, JPEG or WebP image"}},
)
async def upload_avatar(
    request: Request,
    image: Annotated[bytes, Depends(_avatar_upload)],
    user: CurrentUser,
    session: SessionDep,
    rt: RuntimeDep,
) -> MeOut:
    await image_screening.screen_image(
        session=session, runtime=rt, images=[request.state.avatar_original, image], purpose="avatar", actor=user
    )
    updated = await profile.set_avatar(session=session, storage=rt.storage, actor=user, image=image)
    return me_out(updated, rt.storage)


@users_router.delete("/me/avatar", response_model=MeOut, summary="Remove the avatar")
async def delete_avatar(user: CurrentUser, session: SessionDep, rt: RuntimeDep) -> MeOut:
    updated = await profile.remove_avatar(session=session, storage=rt.storage, actor=user)
    return me_out(updated, rt.storage)


@users_router.get("/me/blocks", response_model=Page[UserOut], summary="Users the caller has blocked")
async def list_my_blocks(user: CurrentUser, session: SessionDep, rt: RuntimeDep, page: PageDep) -> Page[UserOut]:
    found = await social.list_blocks(session=session, actor=user, limit=page.limit, cursor=page.cursor)
    return _page(found, rt)


@users_router.get("/{id_or_username}", response_model=ProfileOut, summary="A user's public profile")
async def get_user(id_or_username: UserRef, viewer: OptionalUser, session: SessionDep, rt: RuntimeDep) -> ProfileOut:
    view = await profile.get_profile(session=session, ref=id_or_username, viewer=viewer)
    return profile_out(view, rt.storage)


@users_router.post("/{id_or_username}/follow", response_model=FollowOut, summary="Follow a user (idempotent)")
async def follow_user(id_or_username: UserRef, user: CurrentUser, session: SessionDep) -> FollowOut:
    state = await social.follow(session=session, actor=user, target_ref=id_or_username)
    return FollowOut(user_id=state.user_id, following=state.following, follower_count=state.follower_count)


@users_router.delete("/{id_or_username}/follow", response_model=FollowOut, summary="Unfollow a user (idempotent)")
async def unfollow_user(id_or_username: UserRef, user: CurrentUser, session: SessionDep) -> FollowOut:
    state = await social.unfollow(session=session, actor=user, target_ref=id_or_username)
    return FollowOut(user_id=state.user_id, following=state.following, follower_count=state.follower_count)


@users_router.get(
    "/{id_or_username}/followers", response_model=Page[UserOut], summary="A user's followers, newest first"
)
async def list_followers(
    id_or_username: UserRef, viewer: OptionalUser, session: SessionDep, rt: RuntimeDep, page: PageDep
) -> Page[UserOut]:
    found = await social.list_followers(
        session=session, ref=id_or_username, viewer=viewer, limit=page.limit, cursor=page.cursor
    )
    return _page(found, rt)


@users_router.get(
    "/{id_or_username}/following", response_model=Page[UserOut], summary="Whom a user follows, newest first"
)
async def list_following(
    id_or_username: UserRef, viewer: OptionalUser, session: SessionDep, rt: RuntimeDep, page: PageDep
) -> Page[UserOut]:
    found = await social.list_following(
        session=session, ref=id_or_username, viewer=viewer, limit=page.limit, cursor=page.cursor
    )
    return _page(found, rt)


@users_router.post("/{id_or_username}/block", response_model=BlockOut, summary="Block a user (ends follows both ways)")
async def block_user(id_or_username: UserRef, user: CurrentUser, session: SessionDep) -> BlockOut:
    state = await social.block(session=session, actor=user, target_ref=id_or_username)
    return BlockOut(user_id=state.user_id, blocked=state.blocked)


@users_router.delete("/{id_or_username}/block", response_model=BlockOut, summary="Unblock a user")
async def unblock_user(id_or_username: UserRef, user: CurrentUser, session: SessionDep) -> BlockOut:
    state = await social.unblock(session=session, actor=user, target_ref=id_or_username)
    return BlockOut(user_id=state.user_id, blocked=state.blocked)
