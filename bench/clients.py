"""The HTTP clients the benchmark sends its requests with.

A request's time on the client is part of every figure measured over the
socket, the same for each server, so it narrows their ratios. aiohttp (the
default, its HTTP parser in C) spends about 0.7 ms of CPU per request of a
page here; httpx, pure Python, about 2.5 ms, more than our server spends on
the same request. The report gives the client's CPU per request beside the
servers'.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Protocol

import aiohttp
import httpx

from .scenarios import HttpRequest

CLIENTS = ("aiohttp", "httpx")


class HttpClient(Protocol):
    """Sends requests to one server, ``connections`` at most at once."""

    async def __aenter__(self) -> HttpClient: ...

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def send(self, spec: HttpRequest) -> tuple[int, bytes]:
        """The status and body of the response to ``spec``."""
        ...


class HttpxClient:
    def __init__(self, base_url: str, connections: int) -> None:
        limits = httpx.Limits(
            max_connections=connections, max_keepalive_connections=connections
        )
        self.client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30)

    async def __aenter__(self) -> HttpxClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.client.aclose()

    async def send(self, spec: HttpRequest) -> tuple[int, bytes]:
        response = await self.client.request(
            spec.method, spec.path, params=spec.params or None, json=spec.body
        )
        return response.status_code, response.content


class AiohttpClient:
    def __init__(self, base_url: str, connections: int) -> None:
        self.base_url = base_url
        self.connections = connections

    async def __aenter__(self) -> AiohttpClient:
        connector = aiohttp.TCPConnector(limit=self.connections)
        self.session = aiohttp.ClientSession(
            self.base_url,
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=30),
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.session.close()

    async def send(self, spec: HttpRequest) -> tuple[int, bytes]:
        # the body encoded as httpx encodes it, so both send the same bytes
        body = None
        if spec.body is not None:
            text = json.dumps(spec.body, ensure_ascii=False, separators=(",", ":"))
            body = text.encode()
        headers = {"content-type": "application/json"} if body is not None else {}
        async with self.session.request(
            spec.method, spec.path, params=spec.params or None, data=body,
            headers=headers,
        ) as response:  # fmt: skip
            return response.status, await response.read()


def to_httpx(spec: HttpRequest, base_url: str) -> httpx.Request:
    """``spec`` as an httpx request to the server at ``base_url``."""
    return httpx.Request(
        spec.method, base_url + spec.path, params=spec.params or None, json=spec.body
    )


def http_client(kind: str, base_url: str, connections: int) -> HttpClient:
    """A client of ``kind`` (one of ``CLIENTS``) for the server at ``base_url``."""
    if kind == "httpx":
        return HttpxClient(base_url, connections)
    if kind == "aiohttp":
        return AiohttpClient(base_url, connections)
    raise ValueError(f"unknown client {kind!r}: one of {', '.join(CLIENTS)}")
