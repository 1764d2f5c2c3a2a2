"""The fallback chain: providers tried in the configured order, every attempt reported.

Per provider and request: up to ``retry.max_retries`` retries of transient failures,
waiting the provider's Retry-After (or exponential backoff from ``retry.backoff_s``);
a Retry-After longer than ``retry.max_retry_after_s`` moves on to the next provider at
once, and that provider is not called again (for any image) before it is over. Rejections move on without retry. Auth/billing failures disable the provider
for the rest of the run. A per-provider circuit opens after
``retry.circuit_threshold`` consecutive failures and half-opens (one trial call) after
``retry.circuit_cooldown_s`` seconds. A provider lacking a secret it needs
(``Provider.missing_secrets()``) is never called: each request records it skipped with
the error ``"<VARIABLE> not set"``. Every call, and every provider skipped, is
reported to ``on_attempt``.

Money. A paid call first reserves the most it can cost (``Provider.max_cost``: per
image, or per second / token up to the call's timeout) with the budget guard, so its
settlement cannot pass a cap. A failed call is settled at what it was billed
(``failed_cost``): the amount the adapter read from the provider's answer when it
knows it (``ProviderError.billed_usd``: e.g. a failed Replicate prediction's GPU
seconds x the price per second), else its estimate when the provider may have billed
it (``may_have_billed``: a 2xx answer whose output our checks refused, an answer lost
after the request was sent), else 0 (an error of ours, not a ProviderError, is never
billed), which releases the reservation. An output that fails a deterministic check (``invalid_output``:
not an image, truncated, blank, a size mismatch; a filtered or unsafe output) is not
retried on the same provider: the next provider gets the request.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

from domain.model import Attempt, GenerationRequest, GenerationResult
from providers.quota import quota_hints
from domain.errors import (
    AllProvidersFailedError,
    AuthBillingProviderError,
    BudgetExceededError,
    InvalidOutputError,
    ProviderError,
    RejectedProviderError,
)
from providers.base import Provider, recording_jobs


class RetryConfig(BaseModel):
    """Retries and circuit breaking of the provider chain (seconds)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    max_retries: Annotated[int, Field(ge=0, le=10)] = 1
    backoff_s: Annotated[float, Field(ge=0, le=60)] = 1.0
    max_retry_after_s: Annotated[float, Field(ge=0, le=600)] = 30.0
    circuit_threshold: Annotated[int, Field(ge=1, le=100)] = 3
    circuit_cooldown_s: Annotated[float, Field(ge=0)] = 300.0


class BudgetGuard(Protocol):
    """Reserves an estimated cost (USD) before a paid call, settles it after."""

    def reserve(self, provider: str, estimate_usd: float, *, model: str | None = None) -> object:
        """Return a reservation token for a call of ``provider`` (``model``); raise
        BudgetExceededError when a cap would be passed."""

    def settle(self, token: object, actual_usd: float) -> None:
        """Replace the reservation by the real cost (0 releases it)."""


class PendingJob(Protocol):
    """A job an earlier call of this request left at a provider (killed or timed out while it
    ran): ``job_id``, the ``reservation_id`` its cost was reserved (and counted) under, and
    ``cost_usd``, what the budget counted for it."""

    job_id: str
    reservation_id: int | None
    cost_usd: float


class JobLog(Protocol):
    """Optional methods of a BudgetGuard that keeps in-flight attempt rows (the orchestrator's,
    generation/generate.py ``ClaimBudget``): the chain records each job id there and, before
    paying a provider again, asks for a job of it still to be polled."""

    def record_job(self, token: object, job_id: str) -> None:
        """Write ``job_id`` on the in-flight attempt row of reservation ``token`` (at once)."""

    def pending_job(self, provider: str) -> PendingJob | None:
        """The newest job of ``provider`` for this request still to be polled, or None."""

    def rebill(self, token: int, actual_usd: float) -> None:
        """Count reservation ``token`` at ``actual_usd``, what its resumed job was billed."""


def may_have_billed(exc: BaseException) -> bool:
    """True when a failed call may still have been charged: the provider answered with
    success and our output check refused the result (InvalidOutputError, a filtered or
    unsafe output without an HTTP error status), or the request reached it and the answer
    was lost (read timeout, connection dropped mid-answer). An HTTP error status (>= 400)
    or a connection that never opened was not charged. An error that is ours and not a
    provider's answer (any exception other than ProviderError: a client closed under a
    call, a database error, an adapter bug) is never counted as a provider's bill."""
    if not isinstance(exc, ProviderError):
        return False
    if exc.status_code is not None and exc.status_code >= 400:
        return False
    if isinstance(exc, (InvalidOutputError, RejectedProviderError)) and not isinstance(exc, AuthBillingProviderError):
        return True
    return isinstance(exc.__cause__, (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError))


def failed_cost(provider: Provider, request: GenerationRequest, exc: BaseException) -> float:
    """USD to count for a failed call of ``provider`` for ``request``: the billed amount
    the adapter put on the error (``ProviderError.billed_usd``, exact when the provider
    reported it), else ``provider.estimate_cost(request)`` when ``may_have_billed``,
    else 0.0."""
    billed = exc.billed_usd if isinstance(exc, ProviderError) else None
    if billed is not None:
        return max(0.0, float(billed))
    return provider.estimate_cost(request) if may_have_billed(exc) else 0.0


class Circuit:
    """Consecutive-failure circuit breaker of one provider (thread-safe)."""

    def __init__(self, threshold: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.disabled_reason: str | None = None
        #: "<VARIABLE> not set" when the provider lacks a secret it needs: never called.
        self.missing: str | None = None
        #: No call before this clock time: the provider's Retry-After we did not wait for.
        self.not_before: float | None = None
        self._lock = threading.Lock()

    def allow(self) -> str | None:
        """None when a call may go ahead, else why not ("disabled: ...", "retry-after: ...",
        "circuit open")."""
        with self._lock:
            if self.missing:
                return self.missing
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


def _skip_class(reason: str) -> str:
    """The attempt's error class for a provider the chain did not call."""
    return "missing_secret" if reason.endswith(" not set") else "circuit_open"


def _token_id(token: object) -> int | None:
    """The reservation id of a budget token (the ledger's are ints), else None."""
    return token if isinstance(token, int) and not isinstance(token, bool) else None


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
        for provider in self.providers:  # a provider without its key is never called (an empty value is no key)
            missing: list[str] = getattr(provider, "missing_secrets", list)()
            if missing:
                self.circuits[provider.name].missing = f"{missing[0]} not set"
        #: Providers disabled for auth/billing reasons during this run (name -> message).
        self.disabled: dict[str, str] = {}
        #: Called once with (provider, message) when a provider is disabled (alerting).
        self.on_disable = on_disable

    def generate(
        self, request: GenerationRequest, on_attempt: Callable[[Attempt], None] = lambda a: None, *, budget: BudgetGuard | None = None
    ) -> GenerationResult:
        """One image for ``request``; raises AllProvidersFailedError listing every failure.

        ``budget`` replaces the chain's guard for this request (the orchestrator passes one
        bound to the image's claim, which settles in the image's own transaction)."""
        reasons: list[str] = []
        guard = budget if budget is not None else self.budget
        for provider in self.providers:
            result = self._try_provider(provider, request, on_attempt, reasons, guard)
            if result is not None:
                return result
        raise AllProvidersFailedError("every provider failed: " + "; ".join(reasons), provider="chain")

    def generate_batch(
        self,
        requests: Sequence[GenerationRequest],
        on_attempt: Callable[[int, Attempt], None] = lambda i, a: None,
        *,
        budgets: Sequence[BudgetGuard | None] | None = None,
    ) -> list[GenerationResult | AllProvidersFailedError]:
        """One result per request (or the AllProvidersFailedError of that request), in order.

        ``budgets``: one guard per request replacing the chain's (the orchestrator passes
        the guard of each image's claim, as ``generate``'s ``budget``).

        A provider with a ``generate_batch`` method (the local diffusers pipelines) gets
        every request still pending in one call: the variations of one template render
        as one batch. Requests it fails go on down the chain one by one, classified as in
        ``generate`` (a failed batch image is not retried on the same provider).
        ``on_attempt(index, attempt)`` reports each attempt with its request's index.
        """
        results: list[GenerationResult | None] = [None] * len(requests)
        reasons: list[list[str]] = [[] for _ in requests]
        guards = list(budgets) if budgets is not None else [self.budget] * len(requests)
        for provider in self.providers:
            pending = []
            for i, r in enumerate(results):
                reason = self.unsuitable(provider, requests[i]) if r is None else None
                if reason:
                    on_attempt(i, Attempt(provider.name, requests[i].model or provider.model, "skipped", 0.0, error_class="unsupported", error=reason))
                    reasons[i].append(f"{provider.name}: {reason}")
                elif r is None:
                    pending.append(i)
            if not pending:
                continue
            batch = getattr(provider, "generate_batch", None) if getattr(provider, "renders_batches", True) else None
            if batch is None or len(pending) == 1:
                for i in pending:
                    results[i] = self._try_provider(provider, requests[i], functools.partial(on_attempt, i), reasons[i], guards[i])
                continue
            self._try_batch(provider, batch, requests, pending, results, on_attempt, reasons, guards)
        return [
            r if r is not None else AllProvidersFailedError("every provider failed: " + "; ".join(reasons[i]), provider="chain") for i, r in enumerate(results)
        ]

    def _try_batch(
        self,
        provider: Provider,
        batch: Callable[[list[GenerationRequest]], list[GenerationResult | ProviderError]],
        requests: Sequence[GenerationRequest],
        pending: list[int],
        results: list[GenerationResult | None],
        on_attempt: Callable[[int, Attempt], None],
        reasons: list[list[str]],
        guards: Sequence[BudgetGuard | None],
    ) -> None:
        circuit = self.circuits[provider.name]
        blocked = circuit.allow()
        if blocked:
            for i in pending:
                model = requests[i].model or provider.model
                on_attempt(i, Attempt(provider.name, model, "skipped", 0.0, error_class=_skip_class(blocked), error=blocked))
                reasons[i].append(f"{provider.name}: {blocked}")
            return
        tokens, chosen = _reserve_each(provider, requests, pending, on_attempt, reasons, guards)
        if not chosen:
            return
        started = time.monotonic()
        try:
            outcomes = batch([requests[i] for i in chosen])
        except Exception as exc:
            outcomes = [exc] * len(chosen)  # type: ignore[list-item]
        latency = (time.monotonic() - started) / len(chosen)
        for i, outcome in zip(chosen, outcomes, strict=True):
            if isinstance(outcome, GenerationResult):
                circuit.success()
                on_attempt(
                    i,
                    Attempt(outcome.provider, outcome.model, "success", outcome.latency_s, cost_usd=outcome.cost_usd, reservation_id=_token_id(tokens.get(i))),
                )
                results[i] = outcome
                actual = outcome.cost_usd
            else:
                actual = self._batch_failure(provider, requests[i], outcome, latency, functools.partial(on_attempt, i), reasons[i], _token_id(tokens.get(i)))
            if i in tokens:
                guards[i].settle(tokens[i], actual)  # type: ignore[union-attr]

    def _batch_failure(
        self,
        provider: Provider,
        request: GenerationRequest,
        outcome: BaseException,
        latency: float,
        on_attempt: Callable[[Attempt], None],
        reasons: list[str],
        reservation_id: int | None = None,
    ) -> float:
        """Record one failed request of a batch (its attempt, its reason, the circuit; auth or
        billing disables the provider); returns its cost in USD."""
        circuit = self.circuits[provider.name]
        error = outcome if isinstance(outcome, ProviderError) else None
        message = provider.scrub(str(outcome) if error else f"{type(outcome).__name__}: {outcome}")
        actual = failed_cost(provider, request, outcome)
        on_attempt(
            Attempt(
                provider.name,
                request.model or provider.model,
                "failed",
                latency,
                cost_usd=actual,
                error_class=error.error_class if error else "provider_bug",
                error=message,
                http_status=error.status_code if error else None,
                reservation_id=reservation_id,
            )
        )
        reasons.append(f"{provider.name}: {message}")
        circuit.failure()
        if isinstance(outcome, AuthBillingProviderError) and provider.name not in self.disabled:
            circuit.disable(message)
            self.disabled[provider.name] = message
            if self.on_disable is not None:
                self.on_disable(provider.name, message)
        return actual

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

    def _retry_wait(self, provider: Provider, error: ProviderError | None, message: str, attempt_no: int) -> float | None:
        """Seconds to wait before trying ``provider`` again after a failed call, or None to
        move on: a bug (not a ProviderError), auth or billing (the provider is disabled), a
        deterministic refusal, retries used up, a Retry-After too long (the circuit holds
        it), or an open circuit."""
        circuit = self.circuits[provider.name]
        if error is None:
            return None
        if isinstance(error, AuthBillingProviderError):
            circuit.disable(message)
            first = provider.name not in self.disabled
            self.disabled[provider.name] = message
            if first and self.on_disable is not None:
                self.on_disable(provider.name, message)
            return None
        if isinstance(error, (RejectedProviderError, InvalidOutputError)):
            return None  # deterministic: the same request gives the same refusal here
        wait = error.retry_after if error.retry_after is not None else self.retry.backoff_s * 2**attempt_no
        if attempt_no >= self.retry.max_retries or wait > self.retry.max_retry_after_s:
            if error.retry_after:
                circuit.hold(error.retry_after)  # honoured: no call before it is over, next provider now
            return None
        if circuit.allow() is not None:
            return None
        return wait

    def _try_provider(
        self,
        provider: Provider,
        request: GenerationRequest,
        on_attempt: Callable[[Attempt], None],
        reasons: list[str],
        budget: BudgetGuard | None = None,
    ) -> GenerationResult | None:
        circuit = self.circuits[provider.name]
        model = request.model or provider.model
        if self._skipped(provider, request, model, on_attempt, reasons):
            return None
        ended, resumed = self._resume(provider, request, on_attempt, reasons, budget)
        if ended:
            return resumed
        for attempt_no in range(self.retry.max_retries + 1):
            bound = provider.max_cost(request)
            token = None
            if bound > 0 and budget is not None:
                try:
                    token = budget.reserve(provider.name, bound, model=model)
                except BudgetExceededError as exc:
                    on_attempt(Attempt(provider.name, model, "skipped", 0.0, error_class="budget", error=str(exc)))
                    reasons.append(f"{provider.name}: {exc}")
                    return None
            started = time.monotonic()
            jobs: list[str] = []
            try:
                with recording_jobs(self._job_recorder(budget, token, jobs)):
                    result = provider.generate(request)
            except Exception as exc:
                latency = time.monotonic() - started
                error = exc if isinstance(exc, ProviderError) else None
                # a call the provider billed (or may have) is counted, whatever our output check said
                cost = failed_cost(provider, request, exc)
                message = provider.scrub(str(exc) if error else f"{type(exc).__name__}: {exc}")
                hints = quota_hints(getattr(exc, "headers", None) if error else None)
                # the cost is recorded before the reservation is settled: never a moment uncounted
                on_attempt(
                    Attempt(
                        provider.name,
                        (error.model if error else None) or model,
                        "pending" if error is not None and error.pending_job else "failed",
                        latency,
                        cost_usd=cost,
                        error_class=error.error_class if error else "provider_bug",
                        error=message,
                        http_status=error.status_code if error else None,
                        **hints,
                        job_id=jobs[-1] if jobs else None,
                        reservation_id=_token_id(token),
                    )
                )
                if token is not None:
                    budget.settle(token, cost)  # type: ignore[union-attr]
                reasons.append(f"{provider.name}: {message}")
                circuit.failure()
                wait = self._retry_wait(provider, error, message, attempt_no)
                if wait is None:
                    return None
                self.sleep(wait)
                continue
            circuit.success()
            # record the cost before releasing the reservation: never a moment uncounted
            on_attempt(
                Attempt(
                    result.provider,
                    result.model,
                    "success",
                    result.latency_s,
                    cost_usd=result.cost_usd,
                    **quota_hints(result.metadata),
                    job_id=jobs[-1] if jobs else None,
                    reservation_id=_token_id(token),
                )
            )
            if token is not None:
                budget.settle(token, result.cost_usd)  # type: ignore[union-attr]
            return result
        return None

    def _skipped(self, provider: Provider, request: GenerationRequest, model: str | None, on_attempt: Callable[[Attempt], None], reasons: list[str]) -> bool:
        """Record why ``provider`` is not called for ``request`` (an input it cannot take, a
        pinned other provider, an open circuit or a disabled provider); False when it is called."""
        reason = self.unsuitable(provider, request)
        error_class = "unsupported"
        if not reason:
            reason = self.circuits[provider.name].allow()
            error_class = _skip_class(reason) if reason else ""
        if not reason:
            return False
        on_attempt(Attempt(provider.name, model, "skipped", 0.0, error_class=error_class, error=reason))
        reasons.append(f"{provider.name}: {reason}")
        return True

    @staticmethod
    def _job_recorder(budget: BudgetGuard | None, token: object, jobs: list[str]) -> Callable[[str], None]:
        """The listener of one call's job ids: kept in ``jobs`` and written at once on the
        call's in-flight attempt row (``JobLog.record_job``) when the guard keeps them."""
        record = getattr(budget, "record_job", None) if token is not None else None

        def listen(job_id: str) -> None:
            jobs.append(job_id)
            if record is not None:
                record(token, job_id)

        return listen

    def _resume(
        self, provider: Provider, request: GenerationRequest, on_attempt: Callable[[Attempt], None], reasons: list[str], budget: BudgetGuard | None
    ) -> tuple[bool, GenerationResult | None]:
        """Poll the job an earlier call of ``request`` left at ``provider`` (``Provider.resume``)
        instead of paying again. Its cost was counted when it was sent (no new reservation);
        a result is counted at what it was billed (``JobLog.rebill`` corrects its reservation). Returns (True, the result); (True, None) when
        the job is still running at our timeout (not resubmitted: the next provider); (False,
        None) when there is no job to poll or it ended without an image (a new call may be made)."""
        pending = getattr(budget, "pending_job", None) if provider.resumable else None
        job: PendingJob | None = pending(provider.name) if pending is not None else None
        if job is None:
            return False, None
        model = request.model or provider.model
        started = time.monotonic()
        try:
            result = provider.resume(job.job_id, request)
        except ProviderError as exc:
            message = provider.scrub(f"resumed job {job.job_id}: {exc}")
            on_attempt(
                Attempt(
                    provider.name,
                    exc.model or model,
                    "pending" if exc.pending_job else "failed",
                    time.monotonic() - started,
                    cost_usd=job.cost_usd,
                    error_class=exc.error_class,
                    error=message,
                    http_status=exc.status_code,
                    job_id=job.job_id,
                    reservation_id=job.reservation_id,
                )
            )
            if exc.pending_job:
                reasons.append(f"{provider.name}: {message}")
                return True, None
            return False, None
        self.circuits[provider.name].success()
        rebill = getattr(budget, "rebill", None) if job.reservation_id is not None else None
        cost = job.cost_usd
        if rebill is not None:  # what the job was billed replaces what its reservation counted
            rebill(job.reservation_id, result.cost_usd)
            cost = result.cost_usd
        on_attempt(
            Attempt(
                result.provider,
                result.model,
                "success",
                result.latency_s,
                cost_usd=cost,
                job_id=job.job_id,
                reservation_id=job.reservation_id,
                error=f"resumed job {job.job_id}",
            )
        )
        return True, result

    def close(self) -> None:
        for provider in self.providers:
            provider.close()


def _reserve_each(
    provider: Provider,
    requests: Sequence[GenerationRequest],
    pending: list[int],
    on_attempt: Callable[[int, Attempt], None],
    reasons: list[list[str]],
    guards: Sequence[BudgetGuard | None],
) -> tuple[dict[int, object], list[int]]:
    """Reserve each pending request's worst-case cost (USD) on its budget guard: the
    reservation tokens by index, and the indexes that go into the batch (a request over
    its budget is recorded as skipped and left out)."""
    tokens: dict[int, object] = {}
    chosen: list[int] = []
    for i in pending:
        bound = provider.max_cost(requests[i])
        guard = guards[i]
        if bound > 0 and guard is not None:
            try:
                tokens[i] = guard.reserve(provider.name, bound)
            except BudgetExceededError as exc:
                on_attempt(i, Attempt(provider.name, requests[i].model or provider.model, "skipped", 0.0, error_class="budget", error=str(exc)))
                reasons[i].append(f"{provider.name}: {exc}")
                continue
        chosen.append(i)
    return tokens, chosen
