"""A TLS-terminating proxy for the tests: TLS on 127.0.0.1 in front of a plain server on a unix
socket, so a client's TLS settings are tested for real against a server built without TLS (the
Redis from PyPI). Its own thread runs its own event loop; each connection is piped both ways
until either side closes."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
CHUNK = 64 * 1024


class TlsProxy:
    """`start()` listens on a free port (`port`); `stop()` closes it and every connection."""

    def __init__(self, backend: Path, context: ssl.SSLContext) -> None:
        self.backend = backend
        self.context = context
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tls-proxy", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> None:
        self._thread.start()
        self._server = self._call(
            asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        # The TLS handshake is done by now (a client that refuses the certificate never gets here).
        try:
            backend, to_backend = await asyncio.open_unix_connection(self.backend)
        except OSError:  # the server is down (a restart test): as if it refused the connection
            to_client.transport.abort()
            return
        pair = {to_client, to_backend}
        self._writers |= pair
        try:
            await asyncio.gather(_pipe(client, to_backend), _pipe(backend, to_client))
        finally:
            self._writers -= pair


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream or an error, then close `writer` (which ends the other way)."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except OSError:  # reset, or a TLS error (ssl.SSLError is an OSError)
        pass
    finally:
        writer.close()
