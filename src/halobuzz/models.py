"""Every table, imported in one place so metadata (Alembic, tests) sees them all."""

from halobuzz.accounts import models as accounts_models
from halobuzz.ai import models as ai_models
from halobuzz.chat import models as chat_models
from halobuzz.core import audit
from halobuzz.core import events as events_models
from halobuzz.core.db import Base
from halobuzz.economy import fraud as fraud_models
from halobuzz.economy import models as economy_models
from halobuzz.economy import payouts_models
from halobuzz.jobs import analytics as analytics_models
from halobuzz.jobs import schedule as schedule_models
from halobuzz.kyc import models as kyc_models
from halobuzz.media import models as media_models
from halobuzz.moderation import models as moderation_models
from halobuzz.notifications import models as notifications_models
from halobuzz.payments import models as payments_models
from halobuzz.payments import refunds as refunds_models
from halobuzz.streams import models as streams_models
from halobuzz.webhooks import models as webhooks_models

__all__ = [
    "Base",
    "accounts_models",
    "ai_models",
    "analytics_models",
    "audit",
    "chat_models",
    "economy_models",
    "events_models",
    "fraud_models",
    "kyc_models",
    "media_models",
    "moderation_models",
    "notifications_models",
    "payments_models",
    "payouts_models",
    "refunds_models",
    "schedule_models",
    "streams_models",
    "webhooks_models",
]
