"""Running the ``gql-history`` command as a real process, as a user would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

#: The console script the package installs.
COMMAND = Path(sys.executable).with_name("gql-history")
ROOT = Path(__file__).resolve().parent.parent
#: Where the command looks for PostgreSQL and Redis, ours and aio-fluid's.
SERVICE_VARIABLES = (
    "DATABASE_URL",
    "DATABASE",
    "REDIS_URL",
    "FLUID_BROKER_URL",
    "REDIS_DEFAULT_URL",
)
STOP_TIMEOUT = 15.0


def command_env(**variables: str) -> dict[str, str]:
    """This environment without database or Redis settings, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    return env | variables


def run_command(
    args: list[str], *, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``gql-history args`` to completion."""
    return subprocess.run(
        [str(COMMAND), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=command_env() if env is None else dict(env),
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def running_command(
    args: list[str],
    *,
    ready: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    log: Path | None = None,
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run ``gql-history args`` until it prints ``ready``; yield it and its
    output so far, all of which goes to ``log`` when given. On exit, SIGINT
    stops it, which must take under 15 s."""
    opened = tempfile.TemporaryFile("w+") if log is None else log.open("w+")  # noqa: SIM115
    with opened as output:
        process = subprocess.Popen(
            [str(COMMAND), *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env=command_env() if env is None else dict(env),
            start_new_session=True,  # a Ctrl-C at the terminal is not for it
        )
        try:
            yield process, wait_for_output(process, output, ready, timeout)
        finally:
            if process.poll() is None:
                interrupt(process)


def wait_for_output(
    process: subprocess.Popen[str], output: IO[str], text: str, timeout: float
) -> str:
    """Poll ``output`` (a file) until it holds ``text``; return what it holds."""
    deadline = time.monotonic() + timeout
    while True:
        output.seek(0)
        printed = output.read()
        if text in printed:
            return str(printed)
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}:\n{printed}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} in {timeout:.0f}s:\n{printed}")
        time.sleep(0.05)


def interrupt(
    process: subprocess.Popen[str], how: signal.Signals = signal.SIGINT
) -> float:
    """Send ``process`` alone SIGINT (or ``how``); return the seconds it took
    to exit."""
    started = time.monotonic()
    process.send_signal(how)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        process.kill()
        process.wait()
        raise AssertionError(
            f"still running {STOP_TIMEOUT:.0f}s after {how.name}"
        ) from exc
    return time.monotonic() - started
