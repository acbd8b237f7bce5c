"""Sentiment (VADER for English, lexicon with negation for Nepali, Hindi, Urdu) and stream tags."""

from __future__ import annotations

import pytest

from halobuzz.ai import sentiment, tags


@pytest.mark.parametrize(
    ("text", "label", "language"),
    [
        ("this stream is amazing, love it", "positive", "en"),
        ("so boring, I hate this", "negative", "en"),
        ("what time is it", "neutral", "en"),
        ("yo geet ekdam ramro cha", "positive", "ne"),
        ("aaja ko stream ramro chaina", "negative", "ne"),
        ("यो गीत धेरै राम्रो छ", "positive", "ne"),
        ("aaj ka stream bahut badhiya hai", "positive", "hi"),
        ("yeh accha nahi hai", "negative", "hi"),
        ("यह स्ट्रीम बकवास है", "negative", "hi"),
        ("zabardast stream bhai shukriya", "positive", "ur"),
        ("یہ بہت بکواس ہے", "negative", "ur"),
        ("آپ کی آواز بہت اچھی ہے", "positive", "ur"),
    ],
)
def test_sentiment(text: str, label: str, language: str) -> None:
    result = sentiment.analyze(text)
    assert (result.label, result.language) == (label, language), result
    assert -1.0 <= result.score <= 1.0


def test_tags_from_title_and_description() -> None:
    assert tags.suggest("Live cricket: Nepal vs UAE") == ["sports"]
    assert tags.suggest("गीत र संगीत", "रमाइलो साँझ") == ["music"]
    assert tags.suggest("کرکٹ اور گپ شپ") == ["sports", "talk"]
    assert tags.suggest("Tihar special", "deusi bhailo #tihar2026 #deusi") == ["festival", "tihar2026", "deusi"]
    assert tags.suggest("hello") == []
    assert len(tags.suggest("music game cooking talk news comedy dance travel")) == tags.MAX_TAGS
