"""delivery at each reader's local time

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timezone', sa.String(length=64), nullable=True))
    with op.batch_alter_table('editions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('local_time', sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column('local_date', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('local_zone', sa.String(length=64), nullable=True))
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('local_time', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        batch_op.drop_column('local_time')
    with op.batch_alter_table('editions', schema=None) as batch_op:
        batch_op.drop_column('local_zone')
        batch_op.drop_column('local_date')
        batch_op.drop_column('local_time')
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.drop_column('timezone')
