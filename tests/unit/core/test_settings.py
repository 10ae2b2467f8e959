from __future__ import annotations

import pytest

from gql_history.core import settings as config
from tests.servers import SERVICE_VARIABLES


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without any database or Redis setting."""
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_config_is_unset_without_flags_or_environment(
    env: pytest.MonkeyPatch,
) -> None:
    assert (config.database_url(), config.redis_url()) == (None, None)


def test_config_prefers_ours_to_aio_fluids_variables(env: pytest.MonkeyPatch) -> None:
    found = []
    env.setenv("DATABASE", "postgresql://fluid@h/db")
    env.setenv("REDIS_DEFAULT_URL", "redis://default")
    found.append((config.database_url(), config.redis_url()))
    env.setenv("FLUID_BROKER_URL", "redis://broker")
    found.append((config.database_url(), config.redis_url()))
    env.setenv("DATABASE_URL", "postgresql://ours@h/db")
    env.setenv("REDIS_URL", "redis://ours")
    found.append((config.database_url(), config.redis_url()))
    assert found == [
        ("postgresql://fluid@h/db", "redis://default"),
        ("postgresql://fluid@h/db", "redis://broker"),
        ("postgresql://ours@h/db", "redis://ours"),
    ]


def test_config_flags_win_over_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("DATABASE_URL", "postgresql://ours@h/db")
    env.setenv("REDIS_URL", "redis://ours")
    assert (
        config.database_url("postgresql://flag@h/db"),
        config.redis_url("redis://flag"),
    ) == (
        "postgresql://flag@h/db",
        "redis://flag",
    )
