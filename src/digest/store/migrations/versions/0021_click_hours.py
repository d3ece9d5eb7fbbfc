"""click_hours: an edition's clicks per hour (people and machines, numbers only);
newsletters.engagement_order

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('engagement_order', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        'click_hours',
        sa.Column('edition_id', BigId, sa.ForeignKey('editions.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('hour', sa.DateTime(timezone=True), primary_key=True),
        sa.Column('clicks', sa.Integer(), nullable=False),
        sa.Column('machine_clicks', sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('click_hours')
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        batch_op.drop_column('engagement_order')
