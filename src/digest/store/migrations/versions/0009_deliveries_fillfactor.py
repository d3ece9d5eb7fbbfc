"""room on deliveries' pages for the lease updates

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Claiming a delivery (and renewing its lease) changes only lease_until, which no index
    # holds: with free space on the row's page PostgreSQL makes that a heap-only update and
    # writes no index entries. Planning fills pages to 100 % by default, so every claim
    # wrote a new entry in each of the table's six indexes. Applies to pages written from
    # now on; SQLite has no such setting.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deliveries SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deliveries RESET (fillfactor)")
