"""edition_tallies: a sent edition's deliveries by status, counted when it finished, so the
dashboards and /metrics stop counting old rows on every look; filled here for the editions
already sent

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'edition_tallies',
        sa.Column('edition_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('sent', sa.Integer(), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.Column('bounced', sa.Integer(), nullable=False),
        sa.Column('skipped', sa.Integer(), nullable=False),
        sa.Column('queued', sa.Integer(), nullable=False),
        sa.Column('counted_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['edition_id'], ['editions.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('edition_id'),
    )
    op.execute(
        "INSERT INTO edition_tallies (edition_id, sent, failed, bounced, skipped, queued, counted_at) "
        "SELECT e.id, "
        "  (SELECT count(*) FROM deliveries d WHERE d.edition_id = e.id AND d.status = 'sent'), "
        "  (SELECT count(*) FROM deliveries d WHERE d.edition_id = e.id AND d.status = 'failed'), "
        "  (SELECT count(*) FROM deliveries d WHERE d.edition_id = e.id AND d.status = 'bounced'), "
        "  (SELECT count(*) FROM deliveries d WHERE d.edition_id = e.id AND d.status = 'skipped'), "
        "  (SELECT count(*) FROM deliveries d WHERE d.edition_id = e.id AND d.status = 'queued'), "
        "  CURRENT_TIMESTAMP "
        "FROM editions e WHERE e.status = 'sent'")


def downgrade() -> None:
    op.drop_table('edition_tallies')
