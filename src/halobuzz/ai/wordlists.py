"""Third-party word lists, read offline from their packages and merged with ours (ai/lexicon.py).

* ``no-nepali-profanity`` (MIT): English, romanized and Devanagari Nepali words, stems and phrases,
  tagged by strictness, and the Nepali postpositions that get glued onto words (``mujiko``, ``मुजीको``).
  Its *lenient* entries become ``profanity``; its *standard* entries (milder insults such as
  ``murkha``, ``badmas``) become ``insult``, scored below the default hold threshold except in the
  Nepal rule set; its *strict* entries (also ordinary words: ``damn``, ``cum``) are not used.
* ``glin-profanity`` (MIT): English (mostly sexual terms) and romanized Hindi lists. Its Persian and
  Arabic lists are **not** used for Urdu: they would flag ordinary Urdu (``کون`` is "who",
  ``کس`` "which"), and it has no Urdu list, so roman and Perso-Arabic Urdu stay our own.

Entries that are ordinary words, names or everyday Nepali/Hindi/Urdu (``condo``, ``bhalu`` "bear",
``chod do`` "leave it", ``saala`` "brother-in-law", ``chakke`` "sixes", ``paki`` "ripe", ``hijra``
a community's name …) are left out below (``EXCLUDED``): context-free matching cannot tell the innocent
use from the abusive one, and in chat the innocent one is far more common.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources

Entry = tuple[str, str, str]  # (text, label, language)

EXCLUDED: frozenset[str] = frozenset(
    {
        # English words and names in the packages' lists
        "anal",
        "anus",
        "bbw",
        "bs",
        "butt",
        "domination",
        "dominatrix",
        "erotic",
        "erotism",
        "escort",
        "eunuch",
        "fingering",
        "genitals",
        "grope",
        "hardcore",
        "hard core",
        "homoerotic",
        "hot chick",
        "how to kill",
        "how to murder",
        "huge fat",
        "humping",
        "incest",
        "intercourse",
        "jelly donut",
        "lolita",
        "lovemaking",
        "mf",
        "negro",
        "nipple",
        "nipples",
        "nude",
        "nudity",
        "omfg",
        "lmfao",
        "orgasm",
        "panties",
        "panty",
        "penis",
        "playboy",
        "pleasure chest",
        "rectum",
        "sadism",
        "santorum",
        "scat",
        "semen",
        "sex",
        "sexo",
        "sexy",
        "simp",
        "snatch",
        "suck",
        "sucks",
        "swinger",
        "taste my",
        "tainted love",
        "tied up",
        "tight white",
        "tongue in a",
        "topless",
        "twinkie",
        "undressing",
        "vagina",
        "voyeur",
        "vulva",
        "xx",
        "girl on",
        "big black",
        "blonde action",
        "brunette action",
        "birdlock",
        "booty call",
        "bondage",
        "boner",
        "boob",
        "boobs",
        "busty",
        "camgirl",
        "pissed",
        "pissing",
        "poof",
        "rape",
        "raping",
        "rapist",
        "dumb",
        "stupid",
        "jerk",
        "crap",
        "crappy",
        "porn",
        "porno",
        "horny",
        "tits",
        "moot",
        "idiot",
        "moron",
        "piss",
        "bugger",
        "condo",
        "rando",
        "swastika",
        "white power",
        "neonazi",
        "ejaculation",
        "masturbate",
        "clitoris",
        "urethra play",
        "menage a trois",
        "strip club",
        "hooker",
        "kinky",
        "smut",
        "wtf",
        "🖕",
        "testbad01",
        "cum",
        # Hindi "chhoot" (missed, a discount) is written "chut" as often as the vulgar word; phrases stay.
        "chut",
        # Entries that normalise to ordinary words or strings ("xxx" squeezes to "xx"; "s&m" to "sm").
        "xxx",
        "s&m",
        "hoe",
        "tit",
        # romanized Nepali / Hindi / Urdu that are ordinary words or names
        "bhalu",
        "khate",
        "khatey",
        "pakhe",
        "gula",
        "turi",
        "toori",
        "chaak",
        "kando",
        "kundo",
        "geda",
        "lado",
        "laado",
        "rande",
        "radi",
        "bajiya",
        "chod",
        "chodna",
        "sala",
        "saley",
        "sali",
        "saala",
        "gu",
        "paji",
        "bhate",
        "chhura",
        "torpe",
        "gobre",
        "gadha",
        "ullu",
        "kutta",
        "kutti",
        "sasto manche",
        "pesa garne",
        "gu khane",
        "gu khaa",
        "chakke",
        "chhakke",
        "chakka",
        "chhakka",
        "paki",
        "hijra",
        "hijda",
        "hijada",
        "maal",
        "pataka",
        "patakha",
        "najayaz",
        "suar",
        "hawas",
        "tatti",
        "tatte",
        "chinaal",
        "kamine",
        "gandako",
        # Devanagari ordinary words
        "भालु",
        "खाते",
        "पाखे",
        "गुला",
        "तुरी",
        "चाक",
        "गेडा",
        "लाडो",
        "साला",
        "साले",
        "साली",
        "गु",
        "पाजी",
        "मूत",
        "भाते",
        "छुरा",
        "गधा",
        "उल्लु",
        "उल्लू",
        "कुत्ता",
        "कुत्ती",
        "छक्का",
        "हिजडा",
        "थुक",
    }
)
# Slurs in the packages' lists (blocked, not held).
SLURS: frozenset[str] = frozenset(
    {
        "nigger",
        "niggers",
        "nigga",
        "niggas",
        "faggot",
        "faggots",
        "fag",
        "fags",
        "tranny",
        "kike",
        "spic",
        "chink",
        "beaner",
        "beaners",
        "coon",
        "coons",
        "darkie",
        "jigaboo",
        "jiggaboo",
        "raghead",
        "towelhead",
        "wetback",
        "slanteye",
        "honkey",
        "retard",
        "retarded",
        "chinki",
        "nig nog",
    }
)
MILD_LABEL = "insult"


def _nnp_language(language: str, text: str) -> str:
    if language == "english":
        return "en"
    return "ne"


def nepali_entries() -> Iterator[Entry]:
    """Words and phrases of ``no-nepali-profanity`` (lenient → profanity, standard → insult)."""
    from no_nepali_profanity import lexicon

    for table in (lexicon.WORDS, lexicon.PHRASES):
        for entry in table:
            text = entry.text
            if entry.strictness == "strict" or text in EXCLUDED:
                continue
            label = "slur" if text in SLURS else ("profanity" if entry.strictness == "lenient" else MILD_LABEL)
            yield text, label, _nnp_language(entry.language, text)


def nepali_stems() -> Iterator[str]:
    """Stems that may match as word prefixes (``machikney``, ``chutiyapa``); the short or ambiguous ones are not."""
    from no_nepali_profanity import lexicon

    for entry in lexicon.STEMS:
        if entry.strictness == "lenient" and entry.text not in EXCLUDED and len(entry.text) >= 4:
            yield entry.text


def nepali_allowed() -> Iterator[str]:
    from no_nepali_profanity import lexicon

    yield from lexicon.ALLOWED


def suffixes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Postpositions glued onto words: (Latin, Devanagari), longest first."""
    from no_nepali_profanity import lexicon

    latin = tuple(sorted(lexicon.LATIN_SUFFIXES, key=len, reverse=True))
    deva = tuple(sorted(lexicon.DEVANAGARI_SUFFIXES, key=len, reverse=True))
    return latin, deva


def _glin(name: str) -> list[str]:
    data = resources.files("glin_profanity.data").joinpath("dictionaries", f"{name}.json").read_text("utf-8")
    words: list[str] = json.loads(data)["words"]
    return words


def glin_entries() -> Iterator[Entry]:
    """English and romanized Hindi words and phrases of ``glin-profanity``."""
    for name, language in (("english", "en"), ("hindi", "hi")):
        for text in _glin(name):
            word = text.strip().lower()
            if not word or word in EXCLUDED or not any(ch.isalpha() for ch in word):
                continue
            yield word, ("slur" if word in SLURS else "profanity"), language


def glin_allowed() -> Iterator[str]:
    data = resources.files("glin_profanity.data").joinpath("dictionaries", "globalWhitelist.json").read_text("utf-8")
    for word in json.loads(data)["whitelist"]:
        yield str(word).lower()
