"""orders_api's app with one more route, /io: a handler that awaits 50 ms, the way a real handler
awaits a slow query or another service, while using almost no CPU itself. The app's middleware
still runs around it, and unlike /healthz it is traced (the probes are excluded from tracing).

Every FastAPI setup of the benchmark (naive, the kit's, tuned by hand, on any server) serves this
same object, so the routes they share (/healthz, /items/{id}) run the app's own code, middleware
included. The route is added after the app's own, so matching them costs what it did before.
"""

from __future__ import annotations

import asyncio

from orders_api.main import app

IO_SECONDS = 0.05


@app.get("/io", include_in_schema=False)
async def io() -> dict[str, str]:
    await asyncio.sleep(IO_SECONDS)
    return {"status": "ok"}


__all__ = ["app"]
