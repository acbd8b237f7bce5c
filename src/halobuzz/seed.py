"""Base data (categories) and demo data (an admin, 3 creators, 20 viewers, follows, streams).

Idempotent: running it again adds nothing that is already there.
"""

from __future__ import annotations

import random

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import CreatorStatus, Follow, Role, User
from halobuzz.config import Settings
from halobuzz.core.db import Database
from halobuzz.core.security import PasswordHashing

DEMO_PASSWORD = "halobuzz-demo-2026"  # noqa: S105 - documented demo credential, refused in production

CATEGORIES = [
    ("music", "Music", "Live music, DJ sets and jam sessions"),
    ("talk", "Talk & Podcasts", "Conversations, interviews and call-ins"),
    ("gaming", "Gaming", "Let's plays, esports and speedruns"),
    ("radio", "Radio", "Audio-only channels and shows"),
    ("irl", "IRL", "Travel, cooking and everyday life"),
    ("education", "Education", "Lessons, study-with-me and tutorials"),
    ("sports", "Sports", "Watch-alongs, fitness and training"),
    ("dance", "Dance", "Performances and classes"),
    ("comedy", "Comedy", "Stand-up and improv"),
    ("festivals", "Festivals", "Dashain, Tihar, Diwali, Eid and more"),
]

DEMO_STREAMS = [
    ("creator1", "Evening ghazals from Kathmandu", "music", "ne", True),
    ("creator2", "Ranked grind — come say hi", "gaming", "en", False),
    ("creator3", "Morning radio: news and chai", "radio", "hi", False),
]


async def _seed_categories(session: AsyncSession) -> int:
    from halobuzz.streams.models import Category

    existing = set((await session.scalars(select(Category.slug))).all())
    added = 0
    for position, (slug, name, description) in enumerate(CATEGORIES):
        if slug not in existing:
            session.add(Category(slug=slug, name=name, description=description, position=position))
            added += 1
    await session.flush()
    return added


async def _user(
    session: AsyncSession, passwords: PasswordHashing, username: str, roles: list[str], **fields: object
) -> User:
    user = await session.scalar(select(User).where(User.username_key == username.lower()))
    if user is not None:
        return user
    user = User(
        username=username,
        username_key=username.lower(),
        email=f"{username}@demo.halobuzz.local",
        password_hash=passwords.hash(DEMO_PASSWORD),
        display_name=str(fields.pop("display_name", username.capitalize())),
        roles=roles,
        creator_status=CreatorStatus.APPROVED.value if Role.CREATOR in roles else CreatorStatus.NONE.value,
        **fields,
    )
    session.add(user)
    await session.flush()
    return user


async def _seed_demo(session: AsyncSession, settings: Settings) -> list[str]:
    from halobuzz.accounts import social
    from halobuzz.streams import service as streams

    passwords = PasswordHashing(settings.auth)
    await _user(session, passwords, "admin", ["user", "moderator", "admin"], display_name="HaloBuzz Admin")
    creators = [
        await _user(session, passwords, f"creator{i}", ["user", "creator"], country=c, language=lang)
        for i, (c, lang) in enumerate((("NP", "ne"), ("IN", "en"), ("IN", "hi")), start=1)
    ]
    viewers = [await _user(session, passwords, f"viewer{i}", ["user"]) for i in range(1, 21)]
    rng = random.Random(2026)  # the same demo graph every time
    follows = 0
    for viewer in viewers:
        for creator in rng.sample(creators, rng.randint(1, 3)):
            known = await session.get(Follow, (viewer.id, creator.id))
            if known is None:
                await social.follow(session=session, actor=viewer, target_ref=str(creator.id))
                follows += 1
    by_name = {c.username: c for c in creators}
    live = 0
    for owner_name, title, category, language, go_live in DEMO_STREAMS:
        owner = by_name[owner_name]
        mine = await streams.list_owner_streams(session=session, owner_id=owner.id)
        if mine.items:
            continue
        created = await streams.create_stream(
            session=session,
            actor=owner,
            title=title,
            category=category,
            language=language,
            audio_only=category == "radio",
        )
        if go_live:
            await streams.start_stream(session=session, actor=owner, stream_id=created.stream.id)
            live += 1
    return [
        f"demo: 1 admin, {len(creators)} creators, {len(viewers)} viewers, {follows} new follows, {live} live streams"
    ]


async def run(settings: Settings, *, demo: bool) -> list[str]:
    """Seed the database; returns lines describing what was added."""
    db = Database(settings.resolved_database_url)
    try:
        async with db.session() as session:
            from halobuzz.economy import service as economy

            lines = [f"categories: {await _seed_categories(session)} added"]
            await economy.ensure_default_catalog(session)
            lines.append("coin packages and gifts: default catalog present")
            if demo:
                lines += await _seed_demo(session, settings)
                lines.append(f"demo accounts: admin, creator1-3, viewer1-20; password {DEMO_PASSWORD}")
        return lines
    finally:
        await db.dispose()


async def create_admin(settings: Settings, *, username: str, email: str, password: str) -> str:
    """Create an admin account, or add the admin role to an existing one."""
    from pydantic import ValidationError

    from halobuzz.accounts.schemas import RegisterIn
    from halobuzz.accounts.service import check_password_policy
    from halobuzz.core.errors import DomainError

    try:
        checked = RegisterIn(username=username, email=email, password=password)
        check_password_policy(
            settings=settings.auth, password=password, username=checked.username, email=checked.email, field="password"
        )
    except ValidationError as exc:
        raise ValueError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc
    except DomainError as exc:
        raise ValueError(exc.message) from exc
    username, email = checked.username, checked.email
    db = Database(settings.resolved_database_url)
    try:
        async with db.session() as session:
            user = await session.scalar(select(User).where(User.username_key == username.lower()))
            if user is not None:
                user.roles = sorted(set(user.roles) | {"user", "moderator", "admin"})
                await session.flush()
                return f"{user.username} is now an admin (their password is unchanged)"
            passwords = PasswordHashing(settings.auth)
            session.add(
                User(
                    username=username,
                    username_key=username.lower(),
                    email=email.lower(),
                    password_hash=passwords.hash(password),
                    display_name=username,
                    roles=["user", "moderator", "admin"],
                )
            )
            return f"admin {username} created"
    finally:
        await db.dispose()
