"""per-reader story history and send-time pulls

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('edition_stories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pulled_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('pulled_reason', sa.String(length=200), nullable=True))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('story_ids', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('story_ids')
    with op.batch_alter_table('edition_stories', schema=None) as batch_op:
        batch_op.drop_column('pulled_reason')
        batch_op.drop_column('pulled_at')
