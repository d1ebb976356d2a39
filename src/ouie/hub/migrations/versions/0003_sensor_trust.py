"""Sensor identity and message authenticity (issue 18): each sensor's signing key and
certificate fingerprint, the last accepted status time (replays), refusals per sensor

Revision ID: 0003_sensor_trust
Revises: 0002_hardening
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ouie.hub.db

revision = "0003_sensor_trust"
down_revision = "0002_hardening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sensors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signing_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("cert_fingerprint", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("last_status_at", ouie.hub.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "sensor_rejections",
        sa.Column("sensor_pk", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_at", ouie.hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", ouie.hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_detail", sa.String(length=300), nullable=False),
        sa.Column("audited_at", ouie.hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("audited_count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["sensor_pk"], ["sensors.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sensor_pk", "reason"),
    )


def downgrade() -> None:
    op.drop_table("sensor_rejections")
    with op.batch_alter_table("sensors", schema=None) as batch_op:
        batch_op.drop_column("last_status_at")
        batch_op.drop_column("cert_fingerprint")
        batch_op.drop_column("signing_key")
