"""users.must_change_password: one-time passwords must be replaced at the next sign-in

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    # Until now `digest users add` printed a password that nobody had to change. An account
    # that has never signed in can only hold that password (or one typed at the prompt):
    # its first sign-in sets a new one.
    op.execute("UPDATE users SET must_change_password = true WHERE last_login_at IS NULL")


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('must_change_password')
