"""Which PostgreSQL and Redis the command line uses: a flag, else our
environment variables, else aio-fluid's. Read when a command runs, never at
import time, so a test or a wrapper may set the environment first."""

from __future__ import annotations

from fluid import settings as fluid_settings
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommandSettings(BaseSettings):
    """The environment variables of the ``gql-history`` command."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "DATABASE"),
        description="PostgreSQL URL: ours, else aio-fluid's `DATABASE`",
    )
    redis_url: str = Field(
        default="",
        validation_alias="REDIS_URL",
        description="Redis URL of the task broker (the demo only)",
    )
    redis_default_url: str = Field(
        default="",
        validation_alias="REDIS_DEFAULT_URL",
        description="aio-fluid's Redis URL, used after its broker URL",
    )


class _FluidBrokerSettings(BaseSettings):
    """aio-fluid's broker URL, under aio-fluid's own prefix (``FLUID_``)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    broker_url: str = ""


def database_url(flag: str | None = None) -> str | None:
    """``--database-url``, ``DATABASE_URL`` or ``DATABASE``; None when none is set."""
    return flag or CommandSettings().database_url or None


def redis_url(flag: str | None = None) -> str | None:
    """``--redis-url``, ``REDIS_URL``, aio-fluid's broker URL or
    ``REDIS_DEFAULT_URL``; None when none is set."""
    if flag:
        return flag
    ours = CommandSettings()
    broker = _FluidBrokerSettings(_env_prefix=fluid_settings.ENV_PREFIX)
    return ours.redis_url or broker.broker_url or ours.redis_default_url or None
