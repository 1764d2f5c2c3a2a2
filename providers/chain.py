"""The fallback chain: providers tried in the configured order, every attempt reported.

Per provider and request: up to ``retry.max_retries`` retries of transient failures,
waiting the provider's Retry-After (or exponential backoff from ``retry.backoff_s``);
a Retry-After longer than ``retry.max_retry_after_s`` moves on to the next provider at
once, and that provider is not called again (for any image) before it is over. Rejections move on without retry. Auth/billing failures disable the provider
for the rest of the run. A per-provider circuit opens after
``retry.circuit_threshold`` consecutive failures and half-opens (one trial call) after
``retry.circuit_cooldown_s`` seconds. A paid call first passes the budget guard.
Every call, and every provider skipped, is reported to ``on_attempt``.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from core.domain import Attempt, GenerationRequest, GenerationResult
from core.quota import quota_hints
from core.errors import (
    AllProvidersFailedError,
    AuthBillingProviderError,
    BudgetExceededError,
    ProviderError,
    RejectedProviderError,
)
from core.settings import RetryConfig
from providers.base import Provider


class BudgetGuard(Protocol):
    """Reserves an estimated cost (USD) before a paid call, settles it after."""

    def reserve(self, provider: str, estimate_usd: float) -> object:
        """Return a reservation token; raise BudgetExceededError when a cap would be passed."""

    def settle(self, token: object, actual_usd: float) -> None:
        """Replace the reservation by the real cost (0 releases it)."""


class Circuit:
    """Consecutive-failure circuit breaker of one provider (thread-safe)."""

    def __init__(self, threshold: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.disabled_reason: str | None = None
        #: No call before this clock time: the provider's Retry-After we did not wait for.
        self.not_before: float | None = None
        self._lock = threading.Lock()

    def allow(self) -> str | None:
        """None when a call may go ahead, else why not ("disabled: ...", "retry-after: ...",
        "circuit open")."""
        with self._lock:
            if self.disabled_reason:
                return f"disabled: {self.disabled_reason}"
            if self.not_before is not None:
                left = self.not_before - self.clock()
                if left > 0:
                    return f"retry-after: asked to wait {left:.0f} s more"
                self.not_before = None
            if self.opened_at is None:
                return None
            if self.clock() - self.opened_at >= self.cooldown_s:
                self.opened_at = self.clock()  # half-open: let this one trial through
                return None
            return "circuit open"

    def success(self) -> None:
        with self._lock:
            self.failures = 0
            self.opened_at = None

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.failures >= self.threshold:
                self.opened_at = self.clock()

    def disable(self, reason: str) -> None:
        with self._lock:
            self.disabled_reason = reason

    def hold(self, seconds: float) -> None:
        """Refuse calls for ``seconds`` (a Retry-After the chain did not wait for)."""
        with self._lock:
            until = self.clock() + seconds
            self.not_before = max(self.not_before or 0.0, until)


class ProviderChain:
    """Tries ``providers`` in order for each request until one returns a valid image."""

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        retry: RetryConfig,
        budget: BudgetGuard | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_disable: Callable[[str, str], None] | None = None,
    ) -> None:
        if not providers:
            raise ValueError("a provider chain needs at least one provider")
        self.providers = list(providers)
        self.retry = retry
        self.budget = budget
        self.sleep = sleep
        self.circuits = {p.name: Circuit(retry.circuit_threshold, retry.circuit_cooldown_s) for p in self.providers}
        #: Providers disabled for auth/billing reasons during this run (name -> message).
        self.disabled: dict[str, str] = {}
        #: Called once with (provider, message) when a provider is disabled (alerting).
        self.on_disable = on_disable

    def generate(self, request: GenerationRequest, on_attempt: Callable[[Attempt], None] = lambda a: None) -> GenerationResult:
        """One image for ``request``; raises AllProvidersFailedError listing every failure."""
        reasons: list[str] = []
        for provider in self.providers:
            result = self._try_provider(provider, request, on_attempt, reasons)
            if result is not None:
                return result
        raise AllProvidersFailedError("every provider failed: " + "; ".join(reasons), provider="chain")

    def generate_batch(
        self,
        requests: Sequence[GenerationRequest],
        on_attempt: Callable[[int, Attempt], None] = lambda i, a: None,
    ) -> list[GenerationResult | AllProvidersFailedError]:
        """One result per request (or the AllProvidersFailedError of that request), in order.

        A provider with a ``generate_batch`` method (the local diffusers pipelines) gets
        every request still pending in one call: the variations of one template render
        as one batch. Requests it fails go on down the chain one by one, classified as in
        ``generate`` (a failed batch image is not retried on the same provider).
        ``on_attempt(index, attempt)`` reports each attempt with its request's index.
        """
        results: list[GenerationResult | None] = [None] * len(requests)
        reasons: list[list[str]] = [[] for _ in requests]
        for provider in self.providers:
            pending = []
            for i, r in enumerate(results):
                reason = self.unsuitable(provider, requests[i]) if r is None else None
                if reason:
                    on_attempt(i, Attempt(provider.name, requests[i].model or provider.model, "skipped", 0.0,
                                          error_class="unsupported", error=reason))
                    reasons[i].append(f"{provider.name}: {reason}")
                elif r is None:
                    pending.append(i)
            if not pending:
                continue
            batch = getattr(provider, "generate_batch", None)
            if batch is None or len(pending) == 1:
                for i in pending:
                    results[i] = self._try_provider(provider, requests[i], functools.partial(on_attempt, i), reasons[i])
                continue
            self._try_batch(provider, batch, requests, pending, results, on_attempt, reasons)
        return [r if r is not None else AllProvidersFailedError(
            "every provider failed: " + "; ".join(reasons[i]), provider="chain") for i, r in enumerate(results)]

    def _try_batch(
        self,
        provider: Provider,
        batch: Callable[[list[GenerationRequest]], list[GenerationResult | ProviderError]],
        requests: Sequence[GenerationRequest],
        pending: list[int],
        results: list[GenerationResult | None],
        on_attempt: Callable[[int, Attempt], None],
        reasons: list[list[str]],
    ) -> None:
        circuit = self.circuits[provider.name]
        blocked = circuit.allow()
        if blocked:
            for i in pending:
                model = requests[i].model or provider.model
                on_attempt(i, Attempt(provider.name, model, "skipped", 0.0, error_class="circuit_open", error=blocked))
                reasons[i].append(f"{provider.name}: {blocked}")
            return
        tokens: dict[int, object] = {}
        chosen: list[int] = []
        for i in pending:
            estimate = provider.estimate_cost(requests[i])
            if estimate > 0 and self.budget is not None:
                try:
                    tokens[i] = self.budget.reserve(provider.name, estimate)
                except BudgetExceededError as exc:
                    on_attempt(i, Attempt(provider.name, requests[i].model or provider.model, "skipped", 0.0,
                                          error_class="budget", error=str(exc)))
                    reasons[i].append(f"{provider.name}: {exc}")
                    continue
            chosen.append(i)
        if not chosen:
            return
        started = time.monotonic()
        try:
            outcomes = batch([requests[i] for i in chosen])
        except Exception as exc:
            outcomes = [exc] * len(chosen)  # type: ignore[list-item]
        latency = (time.monotonic() - started) / len(chosen)
        for i, outcome in zip(chosen, outcomes, strict=True):
            model = requests[i].model or provider.model
            if isinstance(outcome, GenerationResult):
                circuit.success()
                on_attempt(i, Attempt(outcome.provider, outcome.model, "success", outcome.latency_s,
                                      cost_usd=outcome.cost_usd))
                results[i] = outcome
                actual = outcome.cost_usd
            else:
                error_class = outcome.error_class if isinstance(outcome, ProviderError) else "provider_bug"
                message = provider.scrub(str(outcome) if isinstance(outcome, ProviderError)
                                         else f"{type(outcome).__name__}: {outcome}")
                status = outcome.status_code if isinstance(outcome, ProviderError) else None
                on_attempt(i, Attempt(provider.name, model, "failed", latency, error_class=error_class, error=message,
                                      http_status=status))
                reasons[i].append(f"{provider.name}: {message}")
                circuit.failure()
                if isinstance(outcome, AuthBillingProviderError) and provider.name not in self.disabled:
                    circuit.disable(message)
                    self.disabled[provider.name] = message
                    if self.on_disable is not None:
                        self.on_disable(provider.name, message)
                actual = 0.0
            if i in tokens:
                self.budget.settle(tokens[i], actual)  # type: ignore[union-attr]

    @staticmethod
    def unsuitable(provider: Provider, request: GenerationRequest) -> str | None:
        """Why ``provider`` is skipped for ``request``: another provider pinned by the
        template, or an input it cannot take (img2img, a mask, LoRAs: ``Provider.cannot``).
        Placeholders are never skipped: they are the last resort."""
        if provider.is_placeholder:
            return None
        if request.provider and request.provider != provider.name:
            return f"the template pins provider {request.provider}"
        return provider.cannot(request)

    def _try_provider(
        self,
        provider: Provider,
        request: GenerationRequest,
        on_attempt: Callable[[Attempt], None],
        reasons: list[str],
    ) -> GenerationResult | None:
        circuit = self.circuits[provider.name]
        model = request.model or provider.model
        reason = self.unsuitable(provider, request)
        if reason:
            on_attempt(Attempt(provider.name, model, "skipped", 0.0, error_class="unsupported", error=reason))
            reasons.append(f"{provider.name}: {reason}")
            return None
        blocked = circuit.allow()
        if blocked:
            on_attempt(Attempt(provider.name, model, "skipped", 0.0, error_class="circuit_open", error=blocked))
            reasons.append(f"{provider.name}: {blocked}")
            return None
        for attempt_no in range(self.retry.max_retries + 1):
            estimate = provider.estimate_cost(request)
            token = None
            if estimate > 0 and self.budget is not None:
                try:
                    token = self.budget.reserve(provider.name, estimate)
                except BudgetExceededError as exc:
                    on_attempt(Attempt(provider.name, model, "skipped", 0.0, error_class="budget", error=str(exc)))
                    reasons.append(f"{provider.name}: {exc}")
                    return None
            started = time.monotonic()
            try:
                result = provider.generate(request)
            except ProviderError as exc:
                latency = time.monotonic() - started
                if token is not None:
                    self.budget.settle(token, 0.0)  # type: ignore[union-attr]
                message = provider.scrub(str(exc))
                on_attempt(
                    Attempt(provider.name, exc.model or model, "failed", latency, error_class=exc.error_class,
                            error=message, http_status=exc.status_code, **quota_hints(getattr(exc, "headers", None)))
                )
                reasons.append(f"{provider.name}: {message}")
                circuit.failure()
                if isinstance(exc, AuthBillingProviderError):
                    circuit.disable(message)
                    first = provider.name not in self.disabled
                    self.disabled[provider.name] = message
                    if first and self.on_disable is not None:
                        self.on_disable(provider.name, message)
                    return None
                if isinstance(exc, RejectedProviderError):
                    return None
                wait = exc.retry_after if exc.retry_after is not None else self.retry.backoff_s * 2**attempt_no
                if attempt_no >= self.retry.max_retries or wait > self.retry.max_retry_after_s:
                    if exc.retry_after:
                        circuit.hold(exc.retry_after)  # honoured: no call before it is over, next provider now
                    return None
                if circuit.allow() is not None:
                    return None
                self.sleep(wait)
                continue
            except Exception as exc:  # a bug in an adapter must not stop the chain
                latency = time.monotonic() - started
                if token is not None:
                    self.budget.settle(token, 0.0)  # type: ignore[union-attr]
                message = provider.scrub(f"{type(exc).__name__}: {exc}")
                on_attempt(Attempt(provider.name, model, "failed", latency, error_class="provider_bug", error=message))
                reasons.append(f"{provider.name}: {message}")
                circuit.failure()
                return None
            circuit.success()
            # record the cost before releasing the reservation: never a moment uncounted
            on_attempt(Attempt(result.provider, result.model, "success", result.latency_s, cost_usd=result.cost_usd,
                               **quota_hints(result.metadata)))
            if token is not None:
                self.budget.settle(token, result.cost_usd)  # type: ignore[union-attr]
            return result
        return None

    def close(self) -> None:
        for provider in self.providers:
            provider.close()
