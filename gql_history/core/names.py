"""Names every layer shares, free to import (the command line's ``--help``
shows them before anything else loads)."""

from __future__ import annotations

#: The table aio-fluid's TaskDbPlugin stores runs in, and so do we by default.
DEFAULT_TABLE_NAME = "fluid_tasks"
