"""A pure ASGI middleware that refuses request bodies over a size limit with a JSON 413.

`app.create_app` installs it in front of every route, so no handler ever buffers an oversized
body: a declared Content-Length over the limit is refused before reading, and a chunked body is
counted as it arrives. Routes still apply their own, tighter limits (code size, event size).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vortex_api.errors import PayloadTooLarge


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse bodies over `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                break
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return

        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = PayloadTooLarge(f"the request body is over {self.max_bytes} bytes")
        await response.to_response()({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:  # pragma: no cover - a Response never reads
    return {"type": "http.disconnect"}
