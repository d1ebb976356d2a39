"""Late events of a keyed sensor (issue 18): which sequences below the last stored one were
stored, so a message resent after later ones is stored once and a replay still refused

Revision ID: 0005_sequence_window
Revises: 0004_shots
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_sequence_window"
down_revision = "0004_shots"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sensors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sequence_seen", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sensors", schema=None) as batch_op:
        batch_op.drop_column("sequence_seen")
