"""newsletters.archived_at and new_editions; the default subject without a doubled weekday

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# `{{ date }}` no longer names the weekday ("2 December 2026"), so a subject written as
# "{{ weekday }}, {{ date }}" stops reading "Wednesday, Wednesday 2 December". Newsletters
# that kept the old default keep their look: it now says the weekday itself.
OLD_DEFAULT = "{{ newsletter }}: {{ date }}"
NEW_DEFAULT = "{{ newsletter }}: {{ weekday }} {{ date }}"


def upgrade() -> None:
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))
        # What beat makes of each occurrence: a scheduled edition (goes unattended) or a
        # draft an editor curates and schedules.
        batch_op.add_column(sa.Column('new_editions', sa.String(16), nullable=False,
                                      server_default='scheduled'))
    newsletters = sa.table('newsletters', sa.column('subject_template', sa.String))
    op.execute(newsletters.update().where(newsletters.c.subject_template == OLD_DEFAULT)
               .values(subject_template=NEW_DEFAULT))


def downgrade() -> None:
    newsletters = sa.table('newsletters', sa.column('subject_template', sa.String))
    op.execute(newsletters.update().where(newsletters.c.subject_template == NEW_DEFAULT)
               .values(subject_template=OLD_DEFAULT))
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        batch_op.drop_column('new_editions')
        batch_op.drop_column('archived_at')
