"""The Node clients of tests/e2e/node (graphql-ws, graphql-http), installed
from its package-lock.json the first time a test needs them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from examples.clients.generate import ToolUnavailableError, _install

CLIENTS = Path(__file__).resolve().parent / "e2e" / "node"


def node_clients() -> str:
    """The ``node`` command, once the clients are installed; raises
    ``ToolUnavailableError`` without npm or its registry."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        raise ToolUnavailableError("npm is not installed (the Node clients)")
    lock = CLIENTS / "package-lock.json"
    marker = CLIENTS / "node_modules" / ".package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        _install([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENTS)
    return node


def run_node(script: str, *args: str, timeout: float = 60) -> list[Any]:
    """Run ``script`` of the clients with ``args``; the JSON lines it prints."""
    result = subprocess.run(
        [node_clients(), str(CLIENTS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line]


def start_node(script: str, *args: str) -> subprocess.Popen[str]:
    """Start ``script`` of the clients with ``args``, its output piped."""
    return subprocess.Popen(
        [node_clients(), str(CLIENTS / script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
