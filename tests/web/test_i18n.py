"""Language catalogs: every language has every text, with the same placeholders as English."""

from __future__ import annotations

import re

from halobuzz.web import i18n

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def test_every_language_has_every_text_with_its_placeholders():
    english = i18n.catalog("en")
    for lang in i18n.LANGUAGES:
        texts = i18n.catalog(lang)
        assert set(texts) == set(english), (lang, sorted(set(english) ^ set(texts)))
        for key, text in texts.items():
            assert text.strip(), (lang, key)
            assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(english[key])), (lang, key)


def test_plural_forms_and_fallbacks():
    assert i18n.translate("en", "gift.coins", count=1) == "1 coin"
    assert i18n.translate("en", "gift.coins", count=3) == "3 coins"
    assert i18n.translate("ne", "gift.coins", count=1) == "1 सिक्का"
    assert i18n.translate("en", "no.such.key") == "no.such.key"
    assert i18n.has_key("notice.saved") and not i18n.has_key("notice.nope")


def test_language_choice_order():
    assert i18n.choose(query="ur", cookie="hi", profile="ne", accept="bn") == "ur"
    assert i18n.choose(query="xx", cookie="hi", profile="ne", accept="bn") == "hi"
    assert i18n.choose(query=None, cookie=None, profile="ne", accept="bn") == "ne"
    assert i18n.choose(query=None, cookie=None, profile=None, accept="fr, bn;q=0.8, hi;q=0.9") == "hi"
    assert i18n.choose(query=None, cookie=None, profile=None, accept="fr;q=1, de") == "en"
    assert i18n.choose(query=None, cookie=None, profile=None, accept="hi;q=bad, ne;q=0") == "en"
