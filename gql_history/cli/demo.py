"""The demo: the example tasks run under an aio-fluid TaskScheduler that
records their history, served with GraphiQL.

PostgreSQL and Redis are embedded ones under ``data_dir`` unless URLs are
configured: the demo never picks up a server merely because one answers on
the usual port, so it behaves the same on a bare machine and a busy one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.names import DEFAULT_TABLE_NAME
from ..web.pages import DEFAULT_QUERY
from . import demo_tasks
from .serve import (
    check_database,
    check_redis,
    hide_password,
    interrupt_on_signals,
    listen,
    serve,
)

if TYPE_CHECKING:
    from .embedded import EmbeddedServices

#: Seconds the task workers get to finish their runs when the demo stops.
STOPPING_GRACE_PERIOD = 3.0

#: What the banner suggests running: GraphiQL's default query.
SAMPLE_QUERY = DEFAULT_QUERY


def run_demo(
    *,
    host: str,
    port: int,
    data_dir: Path,
    database_url: str | None = None,
    redis_url: str | None = None,
    table_name: str = DEFAULT_TABLE_NAME,
    echo: Callable[[str], object] = print,
) -> None:
    """Run the demo until SIGINT or SIGTERM, then stop everything it started."""
    from ..plugin import get_history_plugin
    from .demo_app import create_app
    from .embedded import EmbeddedServices

    if not logging.getLogger().isEnabledFor(logging.INFO):
        # The example tasks fail on purpose, and workers report each normal
        # stop: keep the terminal for what matters unless debugging.
        logging.getLogger(demo_tasks.__name__).setLevel(logging.CRITICAL)
        logging.getLogger("fluid.utils.worker").setLevel(logging.ERROR)

    listener = listen(host, port)  # a busy port fails before any server is touched
    with (
        contextlib.suppress(KeyboardInterrupt),
        interrupt_on_signals(),
        contextlib.closing(listener),
        contextlib.ExitStack() as stack,
    ):
        if database_url is None or redis_url is None:
            embedded = EmbeddedServices(data_dir)
            stack.callback(_stop_servers, embedded, echo)
            echo(f"Starting embedded servers in {embedded.data_dir} ...")
        if database_url is None:
            database_url = embedded.start_postgres()
        else:
            check_database(database_url)
        if redis_url is None:
            redis_url = embedded.start_redis()
        else:
            check_redis(redis_url)
        app = create_app(
            database_url,
            redis_url=redis_url,
            table_name=table_name,
            stopping_grace_period=STOPPING_GRACE_PERIOD,
        )
        plugin = get_history_plugin(app.state.task_manager)
        # before the task manager starts writing
        app.router.on_startup.insert(0, plugin.create_tables)

        def ready(url: str) -> None:
            echo(banner(url, database_url=database_url, redis_url=redis_url))

        serve(app, listener, on_ready=ready)
        echo("Stopping ...")
    echo("Stopped.")


def _stop_servers(embedded: EmbeddedServices, echo: Callable[[str], object]) -> None:
    if users := embedded.stop():
        pids = ", ".join(str(pid) for pid in users)
        echo(f"The embedded servers keep running: process {pids} uses them too.")


def banner(url: str, *, database_url: str, redis_url: str) -> str:
    """What the demo prints once it answers: where to look (the dashboard
    first), and what to ask."""
    indented = "\n".join(f"    {line}" for line in SAMPLE_QUERY.splitlines())
    return (
        "\ngql_history demo: the example tasks run and their history is recorded.\n\n"
        f"  Dashboard    {url}/tasks-ui\n"
        f"  GraphiQL     {url}/tasks-graphql\n"
        f"  REST         {url}/tasks-history\n"
        f"  API docs     {url}/docs\n"
        f"  PostgreSQL   {hide_password(database_url)}\n"
        f"  Redis        {hide_password(redis_url)}\n\n"
        "Open GraphiQL and run, for instance:\n\n"
        f"{indented}\n\n"
        "Ctrl-C stops the demo, and the embedded servers unless another demo\n"
        "still uses them.\n"
    )
