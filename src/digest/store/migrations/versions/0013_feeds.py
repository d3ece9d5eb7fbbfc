"""feeds and feed_items: feeds registered once and polled

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'feeds',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('url', sa.String(2048), nullable=False, unique=True),
        sa.Column('every_minutes', sa.Integer(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('paused_reason', sa.String(300), nullable=True),
        sa.Column('topics', sa.JSON(), nullable=False),
        sa.Column('category_topics', sa.JSON(), nullable=False),
        sa.Column('featured', sa.Boolean(), nullable=False),
        sa.Column('featured_categories', sa.JSON(), nullable=False),
        sa.Column('etag', sa.String(500), nullable=True),
        sa.Column('last_modified', sa.String(100), nullable=True),
        sa.Column('last_fetched_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_status', sa.String(32), nullable=True),
        sa.Column('last_error', sa.String(500), nullable=True),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('next_poll_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('polling_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_feeds_next_poll_at', 'feeds', ['next_poll_at'])
    op.create_table(
        'feed_items',
        sa.Column('feed_id', BigId, sa.ForeignKey('feeds.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('guid', sa.String(2048), primary_key=True),
        sa.Column('story_id', BigId, sa.ForeignKey('stories.id', ondelete='CASCADE'), nullable=False),
        sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_feed_items_story_id', 'feed_items', ['story_id'])


def downgrade() -> None:
    op.drop_index('ix_feed_items_story_id', table_name='feed_items')
    op.drop_table('feed_items')
    op.drop_index('ix_feeds_next_poll_at', table_name='feeds')
    op.drop_table('feeds')
