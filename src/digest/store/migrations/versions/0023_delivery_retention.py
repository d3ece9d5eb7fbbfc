"""deliveries get planned_month (the month their edition was planned in) and, on PostgreSQL,
are partitioned by it; reader_delivery_summaries and delivery_compactions keep what
retention compacts (digest.delivery.retention)

Revision ID: 0023
Revises: 0019
Create Date: 2026-12-02
"""
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

from digest.store.partitions import partition_deliveries, unpartition_deliveries

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
# A row's month when the column did not exist: its edition's (every row of an edition the same).
_MONTH_OF_EDITION_SQLITE = (
    "(SELECT coalesce(strftime('%Y-%m-01', e.started_at), strftime('%Y-%m-01', e.send_at), "
    "strftime('%Y-%m-01', e.created_at)) FROM editions e WHERE e.id = deliveries.edition_id)")


def upgrade() -> None:
    op.create_table(
        'reader_delivery_summaries',
        sa.Column('subscriber_id', BigId, nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('sent', sa.Integer(), nullable=False),
        sa.Column('bounced', sa.Integer(), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.Column('skipped', sa.Integer(), nullable=False),
        sa.Column('editions', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('subscriber_id', 'month'),
    )
    op.create_table(
        'delivery_compactions',
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('editions', sa.Integer(), nullable=False),
        sa.Column('rows', sa.BigInteger(), nullable=False),
        sa.Column('compacted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('month'),
    )
    now = datetime.now(UTC)
    if op.get_bind().dialect.name == "postgresql":
        # Create the partitioned table, copy, swap, rebuild the indexes: in this migration's
        # transaction, so a failure leaves the old table as it was.
        partition_deliveries(op.get_bind(), date(now.year, now.month, 1))
        return
    # SQLite: no partitions; the column, filled, and the unique constraint that carries it
    # (the model's, which the planner's ON CONFLICT names). batch_alter_table copies the table.
    op.add_column('deliveries', sa.Column('planned_month', sa.Date(), nullable=True))
    op.execute(f"UPDATE deliveries SET planned_month = {_MONTH_OF_EDITION_SQLITE}")
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.alter_column('planned_month', existing_type=sa.Date(), nullable=False)
        batch_op.drop_constraint('uq_delivery_edition_subscriber', type_='unique')
        batch_op.create_unique_constraint('uq_delivery_edition_subscriber',
                                          ['edition_id', 'subscriber_id', 'planned_month'])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        unpartition_deliveries(op.get_bind())
        op.execute("ALTER TABLE deliveries DROP CONSTRAINT uq_delivery_edition_subscriber")
        op.execute("ALTER TABLE deliveries DROP COLUMN planned_month")
        op.execute("ALTER TABLE deliveries ADD CONSTRAINT uq_delivery_edition_subscriber "
                   "UNIQUE (edition_id, subscriber_id)")
    else:
        with op.batch_alter_table('deliveries', schema=None) as batch_op:
            batch_op.drop_constraint('uq_delivery_edition_subscriber', type_='unique')
            batch_op.create_unique_constraint('uq_delivery_edition_subscriber', ['edition_id', 'subscriber_id'])
            batch_op.drop_column('planned_month')
    op.drop_table('delivery_compactions')
    op.drop_table('reader_delivery_summaries')
