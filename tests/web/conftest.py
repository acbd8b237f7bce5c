from __future__ import annotations

import pytest

from halobuzz.app import HaloBuzzApp
from halobuzz.economy.service import ensure_default_catalog


@pytest.fixture(autouse=True)
async def catalog(app: HaloBuzzApp) -> None:
    """The default coin packages and gifts, as ``halobuzz seed`` creates them."""
    async with app.runtime.db.session() as session:
        await ensure_default_catalog(session)
