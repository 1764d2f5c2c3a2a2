"""moto's standalone S3 server on loopback, for tests (a real HTTP S3 endpoint)."""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    """``with S3Server(port) as s3:`` -> ``s3.url`` (endpoint), ``s3.client()`` (boto3)."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._server: Any = None

    def __enter__(self) -> S3Server:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        # moto keeps its buckets in this process's memory across servers: start empty, as a
        # new S3 endpoint would (moto's reset API, http://docs.getmoto.org/en/latest/docs/server_mode.html#reset-api)
        import httpx

        httpx.post(f"{self.url}/moto-api/reset", timeout=60).raise_for_status()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1")
