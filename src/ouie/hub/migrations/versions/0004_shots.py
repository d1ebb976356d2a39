"""Every shot located (issue 17): the shots of each incident with their own fix or area,
the incident's round counts and best shot, each detection's shot

Revision ID: 0004_shots
Revises: 0003_sensor_trust
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ouie.hub.db

revision = "0004_shots"
down_revision = "0003_sensor_trust"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shots",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("time", ouie.hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_onset", ouie.hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_onset", ouie.hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=False),
        sa.Column("ellipse_major_m", sa.Float(), nullable=True),
        sa.Column("ellipse_minor_m", sa.Float(), nullable=True),
        sa.Column("ellipse_angle_deg", sa.Float(), nullable=True),
        sa.Column("residual_rms_m", sa.Float(), nullable=True),
        sa.Column("sensor_count", sa.Integer(), nullable=False),
        sa.Column("detection_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "number", name="uq_shots_incident_number"),
    )
    with op.batch_alter_table("shots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shots_incident_id"), ["incident_id"], unique=False)
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rounds", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("located_rounds", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("best_shot", sa.Integer(), nullable=True))
    with op.batch_alter_table("detections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shot_number", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("detections", schema=None) as batch_op:
        batch_op.drop_column("shot_number")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("best_shot")
        batch_op.drop_column("located_rounds")
        batch_op.drop_column("rounds")
    with op.batch_alter_table("shots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shots_incident_id"))
    op.drop_table("shots")
