"""An openpi-compatible WebSocket policy server (``vla-ros serve``).

Sends msgpack(metadata) on connect, then answers each msgpack(observation) with msgpack(actions) plus
``server_timing`` ({infer_ms, prev_total_ms}); JPEG frames (:mod:`vla_ros.remote.frames`) are decoded first
and the metadata says the server takes them. ``GET /healthz`` answers 200 "OK". With an API key,
connections without ``Authorization: Api-Key <key>`` are refused (401). On a failure the traceback is
sent as a text frame and the connection closed with 1011, as openpi's server does. Requests are
served one at a time (one model); frames above ``max_size`` bytes close the connection (1009).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from . import frames
from .msgpack_numpy import packb, unpackb

log = logging.getLogger("vla_ros.serve")


class PolicyServer:
    def __init__(self, infer: Callable[[dict], dict], metadata: dict | None = None, host: str = "127.0.0.1",
                 port: int = 8000, api_key: str | None = None, max_size: int | None = 64 * 2**20):
        self.infer = infer
        self.metadata = {**dict(metadata or {}), "frame_encodings": [frames.ENCODING]}
        self.host, self.port, self.api_key, self.max_size = host, port, api_key, max_size
        self._lock = threading.Lock()  # one inference at a time, whatever the number of clients
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.requests = 0

    def _infer_locked(self, observation: dict) -> dict:
        with self._lock:
            return self.infer(observation)

    def _process_request(self, connection, request):
        if request.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "OK\n")
        if self.api_key and request.headers.get("Authorization") != f"Api-Key {self.api_key}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong API key\n")
        return None

    async def _handler(self, websocket) -> None:
        await websocket.send(packb(self.metadata))
        prev_total_ms: float | None = None
        async for message in websocket:
            start = time.perf_counter()
            try:
                if isinstance(message, str):
                    raise ValueError("expected a binary msgpack frame")
                observation = frames.decode(unpackb(message))
                t0 = time.perf_counter()
                result: dict[str, Any] = await asyncio.to_thread(self._infer_locked, observation)
                timing = {"infer_ms": (time.perf_counter() - t0) * 1000.0}
                if prev_total_ms is not None:
                    timing["prev_total_ms"] = prev_total_ms
                result["server_timing"] = timing
                await websocket.send(packb(result))
                self.requests += 1
            except Exception:
                text = traceback.format_exc()
                log.error("request failed:\n%s", text)
                await websocket.send(text)
                await websocket.close(1011, "internal server error")
                return
            prev_total_ms = (time.perf_counter() - start) * 1000.0

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        async with serve(self._handler, self.host, self.port, compression=None, max_size=self.max_size,
                         process_request=self._process_request) as server:
            self._server = server
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await server.serve_forever()

    def serve_forever(self) -> None:
        """Block serving (Ctrl-C stops)."""
        asyncio.run(self._main())

    def start(self) -> PolicyServer:
        """Serve from a background thread; returns once listening (``port`` is then the bound port)."""

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._main())
            except asyncio.CancelledError:
                pass
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="policy-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError(f"server did not start on {self.host}:{self.port}")
        return self

    def stop(self) -> None:
        """Stop a server started with :meth:`start` (idempotent)."""
        if self._loop is not None and self._server is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._server.close)
            except RuntimeError:  # the loop closed meanwhile
                pass
        if self._thread is not None:
            self._thread.join(timeout=5.0)
