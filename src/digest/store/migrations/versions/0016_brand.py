"""newsletters' brand (logo, colours, font, footer, reply-to, language); stories' image size

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

BRAND_COLUMNS = (
    ('brand_logo_url', sa.String(2048)),
    ('brand_logo_width', sa.Integer()),
    ('brand_accent_color', sa.String(7)),
    ('brand_link_color', sa.String(7)),
    ('brand_font', sa.String(32)),
    ('brand_footer_text', sa.String(500)),
    ('brand_reply_to', sa.String(320)),
    ('brand_language', sa.String(35)),
)


def upgrade() -> None:
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        for name, kind in BRAND_COLUMNS:  # all NULL: the default look, as before
            batch_op.add_column(sa.Column(name, kind, nullable=True))
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image_width', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('image_height', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.drop_column('image_height')
        batch_op.drop_column('image_width')
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        for name, _ in reversed(BRAND_COLUMNS):
            batch_op.drop_column(name)
