"""The chat moderation hook: runs the text moderator before every broadcast (realtime gateway).

Per message: the stream's region rule set and its owner's blocked terms (cached per stream, see
``moderation.terms.ChannelRules``), then the policy. Reputation feeds chat privileges: below
MODERATION_LOW_REPUTATION a message with any label at all (even ones the policy only reports, such
as flooding or mild insults) is held for review; below MODERATION_RESTRICTED_REPUTATION every
message is held. Privileged senders (owner, channel
moderators, staff) skip blocked terms and reputation rules, not the word lists.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property

from halobuzz.ai.engine import EngineClient
from halobuzz.ai.text import CompiledTerms, Policy, Result, TextModerator, compile_terms
from halobuzz.chat.service import ALLOW, MessageContext, ModerationHook, Verdict


@dataclass(frozen=True)
class ChannelInfo:
    region: str | None
    terms: tuple[str, ...]

    @cached_property
    def compiled(self) -> CompiledTerms:
        return compile_terms(self.terms)


# Per stream: its region and its owner's blocked terms.
ChannelLookup = Callable[[uuid.UUID], Awaitable[ChannelInfo | None]]


async def _no_channel(_stream_id: uuid.UUID) -> ChannelInfo | None:
    return None


@dataclass(frozen=True, slots=True)
class Privileges:
    low: int = 50
    restricted: int = 20


def make_chat_hook(
    moderator: TextModerator,
    policy: Policy,
    *,
    channel: ChannelLookup = _no_channel,
    privileges: Privileges = Privileges(),
) -> ModerationHook:
    """allow → broadcast; hold → stored as held for review; block → refused with the label as reason."""

    async def hook(context: MessageContext) -> Verdict:
        info = await channel(context.stream_id)
        region = info.region if info else None
        terms = CompiledTerms() if context.privileged or info is None else info.compiled
        result = moderator.analyze(context.text, blocked_terms=terms, region=region)
        rules = moderator.rule_set(region)
        return _verdict(result, rules.policy(policy), context, privileges)

    return hook


def make_remote_chat_hook(
    client: EngineClient,
    policy: Policy,
    *,
    moderator: TextModerator | None = None,
    channel: ChannelLookup = _no_channel,
    privileges: Privileges = Privileges(),
) -> ModerationHook:
    """The same hook over a remote engine; when it is down the client's degrade policy answers."""

    async def hook(context: MessageContext) -> Verdict:
        info = await channel(context.stream_id)
        region = info.region if info else None
        terms = [] if context.privileged or info is None else list(info.terms)
        result, _degraded = await client.analyze(context.text, blocked_terms=terms, region=region)
        local = moderator.rule_set(region).policy(policy) if moderator is not None else policy
        return _verdict(result, local, context, privileges)

    return hook


def _verdict(result: Result, policy: Policy, context: MessageContext, privileges: Privileges) -> Verdict:
    action = policy.decide(result)
    if action == "block":
        label = max(result.labels, key=lambda k: result.labels[k])
        return Verdict("reject", f"message blocked by moderation ({label})")
    if action == "hold":
        label = max(result.labels, key=lambda k: result.labels[k])
        return Verdict("hold", f"message held for review ({label})")
    if not context.privileged:
        if context.reputation < privileges.restricted:
            return Verdict("hold", "message held for review (low reputation)")
        if context.reputation < privileges.low and result.labels:
            label = max(result.labels, key=lambda k: result.labels[k])
            return Verdict("hold", f"message held for review ({label}, low reputation)")
    return ALLOW
