"""Serve one benchmark app with uvicorn in a subprocess on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from .apps import FACTORIES

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """Raised when a benchmark server does not start."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of process ``pid``, in kB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


class Server:
    """``uvicorn --factory`` of one target, one worker, stopped on exit."""

    def __init__(
        self, target: str, dsn: str, table: str, *, log_dir: Path, timeout: float = 30
    ) -> None:
        self.target = target
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.timeout = timeout
        self.log_path = log_dir / f"server-{target}.log"
        self._env = {**os.environ, "BENCH_DSN": dsn, "BENCH_TABLE": table}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The uvicorn process id."""
        assert self._process is not None
        return self._process.pid

    def start(self, probe: httpx.Request) -> None:
        """Start uvicorn and wait until ``probe`` answers 200."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            FACTORIES[self.target],
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
            # longer than the other targets' load slices, so no server closes
            # an idle connection just as its client reuses it (a ReadError)
            "--timeout-keep-alive",
            "60",
        ]
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                args, cwd=ROOT, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self.timeout
        with httpx.Client(base_url=self.base_url, timeout=5) as client:
            while True:
                if self._process.poll() is not None:
                    raise ServerError(f"{self.target} exited: {self._log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    response = client.send(probe)
                    if response.status_code == 200:
                        return
                    raise ServerError(
                        f"{self.target} answered {response.status_code}: "
                        f"{response.text[:500]}"
                    )
                if time.monotonic() > deadline:
                    raise ServerError(f"{self.target} did not start in time")
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM uvicorn, then SIGKILL it if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def memory(self) -> dict[str, int]:
        """The server's current and peak RSS, in kB."""
        return memory_kb(self.pid)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
