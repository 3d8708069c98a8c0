"""uvicorn's httptools protocol with the connection limits uvicorn itself does not have.

uvicorn 0.54 bounds idle keep-alive time (``--timeout-keep-alive``) and, with
``--limit-concurrency``, answers 503 once a request's headers are complete; it does not bound
header size, the time to send headers or body, or how many connections may sit half-sent
(``h11_max_incomplete_event_size`` exists only for the h11 protocol, which is ~2x slower).
This subclass adds, per connection:

- a header size limit: 431 once a request's request line and headers exceed
  ``max_header_bytes``. Bytes are fed to the parser in slices that never exceed what is left of
  the budget, so a 64 MB header costs at most the budget plus one socket read of memory;
- a header read timeout: 408 when a request's headers are not complete ``header_timeout``
  seconds after its first byte (or after connecting, for a client that sends nothing);
- a body read timeout: 408 when a body is not complete ``body_timeout`` seconds after its
  headers;
- a connection cap: a connection arriving while ``max_connections`` are open gets 503 and is
  closed at once, before anything is read;
- responses in order: an error found while earlier requests on the same connection are still
  being answered (garbage pipelined behind a valid request) is sent after their responses,
  never in their place (uvicorn answers 400 at once and closes, losing the response in flight).

Errors are written in the API's JSON error format with ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from attrition_mlops.serving.settings import ConnectionLimits, get_server_settings

_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
_REASONS[503] = b"Service Unavailable"


def error_bytes(status: int, detail: str, extra_headers: tuple[str, ...] = ()) -> bytes:
    """A complete HTTP/1.1 error response in the API's error format, closing the connection."""
    body = json.dumps({"detail": detail, "errors": [], "request_id": None}).encode()
    head = [
        f"HTTP/1.1 {status} ".encode() + _REASONS.get(status, b"Error"),
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
        *(h.encode() for h in extra_headers),
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that was refused."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol plus :class:`ConnectionLimits` (see the module docstring).

    ``limits`` unset: read from the environment (:func:`..settings.get_server_settings`) once per
    process, so ``uvicorn --http attrition_mlops.serving.protocol:GuardedHttpToolsProtocol``
    and worker processes get the same limits as the launcher.
    """

    limits: ClassVar[ConnectionLimits | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls = type(self)
        if cls.limits is None:
            cls.limits = get_server_settings().connection_limits()
        self._limits: ConnectionLimits = cls.limits
        self._header_budget = self._limits.max_header_bytes
        self._reading_headers = True
        self._timer: asyncio.TimerHandle | None = None
        self._deferred: bytes | None = None  # an error waiting for earlier responses
        self._refused = False

    # connection events -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        full = len(self.connections) >= self._limits.max_connections
        super().connection_made(transport)
        if full:
            self.logger.warning(
                "connection refused: %d connections open (ATTRITION_SERVING_MAX_CONNECTIONS)",
                self._limits.max_connections,
            )
            detail = f"server busy: {self._limits.max_connections} connections open; retry shortly"
            self._refuse(error_bytes(503, detail, ("retry-after: 1",)))
            return
        self._arm(self._limits.header_timeout, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused or self._deferred is not None:
            return
        view = memoryview(data)
        while view and not self._refused and self._deferred is None:
            if self.transport.is_closing():
                return
            if self._reading_headers:
                if self._header_budget <= 0:
                    self._header_too_large()
                    return
                piece, view = view[: self._header_budget], view[self._header_budget :]
                self._header_budget -= len(piece)
            else:
                piece, view = view, view[len(view) :]
            super().data_received(piece)  # type: ignore[arg-type]  (httptools takes buffers)

    # parser callbacks ----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._timer is None:
            self._arm(self._limits.header_timeout, "headers")

    def on_headers_complete(self) -> None:
        self._disarm()
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self._limits.max_header_bytes:
            self._header_too_large()
            raise _Refused
        self._reading_headers = False
        super().on_headers_complete()
        self._arm(self._limits.body_timeout, "body")

    def on_message_complete(self) -> None:
        self._disarm()
        self._reading_headers = True
        self._header_budget = self._limits.max_header_bytes
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # a parse error; after a refusal, the parser merely stopped
            self._refuse(error_bytes(400, f"invalid HTTP request: {msg}"))

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._deferred is not None and not self.pipeline and not self.transport.is_closing():
            self._unset_keepalive_if_required()
            self._write_and_close(self._deferred)

    # refusals --------------------------------------------------------------------------------
    def _header_too_large(self) -> None:
        limit = self._limits.max_header_bytes
        self.logger.warning("request refused: headers over %d bytes", limit)
        detail = f"request line and headers too large: at most {limit} bytes"
        self._refuse(error_bytes(431, detail))

    def _refuse(self, response: bytes) -> None:
        """Answer and close; after the responses still owed on this connection, if any."""
        self._refused = True
        self._disarm()
        if (self.cycle is not None and not self.cycle.response_complete) or self.pipeline:
            self._deferred = response
            self.flow.pause_reading()
        else:
            self._write_and_close(response)

    def _write_and_close(self, response: bytes) -> None:
        self._deferred = None
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()

    def _arm(self, seconds: float, part: str) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._timed_out, seconds, part)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self, seconds: float, part: str) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        self.logger.warning("request refused: %s not received within %g s", part, seconds)
        response = error_bytes(408, f"request {part} not received within {seconds:g} s")
        cycle = self.cycle
        if part == "body" and cycle is not None:
            # The app is waiting for the rest of the body: it sees a disconnect, and anything it
            # still sends is dropped. If it already answered (e.g. 413 on the declared size), or
            # began to, there is nothing more to say: just close.
            answered = cycle.response_started
            cycle.disconnected = True
            cycle.message_event.set()
            self._refused = True
            if answered:
                self.transport.close()
            else:
                self._write_and_close(response)
            return
        self._refuse(response)
