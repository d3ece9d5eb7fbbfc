"""click history (opt-in) and the open pixel (opt-in): newsletters.click_history and
newsletters.open_pixel (both off), click_history_consents, click_history, open_counts

Revision ID: 0022
Revises: 0019
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('click_history', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('open_pixel', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        'click_history_consents',
        sa.Column('subscriber_id', BigId, sa.ForeignKey('subscribers.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('newsletter_id', BigId, sa.ForeignKey('newsletters.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('given_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_click_history_consents_newsletter_id', 'click_history_consents', ['newsletter_id'])
    op.create_table(
        'click_history',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('subscriber_id', BigId, sa.ForeignKey('subscribers.id', ondelete='CASCADE'), nullable=False),
        sa.Column('edition_id', BigId, sa.ForeignKey('editions.id', ondelete='CASCADE'), nullable=False),
        sa.Column('story_id', BigId, nullable=False),
        sa.Column('clicked_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('subscriber_id', 'edition_id', 'story_id', 'clicked_at'),
    )
    op.create_index('ix_click_history_subscriber_id', 'click_history', ['subscriber_id'])
    op.create_index('ix_click_history_edition_id', 'click_history', ['edition_id'])
    op.create_table(
        'open_counts',
        sa.Column('edition_id', BigId, sa.ForeignKey('editions.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('variant', sa.Integer(), primary_key=True),
        sa.Column('opens', sa.Integer(), nullable=False),
        sa.Column('unique_opens', sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('open_counts')
    op.drop_index('ix_click_history_edition_id', table_name='click_history')
    op.drop_index('ix_click_history_subscriber_id', table_name='click_history')
    op.drop_table('click_history')
    op.drop_index('ix_click_history_consents_newsletter_id', table_name='click_history_consents')
    op.drop_table('click_history_consents')
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        batch_op.drop_column('open_pixel')
        batch_op.drop_column('click_history')
