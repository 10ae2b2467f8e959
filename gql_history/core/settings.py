"""Settings read from the environment: ours first, then aio-fluid's.

Read when asked, never at import time, so a test or a wrapper may set the
environment first.
"""

from __future__ import annotations

from fluid import settings as fluid_settings
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Used only when no secret is configured: cursors stay tamper-evident, and
#: forging one gains nothing, as every query's filters are applied again.
_FALLBACK_SECRET = "gql-history-cursor"


class HistorySettings(BaseSettings):
    """gql_history's environment variables."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    cursor_secret: str = Field(
        default="",
        validation_alias="GQL_HISTORY_CURSOR_SECRET",
        description="Key signing pagination cursors, the same on every replica",
    )
    compiled: bool = Field(
        default=True,
        validation_alias="GQL_HISTORY_COMPILED",
        description=(
            "Answer the GraphQL queries the compiler covers with one SQL "
            "statement returning their JSON (off: Strawberry executes them all)"
        ),
    )
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


def default_cursor_secret() -> str:
    """``GQL_HISTORY_CURSOR_SECRET``, else aio-fluid's ``PAGINATION_SECRET``."""
    return (
        HistorySettings().cursor_secret
        or fluid_settings.PAGINATION_SECRET
        or _FALLBACK_SECRET
    )


def compiled_reads() -> bool:
    """``GQL_HISTORY_COMPILED``: whether GraphQL reads are compiled to SQL."""
    return HistorySettings().compiled


def database_url(flag: str | None = None) -> str | None:
    """``--database-url``, ``DATABASE_URL`` or ``DATABASE``; None when none is set."""
    return flag or HistorySettings().database_url or None


def redis_url(flag: str | None = None) -> str | None:
    """``--redis-url``, ``REDIS_URL``, aio-fluid's broker URL or
    ``REDIS_DEFAULT_URL``; None when none is set."""
    if flag:
        return flag
    ours = HistorySettings()
    broker = _FluidBrokerSettings(_env_prefix=fluid_settings.ENV_PREFIX)
    return ours.redis_url or broker.broker_url or ours.redis_default_url or None
