"""Alerts through real Apprise to a loopback HTTP sink."""

from __future__ import annotations

import threading

import pytest

from config.secrets import Secrets
from reporting.alerts import Alert, dispatch_alerts, evaluate_rules
from wiring.runtime import get_runtime
from tests.conftest import a1111_config
from tests.rows import flow_summary
from tests.servers import A1111Server, HttpSink
from storage import queries


@pytest.mark.usefixtures("prefect_server")
def test_alert_after_four_consecutive_failures(make_config, sink: HttpSink, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from domain.model import ImageFormat, Quality
    from flows.adhoc import generate

    monkeypatch.setenv("APPRISE_URLS", f"json://127.0.0.1:{sink.url.rsplit(':', 1)[1]}/hooks/alerts")
    with A1111Server(default="500") as server:
        make_config(**a1111_config(server.url), retry={"max_retries": 0, "circuit_threshold": 10})
        generate(template="sneaker", count=3, quality=Quality.standard, format=ImageFormat.square, batch="a", return_state=True)
        assert streak_alerts(sink) == []  # 3 failures in a row: not yet "more than 3"
        summary = flow_summary(generate(template="sneaker", count=1, quality=Quality.standard, format=ImageFormat.square, batch="b", return_state=True))
        assert len(server.requests) == 4
    bodies = streak_alerts(sink)
    assert [b["title"] for b in bodies] == ["content-pipeline: automatic1111 failed 4 times in a row", "content-pipeline: the last 4 provider calls all failed"]
    assert "CUDA out of memory" in bodies[0]["message"] and "What to do" in bodies[0]["message"]
    assert bodies[0]["title"] in summary.alerts
    stored = [a for a in queries.alerts(get_runtime().db) if a.rule == "consecutive-failures"]
    assert len(stored) == 2 and all(a.delivered and "hooks" not in a.message for a in stored)  # URL never stored


def streak_alerts(sink: HttpSink) -> list[dict]:  # type: ignore[type-arg]
    return [b for b in sink.json_bodies() if "in a row" in b["title"] or "all failed" in b["title"]]


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
    make_config(budget={"daily_usd": 0.05})
    rt = get_runtime()
    assert not [a for a in evaluate_rules(rt.db, rt.settings, rt.budget) if a.rule.startswith("budget")]
    rt.budget.settle(rt.budget.reserve("automatic1111", 0.05), 0.05)
    alerts = [a for a in evaluate_rules(rt.db, rt.settings, rt.budget) if a.rule == "budget-100"]
    assert len(alerts) == 1 and "USD 0.05 of USD 0.05" in alerts[0].message


class _GatedA1111(A1111Server):
    """A WebUI failing every call (HTTP 500) whose calls after the first ``after`` wait until
    ``gate`` is set (the streak alert reached the sink), at most ``wait_s`` seconds: the run
    can only go on past them if the alert was sent while it was still making images."""

    def __init__(self, gate: threading.Event, after: int, wait_s: float) -> None:
        super().__init__(default="500")
        self.gate, self.after, self.wait_s = gate, after, wait_s

    @property  # type: ignore[override]
    def delay_s(self) -> float:  # read by the handler once per call, after the request is counted
        if len(self.requests) > self.after:
            self.gate.wait(self.wait_s)
        return 0.0

    @delay_s.setter
    def delay_s(self, value: float) -> None:
        """The base class sets a fixed delay; this server's waits come from the gate."""


class _SignallingSink(HttpSink):
    """An Apprise sink that sets ``gate`` when a streak alert arrives, remembering how many
    provider calls had been made then."""

    def __init__(self, gate: threading.Event, provider: A1111Server) -> None:
        super().__init__()
        self.gate, self.provider = gate, provider
        self.calls_at_alert: int | None = None

    def arrived(self) -> None:
        if self.calls_at_alert is None and streak_alerts(self):
            self.calls_at_alert = len(self.provider.requests)
            self.gate.set()


@pytest.mark.usefixtures("prefect_server")
def test_a_failing_provider_alerts_while_the_run_still_makes_images(make_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Alert rules run as images finish (``alerts.during_run_every_s: 0``): the fourth failure
    in a row alerts before the fifth call is answered, not at the end of the run."""
    from domain.model import ImageFormat, Quality
    from flows.adhoc import generate

    gate = threading.Event()
    with _GatedA1111(gate, after=4, wait_s=60) as server:
        sink = _SignallingSink(gate, server)
        with sink:
            original = sink.received

            class _Notifying(list):  # type: ignore[type-arg]
                def append(self, item: object) -> None:
                    super().append(item)
                    sink.arrived()

            sink.received = _Notifying(original)
            monkeypatch.setenv("APPRISE_URLS", f"json://127.0.0.1:{sink.url.rsplit(':', 1)[1]}/hooks/alerts")
            make_config(**a1111_config(server.url), concurrency=1, retry={"max_retries": 0, "circuit_threshold": 10}, alerts={"during_run_every_s": 0})
            generate(template="sneaker", count=6, quality=Quality.standard, format=ImageFormat.square, batch="live", return_state=True)
            total = len(server.requests)
    assert total == 6
    assert sink.calls_at_alert is not None and sink.calls_at_alert < total, (sink.calls_at_alert, total)
    assert [b["title"] for b in streak_alerts(sink)][0] == "content-pipeline: automatic1111 failed 4 times in a row"
