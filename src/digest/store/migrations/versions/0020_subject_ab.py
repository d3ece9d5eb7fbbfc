"""Subject A/B tests: ab_tests (one per edition that tests a second subject) and
deliveries.variant, the subject each copy carried (0 for editions without a test; NULL
while a copy waits for the test's decision)

Revision ID: 0020_subject_ab
Revises: 0019
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ab_tests',
        sa.Column('edition_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('alternative', sa.String(length=300), nullable=False),
        sa.Column('share', sa.Integer(), nullable=False),
        sa.Column('wait_minutes', sa.Integer(), nullable=False),
        sa.Column('test_size', sa.Integer(), nullable=False),
        sa.Column('decide_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('winner_variant', sa.Integer(), nullable=True),
        sa.Column('reason_code', sa.String(length=32), nullable=True),
        sa.Column('reason', sa.String(length=500), nullable=True),
        sa.Column('sent_1', sa.Integer(), nullable=False),
        sa.Column('sent_2', sa.Integer(), nullable=False),
        sa.Column('clicks_1', sa.Integer(), nullable=False),
        sa.Column('clicks_2', sa.Integer(), nullable=False),
        sa.Column('unique_1', sa.Integer(), nullable=False),
        sa.Column('unique_2', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['edition_id'], ['editions.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('edition_id'),
    )
    op.create_index('ix_ab_tests_decide_at', 'ab_tests', ['decide_at'])
    # A constant default: PostgreSQL (11+) adds it without rewriting the table.
    op.add_column('deliveries', sa.Column('variant', sa.Integer(), nullable=True, server_default=sa.text('0')))


def downgrade() -> None:
    with op.batch_alter_table('deliveries') as batch:
        batch.drop_column('variant')
    op.drop_index('ix_ab_tests_decide_at', table_name='ab_tests')
    op.drop_table('ab_tests')
