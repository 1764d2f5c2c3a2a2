"""Model lifecycle: which models a provider knows, their status, and what replaces them.

Providers retire models (OpenAI: https://developers.openai.com/api/docs/deprecations;
Google: https://ai.google.dev/gemini-api/docs/imagen, Imagen shut down on 2026-08-17).
Each provider declares ``model_lifecycle``: per model a ``ModelStatus`` (``active``,
``deprecated`` with a shutdown date, or ``retired``), its documented replacement and the
URL that says so. ``Provider.model_status(model)`` asks the provider's API where it tells
(OpenAI ``GET /v1/models/{model}`` and its ``shutdown_date``; Replicate ``GET
/v1/models/{owner}/{name}``; Gemini ``GET /v1beta/models/{model}``), else answers the
declared status.

* ``content-pipeline doctor`` warns of a configured model that is retired or shuts down
  within ``WARN_DAYS`` (30) days (``doctor_findings``).
* At run time an answer saying the model is gone (OpenAI 404 ``model_not_found``, a
  Gemini 404 ``NOT_FOUND`` for the model) is a ``ModelRetiredError``: an
  auth/billing-class failure, so the chain calls that provider once, disables it for the
  run, sends one alert (its message names the model and the documented replacement) and
  falls back to the next provider. The call is not billed (an HTTP error status).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Protocol

from domain.errors import AuthBillingProviderError

#: Days ahead of a shutdown date that ``doctor`` warns.
WARN_DAYS = 30

Status = Literal["active", "deprecated", "retired", "unknown"]


@dataclass(frozen=True)
class ModelStatus:
    """One model's lifecycle: ``status`` (``active``, ``deprecated``: works until
    ``shutdown``, ``retired``: refused by the API, ``unknown``: not declared and the API
    does not tell), ``shutdown`` (the date it stops, or stopped, answering), the documented
    ``replacement`` (a model id or None), ``source`` (the URL that says so) and ``note``
    (what could not be confirmed)."""

    model: str
    status: Status
    shutdown: date | None = None
    replacement: str | None = None
    source: str = ""
    note: str = ""

    def days_left(self, today: date) -> int | None:
        """Days from ``today`` to the shutdown date (negative once past), or None."""
        return None if self.shutdown is None else (self.shutdown - today).days

    def effective(self, today: date) -> Status:
        """The status on ``today``: a deprecated model past its shutdown date is retired."""
        left = self.days_left(today)
        if self.status == "deprecated" and left is not None and left <= 0:
            return "retired"
        return self.status


class ModelRetiredError(AuthBillingProviderError):
    """The provider answered that the model no longer exists (retired, shut down): the
    chain disables the provider for the run (no retry), alerts once and falls back.
    ``replacement`` is the documented successor (or None)."""

    error_class = "model_retired"

    def __init__(self, message: str, *, replacement: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.replacement = replacement


class LifecycleSource(Protocol):
    """What this module reads of a provider (providers.base.Provider has it)."""

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def model_lifecycle(self) -> dict[str, ModelStatus]: ...

    def model_status(self, model: str) -> ModelStatus: ...

    def scrub(self, text: str) -> str: ...


def retired_error(provider: LifecycleSource, model: str, detail: str, status_code: int | None) -> ModelRetiredError:
    """The ModelRetiredError for ``model`` on ``provider``: its message names the model and
    the replacement declared in ``provider.model_lifecycle`` (billed_usd 0: refused)."""
    known = provider.model_lifecycle.get(model)
    replacement = known.replacement if known else None
    advice = f"; documented replacement: {replacement}" if replacement else "; no documented replacement known"
    source = f" ({known.source})" if known and known.source else ""
    message = (
        f"model {model} is retired or unknown at {provider.name}{advice}{source}: set providers."
        f"{provider.name}.model (provider answered HTTP {status_code}: {detail})"
    )
    return ModelRetiredError(message, replacement=replacement, provider=provider.name, model=model, status_code=status_code, billed_usd=0.0)


def warning_of(status: ModelStatus, today: date, horizon_days: int = WARN_DAYS) -> str | None:
    """Why ``status`` deserves a warning on ``today`` (retired, or shutting down within
    ``horizon_days`` days), else None."""
    replacement = f"; replacement: {status.replacement}" if status.replacement else ""
    effective = status.effective(today)
    if effective == "retired":
        when = f" since {status.shutdown.isoformat()}" if status.shutdown else ""
        return f"model {status.model} is retired{when}{replacement}"
    left = status.days_left(today)
    if effective == "deprecated" and left is not None and left <= horizon_days:
        return f"model {status.model} shuts down on {status.shutdown} (in {left} days){replacement}"
    return None


def doctor_findings(provider: LifecycleSource, today: date | None = None) -> list[tuple[str, str]]:
    """``(level, line)`` pairs for ``content-pipeline doctor`` about ``provider``'s configured
    model: ``("warn", ...)`` when it is retired or shuts down within ``WARN_DAYS`` days
    (asked from the provider's API where it tells, ``Provider.model_status``), else
    ``("ok", ...)`` with its status. Never raises: a failed lookup is an ``ok`` line saying so."""
    today = today or date.today()
    model = provider.model
    try:
        status = provider.model_status(model)
    except Exception as exc:  # a lookup that fails must not break doctor: the reachability check covers it
        return [("ok", f"model {model}: status not known ({type(exc).__name__}: {provider.scrub(str(exc))[:120]})")]
    warning = warning_of(status, today)
    if warning:
        return [("warn", warning + (f" ({status.source})" if status.source else ""))]
    shutdown = f", shuts down on {status.shutdown}" if status.shutdown and status.status == "deprecated" else ""
    return [("ok", f"model {model}: {status.effective(today)}{shutdown}")]
