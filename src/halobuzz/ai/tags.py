"""Automatic tags for streams from their title and description.

Words (English, Nepali, Hindi, Urdu; native scripts and romanized) point to topics of a fixed
taxonomy; a title word counts twice a description word. Hashtags (``#valorant``) become tags as
written. At most ``MAX_TAGS`` tags, strongest first.
"""

from __future__ import annotations

import re
import unicodedata

MAX_TAGS = 5
_WORD = re.compile(r"#?[^\W_]+(?:[\u0900-\u097f\u0610-\u061a\u064b-\u065f\u0670]+[^\W_]*)*")
_HASHTAG = re.compile(r"^#[a-z0-9][a-z0-9_-]{1,29}$")

TAXONOMY: dict[str, tuple[str, ...]] = {
    "music": (
        "music",
        "song",
        "songs",
        "singing",
        "sing",
        "concert",
        "guitar",
        "piano",
        "dj",
        "band",
        "karaoke",
        "gaana",
        "gana",
        "geet",
        "sangeet",
        "gaaun",
        "gaun",
        "गीत",
        "गाना",
        "संगीत",
        "गायन",
        "गाउँ",
        "گانا",
        "موسیقی",
        "گیت",
        "lofi",
        "rap",
        "ghazal",
        "غزل",
        "गजल",
        "qawwali",
        "قوالی",
    ),
    "gaming": (
        "game",
        "games",
        "gaming",
        "gameplay",
        "pubg",
        "bgmi",
        "freefire",
        "valorant",
        "minecraft",
        "fortnite",
        "gta",
        "esports",
        "ranked",
        "fps",
        "khel",
        "खेल",
        "गेम",
        "گیم",
        "speedrun",
    ),
    "cooking": (
        "cooking",
        "cook",
        "recipe",
        "recipes",
        "kitchen",
        "food",
        "baking",
        "momo",
        "momos",
        "biryani",
        "khana",
        "pakaune",
        "खाना",
        "पकाउने",
        "रेसिपी",
        "کھانا",
        "ترکیب",
        "بریانی",
    ),
    "sports": (
        "sports",
        "sport",
        "match",
        "football",
        "soccer",
        "cricket",
        "ipl",
        "npl",
        "psl",
        "volleyball",
        "tennis",
        "kabaddi",
        "क्रिकेट",
        "फुटबल",
        "फुटबॉल",
        "کرکٹ",
        "فٹبال",
    ),
    "talk": (
        "talk",
        "chat",
        "chatting",
        "podcast",
        "discussion",
        "gaff",
        "guff",
        "baat",
        "baatein",
        "kura",
        "गफ",
        "कुरा",
        "बातें",
        "बात",
        "گپ",
        "باتیں",
        "qna",
        "ama",
        "interview",
    ),
    "education": (
        "study",
        "studies",
        "learn",
        "learning",
        "lesson",
        "tutorial",
        "exam",
        "class",
        "maths",
        "math",
        "physics",
        "coding",
        "padhai",
        "padhne",
        "पढाइ",
        "पढ़ाई",
        "शिक्षा",
        "تعلیم",
        "پڑھائی",
        "loksewa",
    ),
    "news": ("news", "politics", "election", "samachar", "khabar", "समाचार", "खबर", "خبریں", "خبر", "debate"),
    "comedy": (
        "comedy",
        "funny",
        "jokes",
        "joke",
        "standup",
        "prank",
        "roast",
        "hasya",
        "हास्य",
        "कमेडी",
        "مزاح",
        "کامیڈی",
    ),
    "dance": ("dance", "dancing", "choreography", "naach", "nach", "नाच", "नृत्य", "ڈانس", "رقص"),
    "travel": (
        "travel",
        "trip",
        "trek",
        "trekking",
        "hiking",
        "vlog",
        "tour",
        "yatra",
        "ghumne",
        "यात्रा",
        "घुम्ने",
        "سفر",
        "himalaya",
        "everest",
        "pokhara",
    ),
    "tech": (
        "tech",
        "technology",
        "programming",
        "coding",
        "software",
        "ai",
        "crypto",
        "gadgets",
        "unboxing",
        "review",
        "phone",
        "laptop",
        "प्रविधि",
        "ٹیکنالوجی",
    ),
    "art": ("art", "drawing", "painting", "sketch", "design", "craft", "kala", "कला", "चित्र", "فن", "مصوری"),
    "fitness": ("fitness", "workout", "gym", "yoga", "exercise", "running", "योग", "व्यायाम", "ورزش", "یوگا"),
    "beauty": ("makeup", "beauty", "skincare", "fashion", "style", "mehendi", "mehndi", "मेहन्दी", "مہندی", "فیشن"),
    "spirituality": (
        "bhajan",
        "kirtan",
        "aarti",
        "puja",
        "prayer",
        "naat",
        "quran",
        "meditation",
        "भजन",
        "कीर्तन",
        "आरती",
        "पूजा",
        "نعت",
        "قرآن",
        "dhyan",
        "ध्यान",
    ),
    "festival": (
        "festival",
        "dashain",
        "tihar",
        "diwali",
        "deepawali",
        "holi",
        "eid",
        "ramadan",
        "ramzan",
        "teej",
        "chhath",
        "losar",
        "दशैं",
        "दशैँ",
        "तिहार",
        "दिवाली",
        "होली",
        "तीज",
        "छठ",
        "ल्होसार",
        "عید",
        "رمضان",
    ),
    "radio": ("radio", "fm", "rj", "रेडियो", "ریڈیو"),
}
_INDEX: dict[str, str] = {word: tag for tag, words in TAXONOMY.items() for word in words}


def _words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def suggest(title: str, description: str = "", *, limit: int = MAX_TAGS) -> list[str]:
    """Tags for a stream, strongest first: hashtags as written, then taxonomy topics."""
    scores: dict[str, float] = {}
    hashtags: list[str] = []
    for weight, text in ((2.0, title), (1.0, description)):
        for word in _words(text):
            if word.startswith("#"):
                if _HASHTAG.match(word) and word[1:] not in hashtags:
                    hashtags.append(word[1:])
                word = word[1:]
            tag = _INDEX.get(word)
            if tag is not None:
                scores[tag] = scores.get(tag, 0.0) + weight
    topics = sorted(scores, key=lambda t: (-scores[t], t))
    out: list[str] = []
    for tag in [*topics, *hashtags]:
        if tag not in out:
            out.append(tag)
    return out[:limit]
