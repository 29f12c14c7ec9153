"""The bare limit: an ASGI app that answers every request with a fixed JSON body and does nothing
else (no framework, no middleware, no metrics), so a server running it measures the server alone.

It answers the lifespan protocol, so a server starts it as it starts a real app (no "lifespan
unsupported" path)."""

from __future__ import annotations

from typing import Any

BODY = b'{"status":"ok"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
