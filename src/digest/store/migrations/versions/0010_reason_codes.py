"""reasons as codes: editions.status_code, deliveries.error_code, notices.error_code;
audit_log.via

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# The codes existing rows get, read once from the words the code wrote until now. From
# here on the code is written beside the words and programs read only the code.
EDITION_CODES = """
UPDATE editions SET status_code = CASE
  WHEN status_reason LIKE 'too thin%' THEN 'too_thin'
  WHEN status_reason LIKE 'missed%' THEN 'missed'
  WHEN status_reason LIKE 'auto-paused%' THEN 'auto_paused'
  WHEN status_reason LIKE 'retrying failed%' THEN 'retrying_failed'
  WHEN status_reason LIKE 'sending to the missing%' THEN 'sending_missing'
  WHEN status = 'cancelled' THEN 'cancelled'
  WHEN status = 'paused' THEN 'paused'
END
WHERE status_reason IS NOT NULL OR status IN ('cancelled', 'paused')
"""
DELIVERY_CODES = """
UPDATE {table} SET error_code = CASE
  WHEN last_error = 'edition cancelled' THEN 'edition_cancelled'
  WHEN last_error = 'reader no longer subscribed' OR last_error LIKE 'reader is %' THEN 'reader_left'
  WHEN last_error = 'suppressed' THEN 'suppressed'
  WHEN last_error LIKE 'nothing new%' THEN 'nothing_new'
  WHEN last_error LIKE 'soft bounce%' THEN 'soft_bounce'
  WHEN last_error LIKE 'hard bounce%' OR status = 'bounced' THEN 'hard_bounce'
  ELSE 'transient'
END
WHERE last_error IS NOT NULL
"""


def upgrade() -> None:
    with op.batch_alter_table('editions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_code', sa.String(length=32), nullable=True))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_code', sa.String(length=32), nullable=True))
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_code', sa.String(length=32), nullable=True))
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('via', sa.String(length=16), nullable=True))
    op.execute(EDITION_CODES)
    op.execute(DELIVERY_CODES.format(table="deliveries"))
    op.execute(DELIVERY_CODES.format(table="notices"))
    # The command line wrote its audit rows as "system" with {"via": "cli"} in the detail.
    op.execute("UPDATE audit_log SET via = 'cli' WHERE actor = 'system'")


def downgrade() -> None:
    for table, column in (('audit_log', 'via'), ('notices', 'error_code'), ('deliveries', 'error_code'),
                          ('editions', 'status_code')):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)
