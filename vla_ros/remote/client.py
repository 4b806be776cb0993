"""A client of the openpi WebSocket policy protocol with timeouts and reconnection.

Protocol: connect (optional header ``Authorization: Api-Key <key>``), receive msgpack(metadata), then per
request send msgpack(observation) and receive msgpack(action dict); a text frame is a server error.
A request that times out, a lost connection or a server error drops the connection; the next request
reconnects, no sooner than an exponential backoff allows.
"""

from __future__ import annotations

import time
from typing import Any

from . import frames
from .msgpack_numpy import packb, unpackb


class RemoteError(RuntimeError):
    """The server cannot answer now (unreachable, timed out, refused, or failed on this request)."""


class PolicyClient:
    def __init__(self, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
                 timeout: float = 2.0, connect_timeout: float = 2.0, backoff: tuple[float, float] = (0.5, 8.0),
                 max_size: int | None = 64 * 2**20, jpeg_quality: int = 0):
        self.uri = host if host.startswith(("ws://", "wss://")) else f"ws://{host}:{port}"
        self.api_key, self.timeout, self.connect_timeout = api_key, timeout, connect_timeout
        self.backoff_min, self.backoff_max = backoff
        self.max_size = max_size
        self.jpeg_quality = int(jpeg_quality)  # > 0: images travel as JPEG (a server that accepts them only)
        self.request_bytes = 0  # the last request's size
        self.metadata: dict | None = None
        self._ws = None
        self._delay = self.backoff_min
        self._next_attempt = 0.0
        self.reconnects = 0

    @property
    def connected(self) -> bool:
        return self._ws is not None

    def _connect(self) -> None:
        from websockets.sync.client import connect

        headers = {"Authorization": f"Api-Key {self.api_key}"} if self.api_key else None
        kwargs = dict(additional_headers=headers, compression=None, max_size=self.max_size,
                      open_timeout=self.connect_timeout)
        try:  # websockets >= 16: a long-lived connection outside a `with` block is the "legacy" mode
            ws = connect(self.uri, legacy=True, **kwargs)
        except TypeError:
            ws = connect(self.uri, **kwargs)
        try:
            metadata = ws.recv(timeout=self.timeout)
        except Exception:
            ws.close()
            raise
        if isinstance(metadata, str):
            ws.close()
            raise RemoteError(f"server sent an error instead of metadata: {metadata}")
        self.metadata = unpackb(metadata)
        self._ws = ws
        self._delay = self.backoff_min

    def ensure_connected(self) -> None:
        """Connect now if the backoff allows; raises RemoteError otherwise or on failure."""
        if self._ws is not None:
            return
        now = time.monotonic()
        if now < self._next_attempt:
            raise RemoteError(f"{self.uri} unavailable; next attempt in {self._next_attempt - now:.1f} s")
        try:
            self._connect()
            self.reconnects += 1
        except RemoteError:
            self._schedule_retry(now)
            raise
        except Exception as exc:
            self._schedule_retry(now)
            raise RemoteError(f"cannot connect to {self.uri}: {exc}") from exc

    def _schedule_retry(self, now: float) -> None:
        self._next_attempt = now + self._delay
        self._delay = min(2 * self._delay, self.backoff_max)

    def _drop(self) -> None:
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:
                pass
        self._ws = None

    def infer(self, observation: dict[str, Any]) -> dict[str, Any]:
        """One request; raises RemoteError when there is no usable answer."""
        from websockets.exceptions import ConnectionClosed

        self.ensure_connected()
        if self.jpeg_quality > 0:
            if frames.ENCODING not in (self.metadata or {}).get("frame_encodings", []):
                raise RemoteError(f"{self.uri} does not accept JPEG frames (an openpi server reads raw arrays "
                                  "only): set jpeg_quality to 0, or serve with vla-ros serve")
            observation = frames.encode(observation, self.jpeg_quality)
        message = packb(observation)
        self.request_bytes = len(message)
        try:
            self._ws.send(message)
            reply = self._ws.recv(timeout=self.timeout)
        except TimeoutError as exc:
            self._drop()  # a late answer must not be taken for the next request's
            raise RemoteError(f"no answer from {self.uri} within {self.timeout} s") from exc
        except ConnectionClosed as exc:
            self._drop()
            raise RemoteError(f"connection to {self.uri} lost: {exc}") from exc
        except OSError as exc:
            self._drop()
            raise RemoteError(f"connection to {self.uri} failed: {exc}") from exc
        if isinstance(reply, str):
            self._drop()
            raise RemoteError(f"server error: {reply.strip().splitlines()[-1] if reply.strip() else reply}")
        return unpackb(reply)

    def close(self) -> None:
        self._drop()
