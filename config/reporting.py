"""Configuration of reporting: the alert rules (the ``alerts`` key of config/settings.py
``Settings``; the Apprise URLs are secrets, config/secrets.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

_Strict = ConfigDict(extra="forbid", allow_inf_nan=False)  # inf / nan are never a valid setting


class AlertsConfig(BaseModel):
    """Alert rules. URLs are secrets: ``APPRISE_URLS`` in the environment."""

    model_config = _Strict
    consecutive_failures: Annotated[int, Field(ge=1, le=1000)] = 3
    cooldown_s: Annotated[float, Field(ge=0)] = 3600.0
    #: The rules are also evaluated while a run goes, at most every this many seconds (0: after
    #: every image), so that a provider failing early in a long batch alerts before the run ends.
    during_run_every_s: Annotated[float, Field(ge=0, le=86400)] = 30.0
    #: Budget alerts when spending reaches these fractions of a cap (0.8 = 80 %).
    budget_thresholds: list[Annotated[float, Field(gt=0, le=1)]] = Field(default_factory=lambda: [0.8, 1.0])
    #: A provider is slow when its last call took more than ``latency_factor`` x the median
    #: of its previous ``latency_window`` successful calls (at least ``latency_min_samples``).
    latency_factor: Annotated[float, Field(gt=1)] = 3.0
    latency_window: Annotated[int, Field(ge=3, le=10000)] = 50
    latency_min_samples: Annotated[int, Field(ge=2, le=10000)] = 5
    #: Quota alert when a provider reports fewer than this fraction of its calls left.
    quota_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1
