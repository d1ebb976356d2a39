"""Impulse onsets that sensors report on the hub's request, to locate shots too few sensors
classified (issue 17: onsets on request), and each shot's count of sensors that gave one

Revision ID: 0006_impulse_onsets
Revises: 0005_sequence_window
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ouie.hub.db

revision = "0006_impulse_onsets"
down_revision = "0005_sequence_window"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "impulse_onsets",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("sensor_pk", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("sensor_id", sa.String(length=64), nullable=False),
        sa.Column("onset", ouie.hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("level_dbfs", sa.Float(), nullable=False),
        sa.Column("prominence_db", sa.Float(), nullable=False),
        sa.Column("received_at", ouie.hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("incident_id", sa.String(length=32), nullable=True),
        sa.Column("shot_number", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["sensor_pk"], ["sensors.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    with op.batch_alter_table("impulse_onsets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_impulse_onsets_incident_id"), ["incident_id"], unique=False
        )
        batch_op.create_index("ix_impulse_onsets_site_onset", ["site", "onset"], unique=False)
    with op.batch_alter_table("shots", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("onset_sensor_count", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("shots", schema=None) as batch_op:
        batch_op.drop_column("onset_sensor_count")
    with op.batch_alter_table("impulse_onsets", schema=None) as batch_op:
        batch_op.drop_index("ix_impulse_onsets_site_onset")
        batch_op.drop_index(batch_op.f("ix_impulse_onsets_incident_id"))
    op.drop_table("impulse_onsets")
