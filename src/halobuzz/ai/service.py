"""What the API asks of the AI engine — text moderation, sentiment, tags, engagement — in-process by
default, or over HTTP to ``halobuzz ai-engine`` when MODERATION_ENGINE_URL is set.

``ai_of(runtime)`` is the process's instance. When the remote engine cannot be reached, moderation
answers with MODERATION_ENGINE_FAILURE_POLICY, sentiment is neutral, tags are empty and engagement
reports ``insufficient_data``: requests never fail because the engine is down.
"""

from __future__ import annotations

from dataclasses import dataclass

from halobuzz.ai import engagement, sentiment, tags
from halobuzz.ai.engine import EngineClient
from halobuzz.ai.text import Policy, Result, RuleSet, TextModerator
from halobuzz.config import ModerationSettings
from halobuzz.core.runtime import Runtime


def rules_from_settings(settings: ModerationSettings) -> dict[str, RuleSet]:
    return {name: RuleSet.from_dict(name, data) for name, data in settings.region_rules.items()}


_moderators: dict[tuple[str, str], TextModerator] = {}


def moderator_for(settings: ModerationSettings) -> TextModerator:
    """One moderator per (region, rule sets) in the process (building one reads every word list)."""
    key = (settings.region, repr(sorted(settings.region_rules.items())))
    found = _moderators.get(key)
    if found is None:
        found = TextModerator.default(settings.region, rules=rules_from_settings(settings))
        _moderators[key] = found
    return found


@dataclass
class AI:
    settings: ModerationSettings
    moderator: TextModerator  # local rules (thresholds per region), also when the engine is remote
    client: EngineClient | None = None

    @property
    def policy(self) -> Policy:
        return Policy(hold=self.settings.hold_threshold, block=self.settings.block_threshold)

    def policy_for(self, region: str | None) -> Policy:
        return self.moderator.rule_set(region).policy(self.policy)

    @property
    def remote(self) -> bool:
        return self.client is not None

    async def moderate(
        self, text: str, *, blocked_terms: list[str] | tuple[str, ...] = (), region: str | None = None
    ) -> tuple[Result, bool]:
        """(result, degraded)."""
        if self.client is not None:
            return await self.client.analyze(text, blocked_terms=list(blocked_terms), region=region)
        return self.moderator.analyze(text, blocked_terms=blocked_terms, region=region), False

    async def sentiment(self, text: str) -> sentiment.Sentiment:
        if self.client is not None:
            return await self.client.sentiment(text)
        return sentiment.analyze(text)

    async def tags(self, title: str, description: str = "") -> list[str]:
        if self.client is not None:
            return await self.client.tags(title, description)
        return tags.suggest(title, description)

    async def engagement(self, samples: list[engagement.Sample]) -> engagement.Report:
        s = self.settings
        if self.client is not None:
            return await self.client.engagement(
                samples, viewer_drop=s.engagement_viewer_drop, chat_drop=s.engagement_chat_drop
            )
        return engagement.analyze(samples, viewer_drop=s.engagement_viewer_drop, chat_drop=s.engagement_chat_drop)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


def build(runtime: Runtime) -> AI:
    settings = runtime.settings.moderation
    client = None
    if settings.engine_url:
        client = EngineClient(
            settings.engine_url,
            runtime.settings.ai_engine_secret.get_secret_value(),
            on_failure=settings.engine_failure_policy,
            timeout=settings.engine_timeout_seconds,
            policy=Policy(hold=settings.hold_threshold, block=settings.block_threshold),
        )
    return AI(settings=settings, moderator=moderator_for(settings), client=client)


def ai_of(runtime: Runtime) -> AI:
    """The process's AI service (built on first use)."""
    found = runtime.extras.get("ai")
    if isinstance(found, AI):
        return found
    made = build(runtime)
    runtime.extras["ai"] = made
    return made
