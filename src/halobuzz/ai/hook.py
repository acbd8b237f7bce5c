"""The chat moderation hook: runs the text moderator before every broadcast (realtime gateway)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from halobuzz.ai.engine import EngineClient
from halobuzz.ai.text import Policy, Result, TextModerator
from halobuzz.chat.service import ALLOW, MessageContext, ModerationHook, Verdict

# Per-channel blocked terms, keyed by the stream owner's id (managed by creators).
BlockedTerms = Callable[[uuid.UUID], frozenset[str]]


def _no_terms(_owner_id: uuid.UUID) -> frozenset[str]:
    return frozenset()


def make_chat_hook(
    moderator: TextModerator, policy: Policy, *, blocked_terms: BlockedTerms = _no_terms
) -> ModerationHook:
    """allow → broadcast; hold → stored as held for review; block → refused with the label as reason."""

    async def hook(context: MessageContext) -> Verdict:
        terms = frozenset[str]() if context.privileged else blocked_terms(context.owner_id)
        return _verdict(moderator.analyze(context.text, blocked_terms=terms), policy)

    return hook


def make_remote_chat_hook(client: EngineClient, policy: Policy) -> ModerationHook:
    """The same hook over a remote engine; when it is down the client's degrade policy answers."""

    async def hook(context: MessageContext) -> Verdict:
        result, _degraded = await client.analyze(context.text)
        return _verdict(result, policy)

    return hook


def _verdict(result: Result, policy: Policy) -> Verdict:
    action = policy.decide(result)
    if action == "allow":
        return ALLOW
    label = max(result.labels, key=lambda k: result.labels[k])
    if action == "block":
        return Verdict("reject", f"message blocked by moderation ({label})")
    return Verdict("hold", f"message held for review ({label})")
