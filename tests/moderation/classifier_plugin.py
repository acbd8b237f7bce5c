"""A real image classifier plugin for tests (MODERATION_IMAGE_CLASSIFIER): flags mostly-red images."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageStat


class RedClassifier:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.seen: list[str] = []

    async def classify(self, image: bytes, *, purpose: str) -> dict[str, float]:
        self.seen.append(purpose)
        with Image.open(io.BytesIO(image)) as img:
            r, g, b = ImageStat.Stat(img.convert("RGB")).mean
        return {"gore": 0.99 if r > 180 and g < 80 and b < 80 else 0.01}


def factory(settings: Any) -> RedClassifier:
    return RedClassifier(settings)
