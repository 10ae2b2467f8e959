"""The ``gql-history`` command line (also ``python -m gql_history``).

This is the edge where errors become one line on stderr and a non-zero exit
code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..core.names import DEFAULT_TABLE_NAME
from ..errors import HistoryError
from .embedded import DEFAULT_DATA_DIR, LOCALHOST

if TYPE_CHECKING:
    from ..db.store import HistoryStore

# Each command imports what it uses when it runs: `--help` and `--version`
# load no more than click (aio-fluid, SQLAlchemy and Strawberry take seconds).

_DEBUG = "gql_history.debug"
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_INTERRUPTED = 130  # as a shell reports a command stopped by SIGINT


class Duration(click.ParamType[timedelta]):
    """A duration such as ``30d``, ``12h``, ``90m``, ``2w`` or ``1d12h``."""

    name = "duration"
    _PART = re.compile(r"(\d+)([smhdw])")
    _UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        text = str(value).strip().lower()
        parts = self._PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            self.fail(
                f"{value!r} is not a duration such as 30d, 12h or 90m", param, ctx
            )
        try:
            duration = sum(
                (timedelta(**{self._UNITS[unit]: int(n)}) for n, unit in parts),
                timedelta(),
            )
            datetime.now(UTC) - duration
        except OverflowError:
            self.fail(f"{value!r} reaches back before the year 1", param, ctx)
        return duration


class TaskStates(click.Choice[str]):
    """aio-fluid's task states, any case, read from aio-fluid only when needed."""

    def __init__(self) -> None:
        self.case_sensitive = False

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        from fluid.scheduler import TaskState

        return tuple(state.value for state in TaskState)


class _Commands(click.Group):
    """A group whose errors are one line on stderr, tracebacks with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            # one line, not click's blank line then "Aborted!"
            click.echo("Interrupted.", err=True)
            raise click.exceptions.Exit(_INTERRUPTED) from None
        except Exception as exc:
            if ctx.meta.get(_DEBUG):
                raise
            if isinstance(exc, HistoryError):
                raise click.ClickException(_one_line(str(exc))) from exc
            raise click.ClickException(
                f"{type(exc).__name__}: {_one_line(str(exc))} "
                "(--debug shows the traceback)"
            ) from exc

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            hint = ""
            if exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            click.echo(f"Error: {_one_line(exc.format_message())}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("Interrupted.", err=True)
            sys.exit(_INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_DEBUG] = True
        logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT, force=True)


_debug_option = click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_set_debug,
    help="Show tracebacks and informational logs.",
)
_table_option = click.option(
    "--table-name",
    default=DEFAULT_TABLE_NAME,
    show_default=True,
    help="The table storing task runs.",
)
_database_option = click.option(
    "--database-url",
    metavar="URL",
    help="PostgreSQL URL. [env: DATABASE_URL, else aio-fluid's DATABASE]",
)
_host_option = click.option(
    "--host", default=LOCALHOST, show_default=True, help="The address to listen on."
)


#: The limits ``serve`` takes as flags: (option, help).
_LIMIT_FLAGS = {
    "max_body_size": "Most bytes of a GraphQL request body or websocket message.",
    "max_cost": "Most runs one GraphQL operation may ask for (page sizes "
    "multiplied along each path, summed).",
    "max_filter_values": "Most values in one list of a run filter.",
    "max_filter_size": "Most conditions in one run filter.",
    "max_variable_values": "Most JSON values in a GraphQL request's variables.",
    "connection_init_timeout": "Seconds a websocket may wait before connection_init.",
}


def _limit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The ``_LIMIT_FLAGS`` as options defaulting to ``QueryLimits``'."""
    from ..core.limits import QueryLimits

    defaults = QueryLimits()
    for name, text in reversed(_LIMIT_FLAGS.items()):
        default = getattr(defaults, name)
        kind = click.FloatRange(0) if isinstance(default, float) else click.IntRange(1)
        command = click.option(
            "--" + name.replace("_", "-"),
            name,
            default=default,
            type=kind,
            show_default=True,
            help=text,
        )(command)
    return command


def _port_option(default: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--port",
        default=default,
        type=click.IntRange(0, 65535),
        show_default=True,
        help="The port to listen on (0 picks a free one).",
    )


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gql-history")
@_debug_option
def cli() -> None:
    """Task-run history for aio-fluid, in PostgreSQL, over GraphQL and REST.

    `gql-history demo` shows it working; the other commands serve and look
    after the history of an existing database.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format=_LOG_FORMAT)


@cli.command()
@_host_option
@_port_option(8000)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Where embedded PostgreSQL and Redis keep their data.",
)
@_database_option
@click.option(
    "--redis-url",
    metavar="URL",
    help=(
        "Redis URL of the task broker. "
        "[env: REDIS_URL, else aio-fluid's FLUID_BROKER_URL or REDIS_DEFAULT_URL]"
    ),
)
@_table_option
@_debug_option
def demo(
    host: str,
    port: int,
    data_dir: Path,
    database_url: str | None,
    redis_url: str | None,
    table_name: str,
) -> None:
    """Run the example tasks and explore their history in GraphiQL.

    Starts an aio-fluid TaskScheduler with the example tasks and the history
    plugin, and serves GraphiQL at /tasks-graphql. With no database or Redis
    configured, it starts embedded ones under --data-dir (the `embedded`
    extra) and stops them on Ctrl-C.
    """
    from ..core import settings
    from .demo import run_demo

    run_demo(
        host=host,
        port=port,
        data_dir=data_dir,
        database_url=settings.database_url(database_url),
        redis_url=settings.redis_url(redis_url),
        table_name=table_name,
        echo=click.echo,
    )


@cli.command()
@_database_option
@_table_option
@_host_option
@_port_option(8000)
@click.option(
    "--dashboard/--no-dashboard",
    default=True,
    show_default=True,
    help="Serve the history dashboard at /tasks-ui.",
)
@click.option(
    "--persisted-documents",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=(
        "A manifest of the only GraphQL operations to run (hash -> document "
        "JSON, as GraphQL Code Generator's persistedDocuments writes it)."
    ),
)
@_limit_options
@_debug_option
def serve(
    database_url: str | None,
    table_name: str,
    host: str,
    port: int,
    dashboard: bool,
    persisted_documents: Path | None,
    **limits: Any,
) -> None:
    """Serve the history of a database, read-only, with no task manager.

    The dashboard at /tasks-ui, GraphQL (and GraphiQL) at /tasks-graphql,
    REST at /tasks-history. The database and its table are checked before
    the service starts.
    """
    from ..web.app import create_app
    from . import serve as server

    url = _database_url(database_url)
    listener = server.listen(host, port)
    server.check_database(url, table_name)
    app = create_app(
        url,
        table_name=table_name,
        dashboard=dashboard,
        persisted_documents=persisted_documents,
        **limits,
    )

    def ready(base: str) -> None:
        ui = f"dashboard at {base}/tasks-ui, " if dashboard else ""
        click.echo(
            f"Serving {table_name} of {server.hide_password(url)}: {ui}"
            f"GraphiQL at {base}/tasks-graphql, REST at {base}/tasks-history"
        )

    server.serve(app, listener, on_ready=ready)


@cli.command("export-schema")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the schema to this file instead of stdout.",
)
@_debug_option
def export_schema(output: Path | None) -> None:
    """Print the GraphQL schema (SDL) that client generators read."""
    from strawberry.printer import print_schema

    from ..graphql.schema import schema

    text = print_schema(schema) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(
            f"cannot write {output}: {exc.strerror or exc}"
        ) from exc
    click.echo(f"Wrote the schema to {output}", err=True)


@cli.command("create-tables")
@_database_option
@_table_option
@_debug_option
def create_tables(database_url: str | None, table_name: str) -> None:
    """Create the history table and its indexes where missing (idempotent)."""
    from . import serve as server

    url = _database_url(database_url)
    server.check_database(url)
    _run(url, table_name, lambda store: store.create_tables())
    click.echo(f"Table {table_name} is ready in {server.hide_password(url)}")


@cli.command()
@_database_option
@_table_option
@_debug_option
def upgrade(database_url: str | None, table_name: str) -> None:
    """Add gql_history's columns and indexes to a table aio-fluid's
    TaskDbPlugin created (idempotent; creates the table if missing)."""
    from sqlalchemy.exc import NoSuchTableError

    from . import serve as server

    async def upgrade_table(store: HistoryStore) -> list[str] | None:
        """The columns added, or None when the table was missing (and created)."""
        try:
            await store.present_columns()
        except NoSuchTableError:
            await store.create_tables()
            return None
        return await store.upgrade_tables()

    url = _database_url(database_url)
    server.check_database(url)
    added = _run(url, table_name, upgrade_table)
    if added is None:
        click.echo(f"Created table {table_name} in {server.hide_password(url)}")
    elif added:
        click.echo(f"Added to {table_name}: {', '.join(added)}")
    else:
        click.echo(f"Table {table_name} is up to date")


@cli.command()
@click.option(
    "--older-than",
    type=Duration(),
    required=True,
    help="Delete runs queued longer ago than this: 30d, 12h, 90m, 2w, 1d12h.",
)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=TaskStates(),
    help="Only runs in this state (repeatable); any state when not given.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Runs deleted per transaction.",
)
@click.option(
    "--dry-run", is_flag=True, help="Print how many runs would go; delete none."
)
@click.option(
    "--yes", "-y", is_flag=True, help="Do not ask for confirmation on a terminal."
)
@_database_option
@_table_option
@_debug_option
@click.pass_context
def prune(
    ctx: click.Context,
    older_than: timedelta,
    states: tuple[str, ...],
    batch_size: int,
    dry_run: bool,
    yes: bool,
    database_url: str | None,
    table_name: str,
) -> None:
    """Delete old runs, oldest first, in short batches.

    Each batch commits on its own, so stopping it (Ctrl-C) keeps what was
    deleted and leaves the table consistent; run it again to go on. On a
    terminal it says how many runs would go and asks first (--yes does not).
    """
    from fluid.scheduler import TaskState

    from ..core.filters import RunFilter
    from . import serve as server

    url = _database_url(database_url)
    server.check_database(url, table_name)
    cutoff = datetime.now(UTC) - older_than
    chosen = [TaskState(state.lower()) for state in states] or None
    when = cutoff.isoformat(timespec="seconds")
    if dry_run or not (yes or not sys.stdin.isatty()):
        prunable = RunFilter(queued_before=cutoff, state=chosen)
        count = _run(url, table_name, lambda store: store.count(prunable))
        what = f"{count} runs queued before {when} from {table_name}"
        if dry_run:
            click.echo(f"Would delete {what}")
            return
        if not click.confirm(f"Delete {what}?", err=True):
            click.echo("Deleted nothing")
            return
    progress = _Pruned()

    async def batches(store: HistoryStore) -> None:
        async with _stopped_by_sigint() as stop:
            while not stop.is_set():
                progress.in_doubt = True
                count = await store.prune(cutoff, states=chosen, limit=batch_size)
                progress.in_doubt = False
                progress.deleted += count
                if count < batch_size:
                    return
            progress.interrupted = True

    try:
        _run(url, table_name, batches)
    except KeyboardInterrupt:
        progress.interrupted = True
    if progress.interrupted:
        doubt = " (and maybe the batch it was deleting)" if progress.in_doubt else ""
        click.echo(
            f"Interrupted: deleted {progress.deleted} runs{doubt} queued before "
            f"{when} from {table_name}; run it again to go on",
            err=True,
        )
        ctx.exit(_INTERRUPTED)
    click.echo(
        f"Deleted {progress.deleted} runs queued before {when} from {table_name}"
    )


@dataclass(slots=True)
class _Pruned:
    """How far a prune got."""

    deleted: int = 0
    interrupted: bool = False
    in_doubt: bool = False
    """Whether a batch was under way when the prune stopped."""


@asynccontextmanager
async def _stopped_by_sigint() -> AsyncIterator[asyncio.Event]:
    """An event the first SIGINT sets, so a loop of short transactions stops
    between two (and counts every one committed); a second SIGINT cancels
    the one under way, as asyncio does."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    task = asyncio.current_task()

    def interrupt() -> None:
        if stop.is_set() and task is not None:
            task.cancel()
        stop.set()

    try:
        loop.add_signal_handler(signal.SIGINT, interrupt)
    except (RuntimeError, ValueError):  # not the main thread: signals go elsewhere
        yield stop
        return
    try:
        yield stop
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
        raise KeyboardInterrupt from None
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _database_url(flag: str | None) -> str:
    from ..core import settings

    url = settings.database_url(flag)
    if url is None:
        raise click.UsageError("no database: pass --database-url or set DATABASE_URL")
    return url


def _run[T](
    url: str,
    table_name: str,
    action: Callable[[HistoryStore], Awaitable[T]],
) -> T:
    """Run ``action`` with a store of the table, then release the database."""
    from ..db.store import open_store
    from .serve import run_command

    async def run() -> T:
        async with open_store(url, table_name) as store:
            return await action(store)

    return run_command(run())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main() -> None:
    """The console script."""
    cli(prog_name="gql-history")
