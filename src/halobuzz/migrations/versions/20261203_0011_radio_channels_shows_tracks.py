"""radio channels, shows, tracks

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import halobuzz.core.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "radio_channel",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("deleted_at", halobuzz.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", halobuzz.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["user.id"], name=op.f("fk_radio_channel_owner_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_radio_channel")),
    )
    op.create_index("ix_radio_channel_owner_id", "radio_channel", ["owner_id"], unique=False)
    op.create_table(
        "radio_track",
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=140), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("storage_prefix", sa.String(length=200), nullable=False),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.Column("renditions", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", halobuzz.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["radio_channel.id"],
            name=op.f("fk_radio_track_channel_id_radio_channel"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_radio_track")),
    )
    op.create_index("ix_radio_track_channel_id_position", "radio_track", ["channel_id", "position"], unique=False)
    op.create_table(
        "radio_show",
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=140), nullable=False),
        sa.Column("host_id", sa.Uuid(), nullable=False),
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("start_minute", sa.Integer(), nullable=True),
        sa.Column("starts_at", halobuzz.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", halobuzz.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["radio_channel.id"],
            name=op.f("fk_radio_show_channel_id_radio_channel"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["host_id"], ["user.id"], name=op.f("fk_radio_show_host_id_user"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["stream_id"], ["stream.id"], name=op.f("fk_radio_show_stream_id_stream"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_radio_show")),
    )
    op.create_index("ix_radio_show_channel_id", "radio_show", ["channel_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_radio_show_channel_id", table_name="radio_show")
    op.drop_table("radio_show")
    op.drop_index("ix_radio_track_channel_id_position", table_name="radio_track")
    op.drop_table("radio_track")
    op.drop_index("ix_radio_channel_owner_id", table_name="radio_channel")
    op.drop_table("radio_channel")
