"""Settings read from the environment, lazily (never at import time)."""

from __future__ import annotations

import os

from fluid import settings as fluid_settings

#: Used only when no secret is configured: cursors stay tamper-evident, and
#: forging one gains nothing, as every query's filters are applied again.
_FALLBACK_SECRET = "gql-history-cursor"


def default_cursor_secret() -> str:
    """``GQL_HISTORY_CURSOR_SECRET``, else aio-fluid's ``PAGINATION_SECRET``."""
    return (
        os.environ.get("GQL_HISTORY_CURSOR_SECRET")
        or fluid_settings.PAGINATION_SECRET
        or _FALLBACK_SECRET
    )
