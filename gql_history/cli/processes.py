"""Running and watching the embedded servers' processes: tools run to
completion, servers signalled and waited for, ports probed."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import HistoryError

LOCALHOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 5.0
# service name -> (process name, signal asking it to shut down cleanly)
SERVERS = {
    "postgres": ("postgres", signal.SIGINT),  # "fast" shutdown
    "redis": ("redis-server", signal.SIGTERM),  # saves, then exits
}


class EmbeddedServerError(HistoryError):
    """Raised when an embedded server cannot be started or stopped."""


def is_reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    """Return True when a TCP connection to ``host:port`` succeeds in time."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def run_tool(
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
                timeout=START_TIMEOUT + 10,
                cwd=cwd,
                env=env,
                user=None if account is None else account[0],
                group=None if account is None else account[1],
                extra_groups=None if account is None else [],
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            output.seek(0)
            details = output.read().strip() + ("\n" + tail(log) if log else "")
            tool = Path(args[0]).name
            raise EmbeddedServerError(f"{tool} failed: {details}") from exc


def terminate(pid: int, service: str) -> None:
    """Ask the server to shut down, then kill it if it lingers."""
    name, sig = SERVERS[service]
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)

    def gone() -> bool:
        return not is_process(pid, name)

    try:
        wait_for(gone, STOP_TIMEOUT, f"{name} ignored {sig.name}")
    except EmbeddedServerError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_for(gone, STOP_TIMEOUT, f"{name} survived SIGKILL")


def is_process(pid: int, name: str, marker: str = "") -> bool:
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


def process_identity(pid: int) -> str | None:
    """A token naming the live process ``pid`` and no later holder of its pid
    (its start time), or None when no such process runs."""
    if Path("/proc/self").exists():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rpartition(")")[2].split()
        return None if fields[0] in ("Z", "X") else f"{pid}:{fields[19]}"
    result = subprocess.run(  # no procfs, as on macOS
        ["ps", "-o", "lstart=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    started = result.stdout.strip()
    return f"{pid}:{started}" if result.returncode == 0 and started else None


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


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=1.0) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def free_port(preferred: int | None) -> int:
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


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise EmbeddedServerError(f"{what} (waited {timeout:.0f}s)")
        time.sleep(0.05)


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while servers shut down, so a second Ctrl-C cannot leak them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
