"""Stage 8: alert rules over the recorded data, delivered through Apprise.

Rules (each deduplicated per (rule, scope) with ``alerts.cooldown_s``):

* ``consecutive-failures``: more than ``alerts.consecutive_failures`` (N, default 3)
  failed attempts in a row, or as many as open the provider's circuit
  (``retry.circuit_threshold``, default 3: after that the chain stops calling it, so the
  streak never grows past it at concurrency 1), per real provider (scope: the provider)
  and over every real provider (scope ``all``);
* ``provider-disabled``: a provider's latest call failed for credentials (401 / 403): it
  is disabled for the rest of the run (a 402 is the ``quota`` rule's alone, so one 402
  sends one alert);
* ``images-failed``: more than N images in a row ended ``failed``;
* ``budget-80`` / ``budget-100`` (from ``alerts.budget_thresholds``): spending of a cap
  (global, per provider or per client, day or month) reached that share (scope
  ``<scope>:<period>:<key>``, so once per cap and period);
* ``budget-refused``: a paid call was refused today because it would pass a cap (one alert
  for the calls of no client, one per client for its slots' calls);
* ``slow-provider``: a provider's latest successful call took more than
  ``alerts.latency_factor`` (k) x the median of its previous ``latency_window`` calls;
* ``quota``: a provider reported fewer than ``alerts.quota_fraction`` of its calls
  left (rate-limit headers, recorded on attempts) or answered 402 Payment Required
  since its last success;
* ``placeholder-used``: images of today came from the placeholder provider;
* ``flow-failed``: a flow run failed or crashed (``flow_failure_hook`` on the flows).

Clients (config/clients.py): an alert about a client's slots (its caps, its refused calls,
its images failing: ``Alert.client``) goes to the client's Apprise URLs (``alerts_env``) in
addition to the global ``APPRISE_URLS``; the others only to the global ones.

Every raised alert is stored (``alerts`` table) with ``delivered`` telling whether an
Apprise URL took it; with no URL configured it is only logged. Apprise URLs carry
tokens: they are never logged or stored.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from domain.log import get_logger
from config.clients import CLIENT_SCOPE_PREFIX
from config.secrets import Secrets
from config.settings import Settings, dotenv_values
from storage.db import AlertRecord, AttemptRecord, Database, ImageRecord, utcnow
from generation.budget import BudgetLedger, period_starts
from storage import queries


@dataclass(frozen=True)
class Alert:
    rule: str
    scope: str
    title: str
    message: str
    #: The client the alert is about (its Apprise URLs receive it too); None: global only.
    client: str | None = None


def send_apprise(urls: list[str], title: str, body: str, attachments: Sequence[Path] = ()) -> bool:
    """Deliver through every Apprise URL (with ``attachments``, files); True when at least one accepted it."""
    import apprise  # noqa: PLC0415 - Apprise loads every plugin: only when a message is sent

    if not urls:
        return False
    notifier = apprise.Apprise()
    accepted = sum(1 for url in urls if notifier.add(url))
    if accepted < len(urls):
        get_logger().warning("%d of %d Apprise URLs are not valid Apprise URLs (not shown: they may hold tokens)", len(urls) - accepted, len(urls))
    if not accepted:
        return False
    attach = apprise.AppriseAttachment([str(p) for p in attachments]) if attachments else None
    return bool(notifier.notify(body=body, title=title, notify_type=apprise.NotifyType.WARNING, attach=attach))


# -- the rules -------------------------------------------------------------------------------
def _real_providers(settings: Settings) -> list[str]:
    return [p for p in settings.chain if p != "placeholder"]


def _streak_alerts(streak: int, threshold: int, circuit: int) -> bool:
    """Whether ``streak`` failures in a row call for an alert: more than ``threshold``, or enough
    to open the circuit (the chain then stops calling, so the streak stops growing there)."""
    return streak > threshold or streak >= circuit


def rule_consecutive_failures(db: Database, settings: Settings) -> list[Alert]:
    alerts: list[Alert] = []
    threshold = settings.alerts.consecutive_failures
    circuit = settings.retry.circuit_threshold
    for provider in _real_providers(settings):
        streak = queries.trailing_failures(db, provider)
        if _streak_alerts(streak, threshold, circuit):
            last = queries.last_failed_attempt(db, provider)
            why = f"Last error ({last.error_class}, HTTP {last.http_status or '-'}): {last.error}" if last else ""
            alerts.append(
                Alert(
                    "consecutive-failures",
                    provider,
                    f"content-pipeline: {provider} failed {streak} times in a row",
                    f"The provider {provider} failed its last {streak} attempts (threshold: more than {threshold}, "
                    f"or {circuit} to open its circuit). {why}\n"
                    f"Images fall back to the next provider of the chain ({' -> '.join(settings.chain)}). "
                    f"What to do: check that {provider} is reachable and its credentials and credit are valid "
                    f"(content-pipeline config show).",
                )
            )
    streak = queries.trailing_failures(db, None)
    if _streak_alerts(streak, threshold, circuit):
        with db.session() as session:
            query = select(AttemptRecord).where(AttemptRecord.status == "failed", AttemptRecord.provider != "placeholder")
            last_rows = list(session.exec(query.order_by(AttemptRecord.id.desc()).limit(streak)))  # type: ignore[union-attr]
        per_provider: dict[str, int] = {}
        for row in last_rows:
            per_provider[row.provider] = per_provider.get(row.provider, 0) + 1
        spread = ", ".join(f"{name}: {count}" for name, count in sorted(per_provider.items()))
        alerts.append(
            Alert(
                "consecutive-failures",
                "all",
                f"content-pipeline: the last {streak} provider calls all failed",
                f"The last {streak} attempts over every real provider failed (threshold: more than {threshold}, or {circuit} to open "
                f"a circuit; {spread}). "
                f"Last error: {last_rows[0].error if last_rows else '-'}\n"
                "Images are coming from the placeholder (never published) or failing. What to do: check the network, "
                "the providers' status pages and credentials, then re-run the date to fill the gaps.",
            )
        )
    return alerts


def rule_provider_disabled(db: Database, settings: Settings) -> list[Alert]:
    """A provider whose latest call failed for credentials (401 / 403) or named a retired model:
    the chain disabled it for the run (scope: the provider). A 402 is left to :func:`rule_quota`,
    which says to top up."""
    alerts: list[Alert] = []
    for provider in _real_providers(settings):
        if queries.trailing_failures(db, provider) < 1:
            continue
        last = queries.last_failed_attempt(db, provider)
        retired = last is not None and last.error_class == "model_retired"
        if last is not None and (retired or (last.error_class == "auth_billing" and last.http_status != 402)):
            why = "retired its model" if retired else "refused our credentials"
            alerts.append(
                Alert(
                    "provider-disabled",
                    provider,
                    f"content-pipeline: {provider} {why} (HTTP {last.http_status})",
                    f"{provider} answered: {last.error}\nIt is disabled for the rest of the run; images fall back to "
                    f"the next provider of the chain ({' -> '.join(settings.chain)}). Check its API key and billing "
                    "(content-pipeline providers check).",
                )
            )
    return alerts


def rule_images_failed(db: Database, settings: Settings) -> list[Alert]:
    """``images-failed``: over every image (scope ``all``), and per client over its images
    (scope ``client:<name>``, sent to the client's URLs too)."""
    threshold = settings.alerts.consecutive_failures
    alerts: list[Alert] = []
    for client in [None, *settings.clients.names()]:
        recent = queries.recent_images(db, threshold + 1, client=client)
        if len(recent) > threshold and all(r.status == "failed" for r in recent):
            whose = f"client {client}'s " if client else ""
            alerts.append(
                Alert(
                    "images-failed",
                    CLIENT_SCOPE_PREFIX + client if client else "all",
                    f"content-pipeline: the last {len(recent)} {whose}images failed",
                    f"No provider produced the last {len(recent)} {whose}images (threshold: more than {threshold}); "
                    f"last error: {recent[-1].error}\n"
                    "What to do: check the providers of the chain; keep the placeholder provider last in the chain; "
                    "re-run the date once fixed (finished images are not made again).",
                    client,
                )
            )
    return alerts


def rule_budget(db: Database, settings: Settings, budget: BudgetLedger) -> list[Alert]:
    alerts: list[Alert] = []
    thresholds = sorted(settings.alerts.budget_thresholds, reverse=True)
    for status in budget.status():
        reached = next((t for t in thresholds if status.fraction >= t - 1e-9), None)
        if reached is None:
            continue
        client = status.scope.removeprefix(CLIENT_SCOPE_PREFIX) if status.scope.startswith(CLIENT_SCOPE_PREFIX) else None
        who = "global" if status.scope == "global" else f"client {client}'s" if client else f"{status.scope}'s"
        label = "daily" if status.period == "day" else "monthly"
        field = "daily_usd" if status.period == "day" else "monthly_usd"
        setting = (
            f"budget.{field}" if status.scope == "global" else f"clients.{client}.budget.{field}" if client else f"budget.providers.{status.scope}.{field}"
        )
        percent = int(round(reached * 100))
        advice = (
            (
                "Paid calls are now refused: images fall back to free providers or are skipped until the period "
                f"ends. What to do: raise {setting} if this is expected, or find what spends."
            )
            if reached >= 1
            else (f"What to do: nothing yet; at 100 % paid calls are refused. Raise {setting} if more is needed.")
        )
        alerts.append(
            Alert(
                f"budget-{percent}",
                f"{status.scope}:{status.period}:{status.period_key}",
                f"content-pipeline: {who} {label} budget at {status.fraction * 100:.0f} %",
                f"Spent in {status.period_key}: USD {status.spent_usd:.2f} of USD {status.cap_usd:.2f} "
                f"({status.fraction * 100:.0f} %, threshold {percent} %), USD {status.reserved_usd:.2f} reserved by calls "
                f"in flight.\n{advice}",
                client,
            )
        )
    return alerts + _refused_alerts(settings, budget)


def _refused_alerts(settings: Settings, budget: BudgetLedger) -> list[Alert]:
    """``budget-refused``: one alert for today's refused calls of no client, one per client."""
    by_client: dict[str | None, list[Any]] = {}
    for entry in budget.refusals():
        by_client.setdefault(entry.client, []).append(entry)
    day, month = budget.spent()
    alerts = []
    for client, refused in by_client.items():
        providers = sorted({r.provider for r in refused})
        whose = f" for client {client}'s images" if client else ""
        alerts.append(
            Alert(
                "budget-refused",
                f"{CLIENT_SCOPE_PREFIX}{client}:{refused[-1].day_key}" if client else refused[-1].day_key,
                f"content-pipeline: {len(refused)} paid calls{whose} refused by the budget today",
                f"{len(refused)} calls to {', '.join(providers)}{whose} were refused because they would pass a cap. "
                f"Latest: {refused[-1].reason}. Spent today USD {day:.2f} of {settings.budget.daily_usd:.2f}, this month "
                f"USD {month:.2f} of {settings.budget.monthly_usd:.2f} (all clients).\nThose images fell back to cheaper or free "
                "providers, or were skipped. What to do: raise the cap (budget.* or clients.<name>.budget.* in the "
                "configuration) and re-run the date to make the skipped images, or wait for the next period.",
                client,
            )
        )
    return alerts


def rule_budget_overrun(budget: BudgetLedger) -> list[Alert]:
    """``budget-overrun``: a provider reported a call above its reservation (the most that
    call can cost: generation.budget ``overrun`` entries), one alert per entry."""
    return [
        Alert(
            "budget-overrun",
            f"budget-entry:{entry.id}",
            f"content-pipeline: {entry.provider} billed a call above its reservation; paid calls held",
            f"{entry.reason}.\nEvery paid call is refused until then. What to do: check the provider's bill for this "
            "call, then run `content-pipeline budget ack`.",
        )
        for entry in budget.overruns()
    ]


def rule_slow_provider(db: Database, settings: Settings) -> list[Alert]:
    alerts: list[Alert] = []
    cfg = settings.alerts
    for provider in _real_providers(settings):
        with db.session() as session:
            query = select(AttemptRecord.latency_s).where(AttemptRecord.provider == provider, AttemptRecord.status == "success")
            latencies = list(session.exec(query.order_by(AttemptRecord.id.desc()).limit(cfg.latency_window + 1)))  # type: ignore[union-attr]
        if len(latencies) < cfg.latency_min_samples + 1:
            continue
        latest, previous = latencies[0], latencies[1:]
        median = statistics.median(previous)
        if median > 0 and latest > cfg.latency_factor * median:
            alerts.append(
                Alert(
                    "slow-provider",
                    provider,
                    f"content-pipeline: {provider} is {latest / median:.1f}x slower than usual",
                    f"The last call to {provider} took {latest:.1f} s; its median over the previous {len(previous)} calls "
                    f"is {median:.1f} s (alert above {cfg.latency_factor:g}x).\nWhat to do: check the provider's status "
                    f"page or the GPU box's load; if it persists, lower providers.{provider}.timeout_s so the chain falls "
                    "back sooner, or move a faster provider first in the chain.",
                )
            )
    return alerts


def rule_quota(db: Database, settings: Settings) -> list[Alert]:
    alerts: list[Alert] = []
    fraction = settings.alerts.quota_fraction
    for provider in _real_providers(settings):
        with db.session() as session:
            hint = session.exec(
                select(AttemptRecord)
                .where(AttemptRecord.provider == provider, AttemptRecord.quota_remaining.is_not(None))  # type: ignore[union-attr]
                .order_by(AttemptRecord.id.desc())  # type: ignore[union-attr]
            ).first()
            last_success = session.exec(
                select(AttemptRecord.id).where(AttemptRecord.provider == provider, AttemptRecord.status == "success").order_by(AttemptRecord.id.desc())  # type: ignore[union-attr]
            ).first()
            payment = session.exec(
                select(AttemptRecord)
                .where(AttemptRecord.provider == provider, AttemptRecord.http_status == 402, col(AttemptRecord.id) > (last_success or 0))
                .order_by(AttemptRecord.id.desc())  # type: ignore[union-attr]
            ).first()
        if payment is not None:
            alerts.append(
                Alert(
                    "quota",
                    provider,
                    f"content-pipeline: {provider} answered 402 Payment Required",
                    f"{provider} refused a call with HTTP 402 ({payment.error}); it is disabled for the rest of that run "
                    f"and the chain falls back to the next provider.\nWhat to do: top up the {provider} account or raise "
                    "its plan's quota.",
                )
            )
            continue
        if hint is None or hint.quota_remaining is None:
            continue
        low = (hint.quota_remaining <= fraction * hint.quota_limit) if hint.quota_limit else hint.quota_remaining == 0
        if low:
            of = f" of {hint.quota_limit}" if hint.quota_limit else ""
            alerts.append(
                Alert(
                    "quota",
                    provider,
                    f"content-pipeline: {provider} quota nearly used up ({hint.quota_remaining}{of} calls left)",
                    f"{provider}'s rate-limit headers report {hint.quota_remaining}{of} calls left in the current window "
                    f"(alert below {fraction * 100:.0f} %).\nWhat to do: expect 429 answers and fallbacks soon; raise the "
                    "plan's quota or spread the batch (fewer images per window, lower concurrency).",
                )
            )
    return alerts


def rule_placeholder_used(db: Database, settings: Settings) -> list[Alert]:
    day_start, _ = period_starts(datetime.now(UTC), settings.timezone)
    with db.session() as session:
        rows = list(session.exec(select(ImageRecord).where(ImageRecord.created_at >= day_start, ImageRecord.provider.is_not(None))))  # type: ignore[union-attr]
    placeholders = [r for r in rows if r.is_placeholder]
    if not placeholders:
        return []
    local_date = datetime.now(UTC).astimezone(ZoneInfo(settings.timezone)).date().isoformat()
    with db.session() as session:
        failures = list(
            session.exec(
                select(AttemptRecord).where(
                    AttemptRecord.image_pk.in_([r.id for r in placeholders]),  # type: ignore[attr-defined]
                    AttemptRecord.provider != "placeholder",
                    AttemptRecord.status != "success",
                )
            )
        )
    reasons = sorted({f"{a.provider}: {a.error if a.error_class == 'missing_secret' else a.error_class}" for a in failures}) or [
        "no real provider is enabled in the chain"
    ]
    return [
        Alert(
            "placeholder-used",
            local_date,
            f"content-pipeline: {len(placeholders)} of {len(rows)} images today are placeholders",
            f"{len(placeholders)} of today's {len(rows)} generated images came from the placeholder provider and are "
            f"stored under placeholder/, not published. Why the real providers did not answer: {'; '.join(reasons)}.\n"
            "What to do: enable or fix a real provider (content-pipeline config show), then re-run the date: only "
            "missing images are made again.",
        )
    ]


def evaluate_rules(db: Database, settings: Settings, budget: BudgetLedger | None = None) -> list[Alert]:
    """Every alert whose condition holds now (before cooldown)."""
    alerts = rule_provider_disabled(db, settings) + rule_consecutive_failures(db, settings)
    alerts += rule_images_failed(db, settings)
    if budget is not None:
        alerts += rule_budget(db, settings, budget) + rule_budget_overrun(budget)
    alerts += rule_slow_provider(db, settings) + rule_quota(db, settings) + rule_placeholder_used(db, settings)
    return alerts


def dispatch_alerts(db: Database, settings: Settings, secrets: Secrets, alerts: list[Alert]) -> list[AlertRecord]:
    """Send the alerts not sent within the cooldown; store and return those raised now."""
    raised = []
    cooldown = timedelta(seconds=settings.alerts.cooldown_s)
    log = get_logger()
    for alert in alerts:
        last = queries.last_alert(db, alert.rule, alert.scope)
        if last is not None and utcnow() - last.created_at < cooldown:
            log.info("alert %s (%s) suppressed: sent %s ago", alert.rule, alert.scope, utcnow() - last.created_at)
            continue
        urls = alert_urls(settings, secrets, alert)
        delivered = send_apprise(urls, alert.title, alert.message)
        if urls and not delivered:
            log.error("alert %s could not be delivered: %s", alert.rule, alert.title)
        elif not urls:
            log.warning("ALERT (no Apprise URL configured) %s\n%s", alert.title, alert.message)
        else:
            log.info("alert %s delivered to %d Apprise URL(s)", alert.rule, len(urls))
        raised.append(queries.add_alert(db, AlertRecord(rule=alert.rule, scope=alert.scope, title=alert.title, message=alert.message, delivered=delivered)))
    return raised


def alert_urls(settings: Settings, secrets: Secrets, alert: Alert) -> list[str]:
    """Where ``alert`` goes: the global ``APPRISE_URLS``, plus its client's (``alerts_env``,
    read from the environment, else ``.env``)."""
    urls = secrets.apprise_url_list()
    owner = settings.clients.get(alert.client)
    if owner is not None and owner.alerts_env:
        environ = os.environ if owner.alerts_env in os.environ else dotenv_values()
        urls += [u for u in owner.apprise_urls(environ) if u not in urls]
    return urls


def flow_run_alert(flow_name: str, flow_run_id: Any, flow_run_name: str | None, state: Any) -> Alert:
    """The ``flow-failed`` alert of a failed or crashed flow run (scope: the run id)."""
    kind = "crashed" if getattr(state, "is_crashed", lambda: False)() else "failed"
    message = getattr(state, "message", None) or str(state)
    return Alert(
        "flow-failed",
        str(flow_run_id),
        f"content-pipeline: flow run {flow_run_name or flow_run_id} of {flow_name} {kind}",
        f"The flow run {flow_run_name} ({flow_run_id}) of {flow_name} ended {kind.upper()}: {message}\n"
        "Images already made are kept. What to do: read the run's logs in the Prefect UI, fix the cause, then "
        "re-run the same date (content-pipeline run ... --date): it resumes, paying for nothing twice.",
    )
