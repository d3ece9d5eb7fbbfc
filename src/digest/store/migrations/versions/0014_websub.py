"""feeds: WebSub subscriptions (hub, topic, state, secret, lease)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

COLUMNS = (('hub_url', sa.String(2048)), ('hub_topic', sa.String(2048)), ('hub_state', sa.String(16)),
           ('hub_secret', sa.String(128)), ('hub_lease_until', sa.DateTime(timezone=True)),
           ('hub_requested_at', sa.DateTime(timezone=True)), ('hub_error', sa.String(500)))


def upgrade() -> None:
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        for name, kind in COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
