"""A signed inbound trigger: other systems (n8n, a CMS) start the ad-hoc deployment
``generate/adhoc`` with one HTTP request, ``content-pipeline trigger serve --port N``.

``POST /trigger`` with a JSON body ``{"template": NAME | "category": NAME, "count": 1..50,
"client": "acme" (optional), "date": "YYYY-MM-DD" (optional)}`` and two headers:

* ``X-Content-Pipeline-Timestamp``: Unix time in seconds (integer) when the request was signed;
* ``X-Content-Pipeline-Signature``: ``sha256=`` + the lowercase hex HMAC-SHA256
  (https://www.rfc-editor.org/rfc/rfc2104, https://docs.python.org/3/library/hmac.html)
  of ``<timestamp>.<raw body bytes>`` keyed with ``CONTENT_PIPELINE_TRIGGER_SECRET``.

Refused: no or a wrong signature (401), a timestamp more than ``MAX_AGE_S`` (300 s) away
from now (401, stale), a signature already accepted in the last ``2 * MAX_AGE_S`` (409,
replay; the seen signatures are kept in memory, bounded, expiring), a body that is not a
valid request (422). Each refusal is one log line. Accepted: 202 with the flow run's id;
the run is created through Prefect's API (``prefect.deployments.run_deployment`` with
``timeout=0``: https://docs.prefect.io/v3/deploy/index) and runs on ``content-pipeline serve``.

A category picks one of its templates by the date (rotating day by day); ``client`` and
``date`` name the batch (``<client>-<date>-<template>``), so the same request sent again
later with a fresh signature resumes that batch instead of making new images.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date as Date
from typing import Annotated, Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from config.clients import ClientsConfig
from domain.errors import TemplateError
from domain.templates import TemplateLibrary

SIGNATURE_HEADER = "X-Content-Pipeline-Signature"
TIMESTAMP_HEADER = "X-Content-Pipeline-Timestamp"
SECRET_ENV = "CONTENT_PIPELINE_TRIGGER_SECRET"
DEPLOYMENT = "generate/adhoc"
MAX_AGE_S = 300  # seconds a signed request stays valid
MAX_BODY_BYTES = 16_384

log = logging.getLogger("content_pipeline.trigger")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` keyed with ``secret`` (UTF-8)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class ReplayGuard:
    """The signatures accepted in the last ``ttl_s`` seconds, at most ``capacity`` of them
    (thread-safe). When full of unexpired signatures, new requests are refused (429) rather
    than forgetting one that could then be replayed."""

    def __init__(self, ttl_s: float = 2 * MAX_AGE_S, capacity: int = 10_000) -> None:
        self.ttl_s, self.capacity = ttl_s, capacity
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, signature: str, now: float) -> tuple[int, str] | None:
        """None when ``signature`` is new (it is then remembered), else (HTTP status, reason)."""
        with self._lock:
            while self._seen and next(iter(self._seen.values())) <= now - self.ttl_s:
                self._seen.popitem(last=False)
            if signature in self._seen:
                return 409, "replayed request (signature already used)"
            if len(self._seen) >= self.capacity:
                return 429, "too many signed requests in the replay window"
            self._seen[signature] = now
            return None


class TriggerRequest(BaseModel):
    """The JSON body: exactly one of ``template`` / ``category``, ``count`` 1..50 images,
    ``client`` (letters, digits, ``._-``, up to 64) and ``date`` naming the batch."""

    model_config = ConfigDict(extra="forbid")

    template: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    category: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    count: Annotated[int, Field(ge=1, le=50)] = 1
    client: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = None
    date: Date | None = None

    @model_validator(mode="after")
    def _one_target(self) -> TriggerRequest:
        if (self.template is None) == (self.category is None):
            raise ValueError("give exactly one of template or category")
        return self


def check_signature(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float) -> tuple[int, str] | None:
    """None when ``signature`` is right for ``timestamp`` and ``body`` and the timestamp is
    within ``MAX_AGE_S`` seconds of ``now``; else (401, reason)."""
    if not timestamp or not signature:
        return 401, f"unsigned request (missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER})"
    if not timestamp.isdigit():
        return 401, f"{TIMESTAMP_HEADER} is not Unix seconds"
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip().lower()):
        return 401, "wrong signature"
    if abs(now - int(timestamp)) > MAX_AGE_S:
        return 401, f"stale request (timestamp {int(now - int(timestamp))} s from now, limit {MAX_AGE_S} s)"
    return None


def parameters_for(request: TriggerRequest, library: TemplateLibrary, today: Date, clients: ClientsConfig | None = None) -> dict[str, Any]:
    """The ``generate`` flow's parameters; TemplateError for an unknown template or category,
    and, when ``clients`` are configured (config/clients.py) and the request names a client,
    for a template that client does not own (a brand's CMS never spends another's budget)."""
    day = request.date or today
    if request.template is not None:
        template = library.get(request.template)
    else:
        group = library.by_category(str(request.category))
        template = group[day.toordinal() % len(group)]
    name = template.name
    if clients is not None and clients.root and request.client is not None:
        owner = clients.client_of(template.category, name)
        if owner != request.client:
            raise TemplateError(f"template {name!r} belongs to {f'client {owner!r}' if owner else 'no client'}, not to client {request.client!r}")
    parameters: dict[str, Any] = {"template": name, "count": request.count}
    if request.client or request.date:
        parameters["batch"] = "-".join(p for p in (request.client, day.isoformat(), name) if p)
    return parameters


def start_adhoc(parameters: dict[str, Any]) -> str:
    """Create a flow run of ``generate/adhoc`` through Prefect's API without waiting; its id."""
    from prefect.client.schemas.objects import FlowRun  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs
    from prefect.deployments import run_deployment  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    run = run_deployment(DEPLOYMENT, parameters=parameters, timeout=0, as_subflow=False)
    assert isinstance(run, FlowRun)  # the synchronous call (a worker thread) returns the flow run
    return str(run.id)


def create_app(
    secret: str,
    library: TemplateLibrary,
    *,
    clients: ClientsConfig | None = None,
    start: Callable[[dict[str, Any]], str] = start_adhoc,
    guard: ReplayGuard | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The FastAPI application (https://fastapi.tiangolo.com/): ``POST /trigger``, ``GET /health``."""
    guard = guard or ReplayGuard()
    app = FastAPI(title="content-pipeline trigger", docs_url=None, redoc_url=None, openapi_url=None)

    def refuse(status: int, reason: str, request: Request) -> JSONResponse:
        peer = request.client.host if request.client else "?"
        log.warning("trigger refused (%d) from %s: %s", status, peer, reason)
        return JSONResponse({"error": reason}, status_code=status)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/trigger")
    async def trigger(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return refuse(413, f"body over {MAX_BODY_BYTES} bytes", request)
        headers, now = request.headers, clock()
        signature = headers.get(SIGNATURE_HEADER)
        problem = check_signature(secret, headers.get(TIMESTAMP_HEADER), signature, body, now)
        problem = problem or guard.admit(str(signature).strip().lower(), now)
        if problem:
            return refuse(*problem, request)
        try:
            wanted = TriggerRequest.model_validate(json.loads(body))
            parameters = parameters_for(wanted, library, Date.fromtimestamp(now), clients)
        except (ValueError, ValidationError, TemplateError) as exc:
            return refuse(422, " ".join(str(exc).split())[:300], request)
        try:
            run_id = await to_thread.run_sync(start, parameters)
        except Exception as exc:  # Prefect unreachable, deployment not served: the caller may retry
            return refuse(503, f"could not start {DEPLOYMENT}: {' '.join(str(exc).split())[:300]}", request)
        log.info("trigger accepted: %s run %s %s", DEPLOYMENT, run_id, parameters)
        return JSONResponse({"flow_run_id": run_id, "deployment": DEPLOYMENT, "parameters": parameters}, status_code=202)

    return app
