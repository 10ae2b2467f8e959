"""CPU time other workloads take on the machine while the benchmark measures.

The machine may be shared (another session running its tests, say): a
measurement during which foreign processes burn CPU is flagged, and retried.
Foreign load is the machine's busy CPU time (``/proc/stat``) less the time of
the benchmark, its servers and profilers, the PostgreSQL backends connected to
the benchmark database and PostgreSQL's background processes. Processes that
come and go within a measurement (a test suite's servers, say) are counted
that way too; one of ours that exits meanwhile counts as foreign, which errs
on the side of measuring again.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
#: Foreign CPU (in CPUs) above which a measurement is retried.
NOISY_LOAD = 0.1
_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class _Process:
    name: str
    ticks: int
    backend_db: str | None  # for a PostgreSQL backend, the database it serves


def _processes() -> dict[int, _Process]:
    found: dict[int, _Process] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        name, _, rest = stat.partition("(")[2].rpartition(")")
        fields = rest.split()
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        backend_db = None
        words = cmdline.decode(errors="replace").split()
        # a backend: "postgres: 15/main: user db 127.0.0.1(5432) idle"
        if name == "postgres" and len(words) >= 5 and words[0] == "postgres:":
            host = words[4]
            if host == "[local]" or (host.endswith(")") and "(" in host):
                backend_db = words[3]
        found[int(entry.name)] = _Process(name, ticks, backend_db)
    return found


class ForeignCpu:
    """Measures foreign CPU seconds between ``start()`` and ``stop()``."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.own: set[int] = {os.getpid()}
        self._before: dict[int, _Process] = {}
        self._busy_before = 0

    def start(self) -> None:
        self._before = _processes()
        self._busy_before = _busy_ticks()

    def stop(self) -> float:
        """Foreign CPU seconds since ``start()``."""
        busy = _busy_ticks() - self._busy_before
        ours = 0
        for pid, process in _processes().items():
            shared = process.name == "postgres" and process.backend_db is None
            if pid in self.own or self._ours(process) or shared:
                before = self._before.get(pid)
                ours += process.ticks - (before.ticks if before else 0)
        return max(busy - ours, 0) / _TICK

    async def quiet(self, most: float) -> float:
        """Wait (at most ``most`` seconds) for a second of no foreign load."""
        deadline = time.perf_counter() + most
        while True:
            self.start()
            await asyncio.sleep(1.0)
            load = self.stop()
            if load < NOISY_LOAD or time.perf_counter() > deadline:
                return load

    def _ours(self, process: _Process) -> bool:
        return process.backend_db == self.database


def _busy_ticks() -> int:
    """CPU ticks the whole machine spent busy (all but idle and iowait)."""
    fields = (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return user + nice + system + irq + softirq + steal


def load_average() -> float:
    """The one-minute load average."""
    return float((_PROC / "loadavg").read_text().split()[0])
