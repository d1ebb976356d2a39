"""API hardening and audit anchors (issue 18): token expiry and revocation, changes awaiting a
second admin, signed audit heads

Revision ID: 0002_hardening
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import ouie.hub.db

revision = "0002_hardening"
down_revision = "0001"
branch_labels = None
depends_on = None

#: tokens created before expiry existed get the default lifetime from their creation, but at
#: least a grace period from the upgrade, so integrations can be given new tokens in time
LEGACY_TOKEN_TTL = timedelta(days=90)
LEGACY_TOKEN_GRACE = timedelta(days=30)


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expires_at", ouie.hub.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("revoked_at", ouie.hub.db.UTCDateTime(timezone=True), nullable=True)
        )
    tokens = sa.table(
        "api_tokens",
        sa.column("id", sa.Integer()),
        sa.column("created_at", ouie.hub.db.UTCDateTime(timezone=True)),
        sa.column("expires_at", ouie.hub.db.UTCDateTime(timezone=True)),
    )
    connection = op.get_bind()
    grace_end = datetime.now(UTC) + LEGACY_TOKEN_GRACE
    rows = connection.execute(sa.select(tokens.c.id, tokens.c.created_at)).all()
    for token_id, created_at in rows:
        created = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
        connection.execute(
            sa.update(tokens)
            .where(tokens.c.id == token_id)
            .values(expires_at=max(created + LEGACY_TOKEN_TTL, grace_end))
        )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.alter_column(
            "expires_at", existing_type=ouie.hub.db.UTCDateTime(timezone=True), nullable=False
        )

    op.create_table(
        "user_change_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.Column("password_hash", sa.String(length=256), nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", ouie.hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", ouie.hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", ouie.hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("user_change_requests", schema=None) as batch_op:
        batch_op.create_index("ix_user_change_requests_state", ["state"], unique=False)

    op.create_table(
        "audit_anchors",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", ouie.hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_anchors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_anchors_seq"), ["seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_anchors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_anchors_seq"))
    op.drop_table("audit_anchors")
    with op.batch_alter_table("user_change_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_user_change_requests_state")
    op.drop_table("user_change_requests")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("expires_at")
