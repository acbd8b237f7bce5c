"""Screening of what users write outside chat — profiles (display name, bio) and stream titles and
descriptions — through the text moderator, with the region's rule set.

block → 422 ``content_blocked`` naming the field and labels; nothing is saved.
hold → the change is saved and visible, and an automatic case (no reporter) enters the review queue
with the AI's score as its priority; a moderator can then remove the content (``remove_content``).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User
from halobuzz.ai.service import ai_of
from halobuzz.core.errors import InvalidInput
from halobuzz.core.runtime import Runtime
from halobuzz.streams.models import Stream


async def screen_fields(
    *,
    session: AsyncSession,
    runtime: Runtime,
    fields: dict[str, str],
    target_type: str,
    target_id: uuid.UUID,
    subject_id: uuid.UUID,
    region: str | None = None,
) -> str:
    """Check ``fields``; raises on block, opens a case on hold. Returns allow or hold."""
    if not runtime.settings.moderation.screen_profiles:
        return "allow"
    from halobuzz.moderation import service as moderation_service

    ai = ai_of(runtime)
    policy = ai.policy_for(region)
    held: list[str] = []
    labels: dict[str, float] = {}
    score = 0.0
    for name, text in fields.items():
        if not text or not text.strip():
            continue
        result, _degraded = await ai.moderate(text, region=region)
        action = policy.decide(result)
        if action == "block":
            label = max(result.labels, key=lambda k: result.labels[k])
            raise InvalidInput(
                f"{name}: this text is not allowed ({label})",
                code="content_blocked",
                details={"field": name, "labels": result.labels},
            )
        if action == "hold":
            held.append(name)
            labels.update(result.labels)
            score = max(score, result.score)
    if not held:
        return "allow"
    await moderation_service.open_auto_case(
        session=session,
        target_type=target_type,
        target_id=target_id,
        subject_id=subject_id,
        score=score,
        labels=labels,
        fields=held,
    )
    return "hold"


async def screen_stream(*, session: AsyncSession, runtime: Runtime, stream: Stream, changed: set[str]) -> str:
    """Screen a stream's new title/description (owner's region rules) and refresh its automatic tags."""
    fields: dict[str, str] = {name: getattr(stream, name) for name in ("title", "description") if name in changed}
    if not fields:
        return "allow"
    outcome = await screen_fields(
        session=session,
        runtime=runtime,
        fields=fields,
        target_type="stream",
        target_id=stream.id,
        subject_id=stream.owner_id,
        region=stream.region,
    )
    stream.auto_tags = await ai_of(runtime).tags(stream.title, stream.description or "")
    await session.flush()
    return outcome


async def screen_profile(*, session: AsyncSession, runtime: Runtime, user: User, changed: set[str]) -> str:
    """Screen a user's new display name and bio."""
    fields: dict[str, str] = {name: getattr(user, name) for name in ("display_name", "bio") if name in changed}
    if not fields:
        return "allow"
    return await screen_fields(
        session=session, runtime=runtime, fields=fields, target_type="user", target_id=user.id, subject_id=user.id
    )
