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

Requests per window: a provider's ``rate_limit`` (``{requests: N, per_s: W}``; per model
``model_rate_limits``) becomes the Prefect global rate limit ``rate-<provider>`` (or
``rate-<provider>-<model>``), a limit with slot decay
(https://docs.prefect.io/v3/develop/global-concurrency-limits#rate-limiting); every call
first takes one slot of it (prefect.concurrency.sync.rate_limit), whichever run or worker
makes it, so a daily batch stays under the provider's limit instead of meeting a storm of
429 answers. This holds whether ``scale.global_limits`` is on or off. A decaying limit is
a token bucket: ``L`` slots refilled at ``r`` per second let ``L + r * W`` calls into one
window of ``W`` seconds, so N calls per W are kept as 1 slot refilled at ``(N - 1) / W``
per second (a call every ``W / (N - 1)`` seconds; at most N in any window), not as N
slots refilled at ``N / W`` (which lets up to 2N into one window).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from typing import Any

from domain.model import GenerationRequest, GenerationResult
from config.settings import Settings
from providers.base import Provider
from providers.spec import RateLimit

LIMIT_PREFIX = "provider-"
RATE_PREFIX = "rate-"


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
            with contextlib.suppress(ObjectNotFound):
                limits[provider] = client.read_global_concurrency_limit_by_name(name).limit
                continue
            slots = settings.scale.provider_limits.get(provider, settings.concurrency)
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots, active=True))
            except ObjectAlreadyExists:
                # another worker created it at the same moment: use theirs
                slots = client.read_global_concurrency_limit_by_name(name).limit
            limits[provider] = slots
    return limits


def rate_limit_name(provider: str, model: str | None = None) -> str:
    """The global rate limit of ``provider`` (``rate-<name>``) or of one of its models
    (``rate-<name>-<model>``, characters other than letters, digits, ``.``, ``_`` and
    ``-`` as ``_``)."""
    name = f"{RATE_PREFIX}{provider}"
    return f"{name}-{re.sub(r'[^A-Za-z0-9._-]', '_', model)}" if model else name


def bucket_of(limit: RateLimit) -> tuple[int, float]:
    """(slots, slot decay per second) of the Prefect limit that lets at most
    ``limit.requests`` calls into any ``limit.per_s`` seconds (see the module docstring)."""
    return 1, max(limit.requests - 1, 1) / limit.per_s


def configured_rate_limits(settings: Settings, provider: str) -> dict[str | None, RateLimit]:
    """``provider``'s rate limits: ``None`` -> its ``rate_limit``, model -> its ``model_rate_limits``."""
    config = settings.provider_config(provider)
    limits: dict[str | None, RateLimit] = {model: limit for model, limit in config.model_rate_limits.items()}
    if config.rate_limit is not None:
        limits[None] = config.rate_limit
    return limits


def _put_rate_limit(client: Any, name: str, limit: RateLimit) -> None:
    """Create the limit ``name`` for ``limit``, or set an existing one to it."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    slots, decay = bucket_of(limit)
    try:
        current = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots, active=True, slot_decay_per_second=decay))
            return
        except ObjectAlreadyExists:  # another worker made it at the same moment
            current = client.read_global_concurrency_limit_by_name(name)
    if (current.limit, current.slot_decay_per_second, current.active) != (slots, decay, True):
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=slots, slot_decay_per_second=decay, active=True))


def ensure_rate_limits(settings: Settings, providers: Iterable[str]) -> dict[str, dict[str | None, str]]:
    """Create or update the rate limits of ``providers`` from their config (the config
    wins over what the server holds); return provider -> {model or None -> limit name}
    for the providers that have one. No API call when none has a limit."""
    wanted = {provider: configured_rate_limits(settings, provider) for provider in providers}
    wanted = {provider: limits for provider, limits in wanted.items() if limits}
    if not wanted:
        return {}
    from prefect.client.orchestration import get_client  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    names: dict[str, dict[str | None, str]] = {}
    with get_client(sync_client=True) as client:
        for provider, limits in wanted.items():
            names[provider] = {}
            for model, limit in limits.items():
                names[provider][model] = rate_limit_name(provider, model)
                _put_rate_limit(client, names[provider][model], limit)
    return names


class GloballyLimitedProvider:
    """A provider whose ``generate`` first takes a slot of its rate limit (``rate_limits``:
    model or None -> limit name, from ``ensure_rate_limits``; the model's own, else the
    provider's), then, with ``hold``, holds a slot of ``provider-<name>`` on the Prefect
    server during the call.

    Every other attribute (name, model, estimate_cost, scrub, close) is the wrapped
    provider's, so the fallback chain sees the same provider. ``timeout_s`` bounds each
    wait for a slot (seconds); a timeout raises TimeoutError, which the chain records
    as a failed attempt and falls back.
    """

    def __init__(self, provider: Provider, *, timeout_s: float | None = None, hold: bool = True, rate_limits: dict[str | None, str] | None = None) -> None:
        self._provider = provider
        self._timeout_s = timeout_s
        self._hold = hold
        self._rate_limits = rate_limits or {}

    def __getattr__(self, item: str) -> Any:
        return getattr(self._provider, item)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        from prefect.concurrency.sync import concurrency, rate_limit  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

        rate = self._rate_limits.get(self._provider.model_of(request), self._rate_limits.get(None))
        if rate is not None:
            rate_limit(rate, occupy=1, timeout_seconds=self._timeout_s, strict=True)
        if not self._hold:
            return self._provider.generate(request)
        with concurrency(limit_name(self._provider.name), occupy=1, timeout_seconds=self._timeout_s, strict=True):
            return self._provider.generate(request)


def limit_providers(settings: Settings, providers: list[Provider]) -> list[Any]:
    """``providers`` wrapped in their global limits: every one when ``scale.global_limits``
    is on, else those with a rate limit; as given when neither applies."""
    hold = settings.scale.global_limits
    rates = ensure_rate_limits(settings, [p.name for p in providers])
    if hold:
        ensure_provider_limits(settings, [p.name for p in providers])
    return [GloballyLimitedProvider(p, hold=hold, rate_limits=rates.get(p.name)) if hold or p.name in rates else p for p in providers]
