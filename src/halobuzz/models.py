"""Every table, imported in one place so metadata (Alembic, tests) sees them all."""

from halobuzz.accounts import models as accounts_models
from halobuzz.chat import models as chat_models
from halobuzz.core import audit
from halobuzz.core.db import Base
from halobuzz.economy import models as economy_models
from halobuzz.payments import models as payments_models
from halobuzz.streams import models as streams_models

__all__ = ["Base", "accounts_models", "audit", "chat_models", "economy_models", "payments_models", "streams_models"]
