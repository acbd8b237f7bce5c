"""Text moderation: the evaluation floor per language, obfuscation, false positives, spam and PII."""

from __future__ import annotations

import pytest

from halobuzz.ai.text import Policy, RuleSet, TextModerator
from tests.ai.eval_data import EVAL_SET

FLOOR = {"en": (0.95, 0.95), "ne": (0.95, 0.95), "hi": (0.95, 0.95), "ur": (0.95, 0.95)}
moderator = TextModerator.default()
policy = Policy()


def flagged(text: str) -> bool:
    result = moderator.analyze(text)
    return policy.decide(result) != "allow" and bool({"profanity", "slur"} & set(result.labels))


def test_eval_set_has_400_messages_in_four_languages_and_scripts() -> None:
    assert len(EVAL_SET) >= 400
    assert {language for language, _, _ in EVAL_SET} == {"en", "ne", "hi", "ur"}
    for language in ("en", "ne", "hi", "ur"):
        rows = [(text, flagged) for lang, text, flagged in EVAL_SET if lang == language]
        assert len(rows) >= 100 and sum(f for _, f in rows) >= 40 and sum(not f for _, f in rows) >= 60
        if language != "en":  # native script and romanized, abusive and clean
            assert any(not t.isascii() and f for t, f in rows) and any(t.isascii() and f for t, f in rows)
            assert any(not t.isascii() and not f for t, f in rows) and any(t.isascii() and not f for t, f in rows)


@pytest.mark.parametrize(
    "text", ["mujiko chora", "randiharu", "मुजीको कक्षा", "teri maa ki chut", "kutte ki aulad", "machikneharu"]
)
def test_postpositions_and_phrases_are_caught(text: str) -> None:
    assert flagged(text), moderator.analyze(text)


@pytest.mark.parametrize(
    "text",
    [
        "kon hai ye",
        "کون آیا ہے",
        "chod do yaar",
        "she graduated cum laude",
        "the condo is new",
        "bhalu ko bachha",
        "xxx",
        "tit for tat",
        "a garden hoe",
    ],
)
def test_ordinary_words_in_the_packages_lists_stay_clean(text: str) -> None:
    assert moderator.analyze(text).labels == {}


def test_region_rule_sets() -> None:
    assert moderator.analyze("timi murkha hau").labels == {"insult": 0.45}
    assert policy.decide(moderator.analyze("timi murkha hau")) == "allow"
    assert policy.decide(moderator.analyze("timi murkha hau", region="np")) == "hold"
    custom = TextModerator.default(
        rules={"xx": RuleSet.from_dict("xx", {"skip": ["spam"], "terms": {"zorg": "profanity"}})}
    )
    assert "spam" not in custom.analyze("see www.example.com", region="xx").labels
    assert custom.analyze("zorg", region="xx").labels == {"profanity": 0.75}
    assert custom.analyze("zorg").labels == {}  # a region's own terms apply in that region only


@pytest.mark.parametrize("language", ["en", "ne", "hi", "ur"])
def test_precision_and_recall_floor(language: str) -> None:
    tp = fp = fn = 0
    for lang, text, expected in EVAL_SET:
        if lang != language:
            continue
        got = flagged(text)
        tp += got and expected
        fp += got and not expected
        fn += expected and not got
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    min_p, min_r = FLOOR[language]
    assert precision >= min_p and recall >= min_r, (language, precision, recall)


@pytest.mark.parametrize(
    "text", ["f u c k you", "fuuuuuck", "sh1t", "F.U.C.K", "n1gg3r", "mad@rch0d", "muuujiii", "bhen\u200bchod"]
)
def test_obfuscation_is_caught(text: str) -> None:
    assert flagged(text), moderator.analyze(text)


@pytest.mark.parametrize(
    "text",
    ["Scunthorpe United", "my assistant", "Dickens", "shiitake", "class of 2020", "as good as it gets", "455 points"],
)
def test_no_scunthorpe_false_positives(text: str) -> None:
    assert moderator.analyze(text).labels == {}


def test_slurs_block_and_profanity_holds() -> None:
    assert policy.decide(moderator.analyze("you retard")) == "block"
    assert policy.decide(moderator.analyze("what the fuck")) == "hold"
    assert policy.decide(moderator.analyze("fuck this shit")) == "block"


def test_spam_pii_and_blocked_terms() -> None:
    assert "spam" in moderator.analyze("free coins at http://example.xyz/win").labels
    assert "spam" in moderator.analyze("buy buy buy buy buy buy buy buy").labels
    assert "pii" in moderator.analyze("call me on +977 984-123-4567").labels
    assert "pii" in moderator.analyze("write to me: someone@example.com").labels
    assert "pii" not in moderator.analyze("score was 3-2 after 90 minutes").labels
    result = moderator.analyze("go watch OtherChannel instead", blocked_terms={"otherchannel"})
    assert result.labels.get("blocked_term") == 0.95
    assert policy.decide(result) == "block"
