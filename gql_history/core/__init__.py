"""Pure Python: run records, filters, orders and pages, cursors, statistics
windows, limits and settings. No SQLAlchemy, Strawberry or FastAPI here.

Import from the modules themselves: this package imports none of them, so
that ``core.names`` costs nothing to the command line's start."""
