"""deliveries: the reader index also orders by sent_at, so a reader's recent deliveries are
read without touching their older ones (per-reader dedupe stays flat as history grows)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # (subscriber_id, sent_at) serves every lookup by reader the old index served.
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_subscriber_sent', ['subscriber_id', 'sent_at'], unique=False)
        batch_op.drop_index('ix_deliveries_subscriber')


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_subscriber', ['subscriber_id'], unique=False)
        batch_op.drop_index('ix_deliveries_subscriber_sent')
