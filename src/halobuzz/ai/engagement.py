"""Engagement analysis ("boredom detection"): from per-minute samples of a live stream's viewers,
chat messages and chat mood, tell a falling audience, a chat gone quiet or a souring mood, and
suggest something the creator can do about it. Pure and cheap: the scheduler's minute job feeds it
(halobuzz.ai.monitor) and the AI engine serves it (``POST /v1/engagement``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MIN_SAMPLES = 4
MIN_VIEWERS = 3  # below this, a drop of one or two people is noise
MIN_CHAT_PER_MINUTE = 3.0
RECENT = 2  # the last samples compared with the window before them

HINTS = {
    "audience_falling": "Viewers are leaving. Try changing the topic, starting a game or a poll, "
    "or greeting new viewers by name.",
    "chat_quiet": "Chat has gone quiet. Ask your viewers a question or read out a few messages.",
    "mood_negative": "The mood in chat is turning negative. Address what viewers are saying or switch "
    "to something lighter.",
}


@dataclass(frozen=True, slots=True)
class Sample:
    at: datetime
    viewers: int
    messages: int  # chat messages in the minute before ``at``
    mood: float | None = None  # mean sentiment of those messages (-1 .. 1)


@dataclass(frozen=True, slots=True)
class Report:
    status: str  # ok | insufficient_data | audience_falling | chat_quiet | mood_negative
    signals: list[str] = field(default_factory=list)
    viewer_change: float | None = None  # recent vs the window's peak (-0.4 = 40 % fewer)
    chat_change: float | None = None  # recent vs the window's mean rate
    mood: float | None = None
    hint: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "signals": list(self.signals),
            "viewer_change": None if self.viewer_change is None else round(self.viewer_change, 4),
            "chat_change": None if self.chat_change is None else round(self.chat_change, 4),
            "mood": None if self.mood is None else round(self.mood, 4),
            "hint": self.hint,
        }


def analyze(
    samples: Sequence[Sample], *, viewer_drop: float = 0.3, chat_drop: float = 0.5, negative_mood: float = -0.3
) -> Report:
    """Compare the last ``RECENT`` samples with the ones before them (oldest first)."""
    ordered = sorted(samples, key=lambda s: s.at)
    if len(ordered) < MIN_SAMPLES:
        return Report("insufficient_data")
    before, recent = ordered[:-RECENT], ordered[-RECENT:]
    peak = max(s.viewers for s in before)
    now_viewers = sum(s.viewers for s in recent) / len(recent)
    rate_before = sum(s.messages for s in before) / len(before)
    rate_now = sum(s.messages for s in recent) / len(recent)
    moods = [s.mood for s in recent if s.mood is not None]
    mood = sum(moods) / len(moods) if moods else None
    viewer_change = (now_viewers - peak) / peak if peak else None
    chat_change = (rate_now - rate_before) / rate_before if rate_before else None
    signals: list[str] = []
    if peak >= MIN_VIEWERS and viewer_change is not None and viewer_change <= -viewer_drop:
        signals.append("audience_falling")
    if rate_before >= MIN_CHAT_PER_MINUTE and chat_change is not None and chat_change <= -chat_drop:
        signals.append("chat_quiet")
    if mood is not None and mood <= negative_mood and rate_now >= 1:
        signals.append("mood_negative")
    if not signals:
        return Report("ok", [], viewer_change, chat_change, mood)
    return Report(signals[0], signals, viewer_change, chat_change, mood, " ".join(HINTS[s] for s in signals))
