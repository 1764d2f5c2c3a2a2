"""Per-provider concurrency shared by every worker: Prefect global concurrency limits.

Within one process the in-process semaphore of ``flows.run`` (``concurrency``)
is enough and costs nothing. With several workers (processes or machines) and
``scale.global_limits: true``, each provider call also holds one slot of the Prefect
global concurrency limit ``provider-<name>``, which the Prefect server enforces for
every client (prefect.concurrency.sync.concurrency; each acquisition is an API call,
0.24-0.41 s per call here: benchmarks/global_limits.py).

``ensure_provider_limits`` creates the limits missing on the server with
``scale.provider_limits[name]`` slots (default ``concurrency``); a limit an operator
already made (``prefect gcl create provider-automatic1111 --limit 2``) is left as is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.model import GenerationRequest, GenerationResult
from config.settings import Settings
from providers.base import Provider

LIMIT_PREFIX = "provider-"


def limit_name(provider: str) -> str:
    """The global concurrency limit of ``provider``: ``provider-<name>``."""
    return f"{LIMIT_PREFIX}{provider}"


def ensure_provider_limits(settings: Settings, providers: Iterable[str]) -> dict[str, int]:
    """Create the missing ``provider-<name>`` limits; return every limit's slot count.

    Needs a Prefect API (PREFECT_API_URL); raises prefect's HTTP errors when it is
    unreachable. Called once per flow run (when its provider chain is built).
    """
    from prefect.client.orchestration import get_client  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    limits: dict[str, int] = {}
    with get_client(sync_client=True) as client:
        for provider in providers:
            name = limit_name(provider)
            try:
                limits[provider] = client.read_global_concurrency_limit_by_name(name).limit
                continue
            except ObjectNotFound:
                pass
            slots = settings.scale.provider_limits.get(provider, settings.concurrency)
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots, active=True))
            except ObjectAlreadyExists:
                # another worker created it at the same moment: use theirs
                slots = client.read_global_concurrency_limit_by_name(name).limit
            limits[provider] = slots
    return limits


class GloballyLimitedProvider:
    """A provider whose ``generate`` holds a slot of ``provider-<name>`` on the Prefect server.

    Every other attribute (name, model, estimate_cost, scrub, close) is the wrapped
    provider's, so the fallback chain sees the same provider. ``timeout_s`` bounds the
    wait for a slot (seconds); a timeout raises TimeoutError, which the chain records
    as a failed attempt and falls back.
    """

    def __init__(self, provider: Provider, *, timeout_s: float | None = None) -> None:
        self._provider = provider
        self._timeout_s = timeout_s

    def __getattr__(self, item: str) -> Any:
        return getattr(self._provider, item)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        from prefect.concurrency.sync import concurrency  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

        with concurrency(limit_name(self._provider.name), occupy=1, timeout_seconds=self._timeout_s, strict=True):
            return self._provider.generate(request)


def limit_providers(settings: Settings, providers: list[Provider]) -> list[Any]:
    """``providers`` wrapped in their global limits when ``scale.global_limits`` is on, else as given."""
    if not settings.scale.global_limits:
        return providers
    ensure_provider_limits(settings, [p.name for p in providers])
    return [GloballyLimitedProvider(p) for p in providers]
