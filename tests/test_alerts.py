"""Alerts through real Apprise to a loopback HTTP sink."""

from __future__ import annotations

from datetime import date

import pytest

from core.settings import Secrets
from tasks.alerts import Alert, dispatch_alerts, evaluate_rules
from tasks.runtime import get_runtime
from tests.conftest import a1111_config
from tests.servers import A1111Server, HttpSink


@pytest.mark.usefixtures("prefect_server")
def test_alert_after_four_consecutive_failures(make_config, sink: HttpSink, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from core.domain import ImageFormat, Quality
    from flows.adhoc import generate

    monkeypatch.setenv("APPRISE_URLS", f"json://127.0.0.1:{sink.url.rsplit(':', 1)[1]}/hooks/alerts")
    with A1111Server(default="500") as server:
        make_config(**a1111_config(server.url), retry={"max_retries": 0, "circuit_threshold": 10})
        generate(template="sneaker", count=3, quality=Quality.standard, format=ImageFormat.square, batch="a")
        assert sink.received == []  # 3 failures in a row: not yet "more than 3"
        summary = generate(template="sneaker", count=1, quality=Quality.standard, format=ImageFormat.square, batch="b")
        assert len(server.requests) == 4
    assert len(sink.received) == 1
    body = sink.json_bodies()[0]
    assert "automatic1111 failed 4 times in a row" in body["title"]
    assert "CUDA out of memory" in body["message"]
    assert summary.alerts == [body["title"]]
    stored = get_runtime().db.alerts()
    assert len(stored) == 1 and stored[0].delivered and "hooks" not in stored[0].message  # URL never stored


def test_cooldown_suppresses_repeats(make_config, sink: HttpSink, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    make_config(alerts={"cooldown_s": 3600})
    rt = get_runtime()
    secrets = Secrets(APPRISE_URLS=f"json://127.0.0.1:{sink.url.rsplit(':', 1)[1]}/x")
    alert = Alert("consecutive-failures", "automatic1111", "title", "body")
    assert len(dispatch_alerts(rt.db, rt.settings, secrets, [alert])) == 1
    assert dispatch_alerts(rt.db, rt.settings, secrets, [alert]) == []
    other_scope = Alert("consecutive-failures", "stability", "t2", "b2")
    assert len(dispatch_alerts(rt.db, rt.settings, secrets, [other_scope])) == 1
    assert len(sink.received) == 2


def test_no_url_logs_and_stores_undelivered(make_config, caplog) -> None:  # type: ignore[no-untyped-def]
    make_config()
    rt = get_runtime()
    raised = dispatch_alerts(rt.db, rt.settings, Secrets(), [Alert("daily-budget", "2026-11-21", "budget", "spent")])
    assert len(raised) == 1 and not raised[0].delivered
    assert "ALERT (no Apprise URL configured) budget" in caplog.text


def test_daily_budget_rule(make_config) -> None:  # type: ignore[no-untyped-def]
    from core.domain import Attempt, ImageSlot

    make_config(budget={"daily_usd": 0.05})
    rt = get_runtime()
    row = rt.db.ensure_planned(ImageSlot("daily", date(2026, 11, 21), "s", 0, "food"))
    assert not [a for a in evaluate_rules(rt.db, rt.settings, rt.budget) if a.rule == "daily-budget"]
    rt.db.add_attempt(row.id, Attempt("automatic1111", "m", "success", 1.0, cost_usd=0.06))
    alerts = [a for a in evaluate_rules(rt.db, rt.settings, rt.budget) if a.rule == "daily-budget"]
    assert len(alerts) == 1 and "USD 0.06 of USD 0.05" in alerts[0].message
