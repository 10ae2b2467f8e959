"""Run the benchmark on a frozen copy of the code.

gql_history may be edited while a long run goes on (and a half-saved module
would break a server started mid-run), so the run re-executes itself in a
copy of ``gql_history/`` and ``bench/`` taken when it starts: every
figure of a run comes from one state of the code, the one ``code`` reports.
Standard library only: nothing of the live tree is imported before the copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What the benchmark runs: the package, itself and the test helpers it uses.
_FOLDERS = ("gql_history", "bench", "tests")
_IGNORE = shutil.ignore_patterns("__pycache__", "results", "*.pyc")


def _digest() -> str:
    digest = hashlib.sha256()
    for folder in _FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def exec_in_snapshot(argv: list[str]) -> None:
    """Copy the code aside (once per content) and re-execute there; no return."""
    digest = _digest()
    base = Path(tempfile.gettempdir()) / "gql_history_bench_code"
    copy = base / digest
    if not copy.exists():
        staging = Path(tempfile.mkdtemp(dir=base.parent, prefix="gql_history_bench_"))
        for folder in _FOLDERS:
            shutil.copytree(ROOT / folder, staging / folder, ignore=_IGNORE)
        base.mkdir(exist_ok=True)
        try:
            staging.rename(copy)
        except OSError:  # another run made the same copy meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    env = {
        **os.environ,
        "BENCH_SNAPSHOT": f"commit {_commit()} + working tree {digest}",
        "BENCH_RESULTS": str(ROOT / "bench" / "results"),
    }
    os.chdir(copy)
    os.execve(sys.executable, [sys.executable, "-m", "bench", *argv], env)
