"""partial index on queued deliveries by edition and id

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The claim, skip and retry queries ask for queued rows of one edition in an id range;
    # without this a large edition is scanned whole for every batch (quadratic in readers).
    op.create_index('ix_deliveries_queued_edition_id', 'deliveries', ['edition_id', 'id'], unique=False,
                    postgresql_where=sa.text("status = 'queued'"), sqlite_where=sa.text("status = 'queued'"))


def downgrade() -> None:
    op.drop_index('ix_deliveries_queued_edition_id', table_name='deliveries')
