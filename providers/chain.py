"""The fallback chain: providers tried in the configured order, every attempt reported.

Per provider and request: up to ``retry.max_retries`` retries of transient failures,
waiting the provider's Retry-After (or exponential backoff from ``retry.backoff_s``);
a Retry-After longer than ``retry.max_retry_after_s`` moves on to the next provider at
once. Rejections move on without retry. Auth/billing failures disable the provider
for the rest of the run. A per-provider circuit opens after
``retry.circuit_threshold`` consecutive failures and half-opens (one trial call) after
``retry.circuit_cooldown_s`` seconds. A paid call first passes the budget guard.
Every call, and every provider skipped, is reported to ``on_attempt``.
"""

from __future__ import annotations

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
        self._lock = threading.Lock()

    def allow(self) -> str | None:
        """None when a call may go ahead, else why not ("disabled: ...", "circuit open")."""
        with self._lock:
            if self.disabled_reason:
                return f"disabled: {self.disabled_reason}"
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


class ProviderChain:
    """Tries ``providers`` in order for each request until one returns a valid image."""

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        retry: RetryConfig,
        budget: BudgetGuard | None = None,
        sleep: Callable[[float], None] = time.sleep,
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

    def generate(self, request: GenerationRequest, on_attempt: Callable[[Attempt], None] = lambda a: None) -> GenerationResult:
        """One image for ``request``; raises AllProvidersFailedError listing every failure."""
        reasons: list[str] = []
        for provider in self.providers:
            result = self._try_provider(provider, request, on_attempt, reasons)
            if result is not None:
                return result
        raise AllProvidersFailedError("every provider failed: " + "; ".join(reasons), provider="chain")

    def _try_provider(
        self,
        provider: Provider,
        request: GenerationRequest,
        on_attempt: Callable[[Attempt], None],
        reasons: list[str],
    ) -> GenerationResult | None:
        circuit = self.circuits[provider.name]
        model = request.model or provider.model
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
                    self.disabled[provider.name] = message
                    return None
                if isinstance(exc, RejectedProviderError):
                    return None
                if attempt_no >= self.retry.max_retries or circuit.allow() is not None:
                    return None
                wait = exc.retry_after if exc.retry_after is not None else self.retry.backoff_s * 2**attempt_no
                if wait > self.retry.max_retry_after_s:
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
