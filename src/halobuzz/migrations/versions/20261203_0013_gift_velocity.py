"""gift velocity per sender and 10-second slot

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

import halobuzz.core.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SLOT_SECONDS = 10


def upgrade() -> None:
    velocity = op.create_table(
        "gift_velocity",
        sa.Column("sender_id", sa.Uuid(), nullable=False),
        sa.Column("slot", halobuzz.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("gifts", sa.Integer(), nullable=False),
        sa.Column("coins", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["user.id"], name=op.f("fk_gift_velocity_sender_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sender_id", "slot", name=op.f("pk_gift_velocity")),
    )
    # The gifts of the last slots, so the caps count them across the upgrade.
    gifts = sa.table(
        "gift_sent",
        sa.column("sender_id", sa.Uuid()),
        sa.column("coins", sa.BigInteger()),
        sa.column("created_at", halobuzz.core.db.UTCDateTime(timezone=True)),
    )
    since = datetime.now(UTC) - timedelta(minutes=2)
    sums: dict[tuple[Any, datetime], list[int]] = {}
    rows = op.get_bind().execute(
        sa.select(gifts.c.sender_id, gifts.c.coins, gifts.c.created_at).where(gifts.c.created_at >= since)
    )
    for sender_id, coins, at in rows:
        slot = at.replace(second=at.second - at.second % SLOT_SECONDS, microsecond=0)
        entry = sums.setdefault((sender_id, slot), [0, 0])
        entry[0] += 1
        entry[1] += int(coins)
    if sums:
        op.bulk_insert(
            velocity,
            [{"sender_id": u, "slot": s, "gifts": n, "coins": c} for (u, s), (n, c) in sums.items()],
        )


def downgrade() -> None:
    op.drop_table("gift_velocity")
