"""newsletters sent by stories: trigger_stories, trigger_every_minutes, trigger_hold_minutes;
cron optional (a trigger-only newsletter); editions.story_triggered

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        # N new qualifying stories make an edition; NULL: no story trigger.
        batch_op.add_column(sa.Column('trigger_stories', sa.Integer(), nullable=True))
        # M: at most one story-triggered edition in this many minutes.
        batch_op.add_column(sa.Column('trigger_every_minutes', sa.Integer(), nullable=False, server_default='60'))
        # K: a triggered edition goes this long after it is made (an editor may curate it).
        batch_op.add_column(sa.Column('trigger_hold_minutes', sa.Integer(), nullable=False, server_default='0'))
        # A newsletter sent only by its stories has no schedule.
        batch_op.alter_column('cron', existing_type=sa.String(100), nullable=True)
    with op.batch_alter_table('editions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('story_triggered', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('editions', schema=None) as batch_op:
        batch_op.drop_column('story_triggered')
    newsletters = sa.table('newsletters', sa.column('cron', sa.String), sa.column('active', sa.Boolean))
    # A trigger-only newsletter has no schedule to go back to: it is paused, with a yearly
    # one for an editor to replace before resuming it.
    op.execute(newsletters.update().where(newsletters.c.cron.is_(None)).values(cron='0 7 1 1 *', active=False))
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        batch_op.alter_column('cron', existing_type=sa.String(100), nullable=False)
        batch_op.drop_column('trigger_hold_minutes')
        batch_op.drop_column('trigger_every_minutes')
        batch_op.drop_column('trigger_stories')
