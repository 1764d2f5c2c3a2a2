"""The budget guard: a paid call first reserves its estimated cost (USD) against the caps.

Spent money is the sum of recorded attempt costs since the start of the day / month
in the configured timezone; reservations in flight are added, under a lock, so the
concurrent image tasks of one process cannot overspend between them.
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from core.errors import BudgetExceededError
from core.settings import BudgetConfig
from storage.db import Database


def period_starts(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """Start of today and of this month in ``timezone``, as aware UTC datetimes."""
    local = now.astimezone(ZoneInfo(timezone))
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    return day.astimezone(UTC), month.astimezone(UTC)


class BudgetLedger:
    """Reserve / settle against ``budget.daily_usd`` and ``budget.monthly_usd``."""

    def __init__(self, db: Database, budget: BudgetConfig, *, timezone: str = "UTC") -> None:
        self.db = db
        self.budget = budget
        self.timezone = timezone
        self._lock = threading.Lock()
        self._pending: dict[int, float] = {}
        self._ids = itertools.count(1)
        #: Refusals of this process (provider, estimate USD), for the budget alert rule.
        self.refusals: list[tuple[str, float]] = []

    def spent(self, now: datetime | None = None) -> tuple[float, float]:
        """(today, this month) in USD, recorded attempts only."""
        day, month = period_starts(now or datetime.now(UTC), self.timezone)
        return self.db.spent_usd(day), self.db.spent_usd(month)

    def reserve(self, provider: str, estimate_usd: float) -> int:
        """Reserve ``estimate_usd``; BudgetExceededError names the cap it would pass."""
        with self._lock:
            today, month = self.spent()
            pending = sum(self._pending.values())
            for label, spent, cap in (("daily", today, self.budget.daily_usd), ("monthly", month, self.budget.monthly_usd)):
                if spent + pending + estimate_usd > cap + 1e-9:
                    self.refusals.append((provider, estimate_usd))
                    raise BudgetExceededError(
                        f"{label} budget: USD {spent:.2f} spent + {pending:.2f} reserved + {estimate_usd:.2f} for "
                        f"{provider} would pass the cap of USD {cap:.2f}"
                    )
            token = next(self._ids)
            self._pending[token] = estimate_usd
            return token

    def settle(self, token: object, actual_usd: float) -> None:
        """Release the reservation: the real cost is recorded on the attempt row."""
        with self._lock:
            self._pending.pop(token, None)  # type: ignore[call-overload]
