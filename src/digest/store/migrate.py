"""Alembic, driven from code so `digest init` works from any folder."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

from digest.store.engine import get_engine


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "digest:migrations")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(engine: Engine | None = None) -> str:
    """Bring the schema to head; safe to run any number of times. Returns the head revision."""
    engine = engine or get_engine()
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()


def is_initialised(engine: Engine | None = None) -> bool:
    return inspect(engine or get_engine()).has_table("alembic_version")
