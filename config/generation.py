"""Configuration of generation: spending caps, slot sharing and retries across runs, A/B
selection of template variants, where post-processing runs, and scale-out across workers
(the ``budget``, ``pipeline``, ``ab``, ``processing`` and ``scale`` keys of
config/settings.py ``Settings``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

_Strict = ConfigDict(extra="forbid", allow_inf_nan=False)  # inf / nan are never a valid setting


class ProviderBudgetConfig(BaseModel):
    """Caps of one provider in USD (None: only the global caps apply)."""

    model_config = _Strict
    daily_usd: Annotated[float, Field(ge=0)] | None = None
    monthly_usd: Annotated[float, Field(ge=0)] | None = None


class BudgetConfig(BaseModel):
    """Spending caps in USD: global (``daily_usd``, ``monthly_usd``) and per provider
    (``providers: {stability: {daily_usd: 1.0}}``). Days and months are local to ``timezone``."""

    model_config = _Strict
    daily_usd: Annotated[float, Field(ge=0)] = 5.0
    monthly_usd: Annotated[float, Field(ge=0)] = 100.0
    providers: dict[str, ProviderBudgetConfig] = Field(default_factory=dict)
    #: A reservation not settled after this long (its process died mid-call) is counted as spent.
    reservation_timeout_s: Annotated[float, Field(gt=0)] = 7200.0


class PipelineConfig(BaseModel):
    """How runs share image slots (storage/ledger.py) and retry them across runs.

    ``lease_s``: seconds a run's claim on a slot lasts without renewal (renewed every
    ``lease_s / 3`` while the run works): after a crash another run takes the slot over
    once it has expired. ``max_attempts``: generation attempts per slot over all runs
    before a transient failure (or a placeholder) is no longer retried (``--retry-failed``
    still retries it). ``wait_for_others_s``: how long a run waits for slots another live
    run is working on before it reports them as not done.
    """

    model_config = _Strict
    lease_s: Annotated[float, Field(ge=1, le=86400)] = 120.0
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    wait_for_others_s: Annotated[float, Field(ge=0, le=86400)] = 1800.0


class ABConfig(BaseModel):
    """A/B selection of template variants (generation.ab): ``thompson`` sampling over Beta
    posteriors (prior ``prior_alpha``, ``prior_beta``), or ``uniform``."""

    model_config = _Strict
    strategy: Literal["thompson", "uniform"] = "thompson"
    prior_alpha: Annotated[float, Field(gt=0)] = 1.0
    prior_beta: Annotated[float, Field(gt=0)] = 1.0


class ProcessingConfig(BaseModel):
    """Where post-processing runs (the watermark, the lossless original, the renditions,
    quality and pHash): ``processes`` (the default: a pool of ``workers`` spawned
    processes, 0 = one per CPU, started at the first provider image) or ``threads`` (the
    image's own task thread, at most ``workers`` images at once). In the pool that work
    runs beside the run's own process instead of sharing its GIL: 100 images from an
    instant provider, flow run 40.5 / 41.3 s against 49.4 / 50.2 s in threads, min /
    median of 3 on the 2-core machine (benchmarks/RESULTS-flow.md, 2026-12-05).
    Placeholders (our own small renderings) and renditions that need a learned or remote
    upscaler (its model stays loaded once, in the run's process) stay in the thread, so
    an offline run never starts the pool (two workers hold about 135 MiB)."""

    model_config = _Strict
    executor: Literal["processes", "threads"] = "processes"
    workers: Annotated[int, Field(ge=0, le=64)] = 0


class ScaleConfig(BaseModel):
    """Scale-out across worker processes and machines (README: the many-machine path).

    ``global_limits``: when true, every provider call holds a slot of the Prefect global
    concurrency limit ``provider-<name>`` (enforced by the Prefect server, shared by
    every worker); when false (the default) only the in-process ``concurrency``
    semaphore applies. ``provider_limits``: slots per provider for limits that do not
    exist yet on the server (default: ``concurrency``); limits already on the server
    (``prefect gcl create provider-automatic1111 --limit 2``) are kept as they are.
    """

    model_config = _Strict
    global_limits: bool = False
    provider_limits: dict[str, Annotated[int, Field(ge=1, le=1000)]] = Field(default_factory=dict)
