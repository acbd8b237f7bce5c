"""gift tally per stream, sender and hour, for thrones

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import halobuzz.core.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    tally = op.create_table(
        "gift_tally",
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("sender_id", sa.Uuid(), nullable=False),
        sa.Column("hour", halobuzz.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("coins", sa.BigInteger(), nullable=False),
        sa.Column("last_at", halobuzz.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["user.id"], name=op.f("fk_gift_tally_sender_id_user"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["stream_id"], ["stream.id"], name=op.f("fk_gift_tally_stream_id_stream"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("stream_id", "sender_id", "hour", name=op.f("pk_gift_tally")),
    )
    op.create_index("ix_gift_tally_stream_id_hour", "gift_tally", ["stream_id", "hour"], unique=False)
    # The gifts sent so far, summed in Python (the same on SQLite and PostgreSQL).
    gifts = sa.table(
        "gift_sent",
        sa.column("stream_id", sa.Uuid()),
        sa.column("sender_id", sa.Uuid()),
        sa.column("coins", sa.BigInteger()),
        sa.column("created_at", halobuzz.core.db.UTCDateTime(timezone=True)),
    )
    sums: dict[tuple[Any, Any, datetime], list[Any]] = {}
    rows = op.get_bind().execute(sa.select(gifts.c.stream_id, gifts.c.sender_id, gifts.c.coins, gifts.c.created_at))
    for stream_id, sender_id, coins, at in rows:
        entry = sums.setdefault((stream_id, sender_id, at.replace(minute=0, second=0, microsecond=0)), [0, at])
        entry[0] += int(coins)
        entry[1] = max(entry[1], at)
    values = [
        {"stream_id": s, "sender_id": u, "hour": h, "coins": total, "last_at": last}
        for (s, u, h), (total, last) in sums.items()
    ]
    for start in range(0, len(values), BATCH):
        op.bulk_insert(tally, values[start : start + BATCH])


def downgrade() -> None:
    op.drop_index("ix_gift_tally_stream_id_hour", table_name="gift_tally")
    op.drop_table("gift_tally")
