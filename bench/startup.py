"""``python -m bench.startup``: how long ``gql-history`` takes to start.

Each command runs as a whole process, interleaved, several times; the figures
are the minimum and median wall time and the median user+sys CPU of the
process. ``python -X importtime -m gql_history --help`` says where it goes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMAND = str(Path(sys.executable).with_name("gql-history"))
COMMANDS = {
    "--help": [COMMAND, "--help"],
    "--version": [COMMAND, "--version"],
    "prune --help": [COMMAND, "prune", "--help"],
    "export-schema": [COMMAND, "export-schema"],
}


def timed(args: list[str]) -> tuple[float, float]:
    """Wall and CPU (user+sys of the child) seconds of one run of ``args``."""
    before = os.times()
    started = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args().repeat
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
    for _ in range(repeat):
        for name, args in COMMANDS.items():
            figures[name].append(timed(args))
    print(f"| command | wall min | wall median | cpu median |  ({repeat} runs each)")
    print("|---|---|---|---|")
    for name, runs in figures.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(
            f"| gql-history {name} | {min(walls):.3f} s "
            f"| {statistics.median(walls):.3f} s | {statistics.median(cpus):.3f} s |"
        )


if __name__ == "__main__":
    main()
