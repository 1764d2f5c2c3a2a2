"""Stage 8: alert rules over the recorded data, delivered through Apprise.

Rules (each deduplicated per scope with ``alerts.cooldown_s``):

* ``consecutive-failures``: a real provider's last attempts are more than
  ``alerts.consecutive_failures`` failures in a row (scope: the provider);
* ``images-failed``: more than that many images in a row ended ``failed``;
* ``daily-budget``: today's spending reached ``budget.daily_usd``, or a paid call
  was refused by the cap (scope: the local date).

Every raised alert is stored (``alerts`` table) with ``delivered`` telling whether an
Apprise URL took it; with no URL configured it is only logged. Apprise URLs carry
tokens: they are never logged or stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from core.log import get_logger
from core.settings import Secrets, Settings
from storage.db import AlertRecord, Database, utcnow
from tasks.budget import BudgetLedger


@dataclass(frozen=True)
class Alert:
    rule: str
    scope: str
    title: str
    message: str


def send_apprise(urls: list[str], title: str, body: str) -> bool:
    """Deliver through every Apprise URL; True when at least one accepted it."""
    import apprise

    if not urls:
        return False
    notifier = apprise.Apprise()
    accepted = sum(1 for url in urls if notifier.add(url))
    if accepted < len(urls):
        get_logger().warning("%d of %d Apprise URLs are not valid Apprise URLs (not shown: they may hold tokens)",
                             len(urls) - accepted, len(urls))
    if not accepted:
        return False
    return bool(notifier.notify(body=body, title=title, notify_type=apprise.NotifyType.WARNING))


def evaluate_rules(db: Database, settings: Settings, budget: BudgetLedger | None = None) -> list[Alert]:
    """Every alert whose condition holds now (before cooldown)."""
    alerts: list[Alert] = []
    threshold = settings.alerts.consecutive_failures
    for provider in settings.chain:
        if provider == "placeholder":
            continue
        streak = db.trailing_failures(provider)
        if streak >= 1:
            last = db.last_failed_attempt(provider)
            if last is not None and last.error_class == "auth_billing":
                alerts.append(Alert(
                    "provider-disabled", provider,
                    f"content-pipeline: {provider} refused our credentials or credit (HTTP {last.http_status})",
                    f"{provider} answered: {last.error}\nIt is disabled for the rest of the run; images fall back to "
                    f"the next provider of the chain ({' -> '.join(settings.chain)}). Check its API key and billing "
                    "(content-pipeline providers check).",
                ))
        if streak > threshold:
            last = db.last_failed_attempt(provider)
            why = f"last error ({last.error_class}): {last.error}" if last else ""
            alerts.append(Alert(
                "consecutive-failures", provider,
                f"content-pipeline: {provider} failed {streak} times in a row",
                f"The provider {provider} failed its last {streak} attempts (threshold {threshold}). {why}\n"
                f"Images fall back to the next provider of the chain ({' -> '.join(settings.chain)}). "
                f"Check that {provider} is reachable and its credentials and credit are valid "
                f"(content-pipeline config show).",
            ))
    recent = db.recent_images(threshold + 1)
    if len(recent) > threshold and all(r.status == "failed" for r in recent):
        alerts.append(Alert(
            "images-failed", "all",
            f"content-pipeline: the last {len(recent)} images failed",
            f"No provider produced the last {len(recent)} images; last error: {recent[-1].error}\n"
            "Check the providers of the chain; the placeholder provider must stay last in the chain.",
        ))
    if budget is not None:
        today, month = budget.spent()
        local_date = datetime.now(UTC).astimezone(ZoneInfo(settings.timezone)).date().isoformat()
        cap = settings.budget.daily_usd
        if today >= cap - 1e-9 or budget.refusals:
            refused = len(budget.refusals)
            alerts.append(Alert(
                "daily-budget", local_date,
                f"content-pipeline: daily budget of USD {cap:.2f} reached",
                f"Spent today: USD {today:.2f} of USD {cap:.2f} (month: USD {month:.2f} of "
                f"USD {settings.budget.monthly_usd:.2f}). Paid calls refused by the cap: {refused}; those images "
                "fell back to free providers or were skipped. Raise budget.daily_usd or wait for tomorrow.",
            ))
    return alerts


def dispatch_alerts(db: Database, settings: Settings, secrets: Secrets, alerts: list[Alert]) -> list[AlertRecord]:
    """Send the alerts not sent within the cooldown; store and return those raised now."""
    raised = []
    cooldown = timedelta(seconds=settings.alerts.cooldown_s)
    urls = secrets.apprise_url_list()
    log = get_logger()
    for alert in alerts:
        last = db.last_alert(alert.rule, alert.scope)
        if last is not None and utcnow() - last.created_at < cooldown:
            continue
        delivered = send_apprise(urls, alert.title, alert.message)
        if urls and not delivered:
            log.error("alert %s could not be delivered: %s", alert.rule, alert.title)
        elif not urls:
            log.warning("ALERT (no Apprise URL configured) %s\n%s", alert.title, alert.message)
        else:
            log.info("alert %s delivered to %d Apprise URL(s)", alert.rule, len(urls))
        raised.append(db.add_alert(AlertRecord(rule=alert.rule, scope=alert.scope, title=alert.title,
                                               message=alert.message, delivered=delivered)))
    return raised
