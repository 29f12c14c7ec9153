"""The HTTP service: items in PostgreSQL, probes, metrics.

    uvicorn orders_api.main:app        (from the folder that holds orders_api/)

Import time only builds the app object (no connections, no threads), so a pre-fork server
may import it in a parent. Everything a process owns, the database pool, the span
exporter's thread, the worker's metric files, starts in the lifespan: once per worker.
The app installs no log handler: the server's `--log-config` decides where logs go.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.utils import suppress_instrumentation
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orders_api import database, metrics, telemetry
from orders_api.config import env_float
from orders_api.models import Item

log = logging.getLogger("orders_api")

# /readyz answers 503 when `SELECT 1` takes longer: below the probe's own timeout (2 s).
READY_TIMEOUT_SECONDS = env_float("READY_TIMEOUT_SECONDS", 1.0)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    telemetry.start()
    metrics.worker_started()
    engine = database.create_app_engine()
    telemetry.instrument_engine(engine)
    app.state.engine = engine
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        yield
    finally:
        await engine.dispose()
        metrics.worker_stopped()
        telemetry.shutdown()


app = FastAPI(title="orders-api", version="0.4.1", lifespan=lifespan)
app.add_middleware(metrics.PrometheusMiddleware)
telemetry.instrument_app(app)


async def session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as s:
        yield s


Session = Annotated[AsyncSession, Depends(session)]


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=10_000)
    sku: str | None = Field(None, max_length=64)


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    sku: str | None
    created_at: datetime


@app.post("/items", status_code=status.HTTP_201_CREATED, response_model=ItemOut)
async def create_item(body: ItemIn, db: Session) -> Item:
    item = Item(**body.model_dump())
    db.add(item)
    await db.commit()
    log.info("item created", extra={"item_id": item.id})
    return item


@app.get("/items/{item_id}", response_model=ItemOut)
async def get_item(item_id: int, db: Session) -> Item:
    item = await db.get(Item, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no item {item_id}")
    return item


@app.get("/items", response_model=list[ItemOut])
async def list_items(db: Session, limit: Annotated[int, Query(ge=1, le=100)] = 20,
                     after: Annotated[int, Query(ge=0, description="Last id of the previous page.")] = 0,
                     ) -> list[Item]:
    # Keyset pagination: page N costs the same as page 1.
    rows = await db.scalars(select(Item).where(Item.id > after).order_by(Item.id).limit(limit))
    return list(rows)


@app.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. No dependency: a database outage must not restart pods."""
    return {"status": "ok"}


@app.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> Response:
    """Readiness: this worker can reach PostgreSQL. 503 takes the pod out of the Service."""
    try:
        # Probes every few seconds would each start a one-query trace: not traced.
        with suppress_instrumentation():
            async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                async with request.app.state.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        log.warning("not ready: database check failed: %s", type(exc).__name__,
                    extra={"error": str(exc)[:500]})
        return JSONResponse({"status": "unavailable", "database": "unreachable"},
                            status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    return JSONResponse({"status": "ok"})


@app.get("/metrics", include_in_schema=False)
def prometheus_metrics() -> Response:
    # A plain def: reading every worker's metric files runs in the thread pool, off the loop.
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
