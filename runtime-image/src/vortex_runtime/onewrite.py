"""uvicorn's httptools protocol, answering a response's head and first body part in one write.

uvicorn writes a response's status line and headers as soon as the app sends
`http.response.start`, and the body in a second write: two syscalls, and two TCP segments the
client reads one by one, for every invocation. `OneWriteProtocol` holds the head back until
the first `http.response.body` and sends both together; the rest of a streamed body goes out
as uvicorn writes it. Nothing else changes: parsing, keep-alive, flow control and pipelining are
uvicorn's own.

Passed as `http=` to `uvicorn.Config` by the runtime's __main__.py. (The API's server keeps
uvicorn's own: measured with `python -m bench e2e`, it changed neither the API hop nor the
throughput of `/execute` beyond the noise.)
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class _Held:
    """Stands in for the transport while a response's head and first body part are written:
    keeps the bytes for one write, and passes everything else through."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def close(self) -> None:
        # uvicorn closes after the body of a last response, or when the app failed after
        # starting one: what is held goes first, as it would have.
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)

    def flush(self) -> None:
        if self.parts:
            self.transport.write(b"".join(self.parts))
            self.parts.clear()


def _hold_head(cycle: RequestResponseCycle) -> None:
    send = cycle.send
    real = cycle.transport

    async def one_write_send(message: Any) -> None:
        if cycle.transport is real and message["type"] == "http.response.start":
            cycle.transport = _Held(real)  # type: ignore[assignment]
            await send(message)
            return
        held = cycle.transport
        if not isinstance(held, _Held):
            await send(message)
            return
        try:
            await send(message)  # the first part of the body, or an error uvicorn raises
        finally:
            cycle.transport = real
            held.flush()

    cycle.send = one_write_send  # type: ignore[method-assign]


class OneWriteProtocol(HttpToolsProtocol):
    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        _hold_head(cycle)
        super()._start_asgi_task(cycle, app)
