"""clicks: click_counts, click_uniques, click_flushes (numbers only, no reader identity);
newsletters.utm_tags

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('utm_tags', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        'click_counts',
        sa.Column('edition_id', BigId, sa.ForeignKey('editions.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('story_id', BigId, primary_key=True),
        sa.Column('variant', sa.Integer(), primary_key=True),
        sa.Column('clicks', sa.Integer(), nullable=False),
        sa.Column('machine_clicks', sa.Integer(), nullable=False),
    )
    op.create_table(
        'click_uniques',
        sa.Column('edition_id', BigId, sa.ForeignKey('editions.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('story_id', BigId, primary_key=True),
        sa.Column('variant', sa.Integer(), primary_key=True),
        sa.Column('unique_clicks', sa.Integer(), nullable=False),
    )
    op.create_table(
        'click_flushes',
        sa.Column('id', sa.String(32), primary_key=True),
        sa.Column('flushed_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_click_flushes_flushed_at', 'click_flushes', ['flushed_at'])


def downgrade() -> None:
    op.drop_index('ix_click_flushes_flushed_at', table_name='click_flushes')
    op.drop_table('click_flushes')
    op.drop_table('click_uniques')
    op.drop_table('click_counts')
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        batch_op.drop_column('utm_tags')
