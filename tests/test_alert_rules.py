"""One test per alert rule, delivered through real Apprise to a loopback HTTP sink AND a
local SMTP server (mailto://); a second dispatch inside the cooldown sends nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from domain.model import Attempt, ImageSlot
from config.secrets import Secrets
from reporting.alerts import dispatch_alerts, evaluate_rules
from wiring.runtime import Runtime, get_runtime
from tests.rows import plan_row, set_row
from tests.servers import HttpSink
from tests.smtpsink import SmtpSink
from storage import queries


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


def image(rt: Runtime, index: int, **fields: object) -> int:
    row = plan_row(rt.db, ImageSlot("daily", datetime.now(UTC).date(), "0600-food", index, "food"))
    if fields:
        from domain.model import ImageStatus

        set_row(rt.db, row.id, ImageStatus(fields.pop("status", "planned")), **fields)  # type: ignore[arg-type]
    assert row.id is not None
    return row.id


def attempts(rt: Runtime, *items: Attempt) -> None:
    pk = image(rt, 900)
    for item in items:
        rt.db.add_attempt(pk, item)


def seed_provider_failures(rt: Runtime) -> None:
    attempts(
        rt,
        Attempt("automatic1111", "sd15", "success", 1.0),
        *[Attempt("automatic1111", "sd15", "failed", 0.5, error_class="transient", error="HTTP 500: CUDA out of memory", http_status=500) for _ in range(4)],
    )


def seed_images_failed(rt: Runtime) -> None:
    for index in range(4):
        image(rt, index, status="failed", error="every provider failed: automatic1111: HTTP 500")


def seed_budget_80(rt: Runtime) -> None:
    rt.budget.settle(rt.budget.reserve("automatic1111", 0.9), 0.85)  # cap 1.00: 85 %


def seed_budget_100(rt: Runtime) -> None:
    rt.budget.settle(rt.budget.reserve("automatic1111", 1.0), 1.0)


def seed_budget_refused(rt: Runtime) -> None:
    from domain.errors import BudgetExceededError

    with pytest.raises(BudgetExceededError):
        rt.budget.reserve("automatic1111", 1.5)


def seed_slow(rt: Runtime) -> None:
    attempts(rt, *[Attempt("automatic1111", "sd15", "success", s) for s in (2.0, 2.2, 1.8, 2.1, 1.9, 2.0)], Attempt("automatic1111", "sd15", "success", 9.5))


def seed_quota_headers(rt: Runtime) -> None:
    from providers.quota import quota_hints

    hints = quota_hints({"headers": {"X-RateLimit-Remaining": "4", "X-RateLimit-Limit": "100"}})
    attempts(rt, Attempt("automatic1111", "sd15", "success", 1.0, **hints))


def seed_quota_402(rt: Runtime) -> None:
    attempts(
        rt,
        Attempt("automatic1111", "sd15", "success", 1.0),
        Attempt("automatic1111", "sd15", "failed", 0.2, error_class="auth_billing", error="HTTP 402: insufficient credit", http_status=402),
    )


def seed_auth_401(rt: Runtime) -> None:
    attempts(
        rt,
        Attempt("automatic1111", "sd15", "success", 1.0),
        Attempt("automatic1111", "sd15", "failed", 0.2, error_class="auth_billing", error="HTTP 401: invalid API key", http_status=401),
    )


def seed_placeholder(rt: Runtime) -> None:
    pk = image(rt, 1, status="generated", provider="placeholder", model="placeholder-v1", is_placeholder=True)
    rt.db.add_attempt(pk, Attempt("automatic1111", "sd15", "failed", 0.3, error_class="transient", error="connect refused"))
    image(rt, 2, status="generated", provider="automatic1111", model="sd15")


RULES: dict[str, tuple[Callable[[Runtime], None], str, list[str]]] = {
    # rule-case: (seed, rule, fragments the message must hold: what happened, the numbers, what to do)
    "consecutive-failures": (
        seed_provider_failures,
        "consecutive-failures",
        ["automatic1111 failed 4 times in a row", "CUDA out of memory", "threshold: more than 3", "What to do"],
    ),
    "images-failed": (seed_images_failed, "images-failed", ["the last 4 images failed", "HTTP 500", "What to do"]),
    "budget-80": (seed_budget_80, "budget-80", ["global daily budget at 85 %", "USD 0.85 of USD 1.00", "threshold 80 %", "What to do"]),
    "budget-100": (seed_budget_100, "budget-100", ["global daily budget at 100 %", "USD 1.00 of USD 1.00", "refused", "raise budget.daily_usd"]),
    "budget-refused": (seed_budget_refused, "budget-refused", ["1 paid calls refused", "cap of USD 1.00", "What to do"]),
    "slow-provider": (seed_slow, "slow-provider", ["automatic1111 is 4.8x slower", "took 9.5 s", "median over the previous 6 calls is 2.0 s", "What to do"]),
    "quota-headers": (seed_quota_headers, "quota", ["4 of 100 calls left", "What to do"]),
    "quota-402": (seed_quota_402, "quota", ["402 Payment Required", "insufficient credit", "top up"]),
    "provider-disabled": (
        seed_auth_401,
        "provider-disabled",
        ["automatic1111 refused our credentials (HTTP 401)", "invalid API key", "Check its API key and billing"],
    ),
    "placeholder-used": (seed_placeholder, "placeholder-used", ["1 of 2 images today are placeholders", "automatic1111: transient", "What to do"]),
}


@pytest.mark.parametrize("case", list(RULES))
def test_rule_delivered_by_http_and_smtp_then_suppressed(case: str, make_config, sink: HttpSink, smtp: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    seed, rule, fragments = RULES[case]
    make_config(budget={"daily_usd": 1.0, "monthly_usd": 50.0}, alerts={"cooldown_s": 3600})
    rt = get_runtime()
    assert [a for a in evaluate_rules(rt.db, rt.settings, rt.budget) if a.rule == rule] == []  # quiet before
    seed(rt)
    raised = [a for a in evaluate_rules(rt.db, rt.settings, rt.budget) if a.rule == rule]
    assert raised, f"rule {rule} did not fire"
    alert = raised[0]
    for fragment in fragments:
        assert fragment in f"{alert.title}\n{alert.message}", (fragment, alert)

    secrets = Secrets(APPRISE_URLS=f"json://127.0.0.1:{sink.url.rsplit(':', 1)[1]}/alerts {smtp.apprise_url}")
    sent = dispatch_alerts(rt.db, rt.settings, secrets, [alert])
    assert len(sent) == 1 and sent[0].delivered and sent[0].rule == rule
    [body] = sink.json_bodies()
    assert body["title"] == alert.title and body["message"] == alert.message
    [mail] = smtp.messages
    assert mail["Subject"] == alert.title and mail["To"] == "ops@example.com"
    assert fragments[-1] in smtp.bodies()[0]

    # the condition still holds: inside the cooldown nothing is sent again, nothing stored again
    again = [a for a in evaluate_rules(rt.db, rt.settings, rt.budget) if a.rule == rule]
    assert again and dispatch_alerts(rt.db, rt.settings, secrets, again[:1]) == []
    assert len(sink.received) == 1 and len(smtp.messages) == 1
    assert [a.rule for a in queries.alerts(rt.db)] == [rule]


def test_one_402_sends_one_alert(make_config, sink: HttpSink) -> None:  # type: ignore[no-untyped-def]
    """A single 402 answer is one condition: the quota rule says it (top up); provider-disabled does not repeat it."""
    make_config(alerts={"cooldown_s": 3600})
    rt = get_runtime()
    seed_quota_402(rt)
    secrets = Secrets(APPRISE_URLS=f"json://127.0.0.1:{sink.url.rsplit(':', 1)[1]}/alerts")
    sent = dispatch_alerts(rt.db, rt.settings, secrets, evaluate_rules(rt.db, rt.settings, rt.budget))
    assert [a.rule for a in sent] == ["quota"] and len(sink.received) == 1


def test_open_circuit_alerts_in_the_first_run(make_config) -> None:  # type: ignore[no-untyped-def]
    """At concurrency 1 the circuit opens after retry.circuit_threshold (3) failures and the chain stops
    calling: those 3 failures, all a first run can record, must raise consecutive-failures."""
    make_config(alerts={"cooldown_s": 3600})
    rt = get_runtime()
    failed = Attempt("automatic1111", "sd15", "failed", 0.5, error_class="transient", error="HTTP 500: boom", http_status=500)
    attempts(rt, failed, failed)
    assert [a for a in evaluate_rules(rt.db, rt.settings, rt.budget) if a.rule == "consecutive-failures"] == []
    rt.db.add_attempt(image(rt, 901), failed)
    raised = [a for a in evaluate_rules(rt.db, rt.settings, rt.budget) if a.rule == "consecutive-failures"]
    assert {a.scope for a in raised} == {"automatic1111", "all"}
    assert "failed 3 times in a row" in raised[0].title and "3 to open its circuit" in raised[0].message


def test_cooldown_over_sends_again(make_config, sink: HttpSink) -> None:  # type: ignore[no-untyped-def]
    make_config(alerts={"cooldown_s": 0})
    rt = get_runtime()
    seed_images_failed(rt)
    secrets = Secrets(APPRISE_URLS=f"json://127.0.0.1:{sink.url.rsplit(':', 1)[1]}/alerts")
    for _ in range(2):
        alerts = [a for a in evaluate_rules(rt.db, rt.settings, rt.budget) if a.rule == "images-failed"]
        assert len(dispatch_alerts(rt.db, rt.settings, secrets, alerts)) == 1
    assert len(sink.received) == 2


@pytest.mark.usefixtures("prefect_server")
def test_flow_failure_hook_alerts(make_config, sink: HttpSink, smtp: SmtpSink, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from prefect import flow

    from flows.hooks import flow_failure_hook

    monkeypatch.setenv("APPRISE_URLS", f"json://127.0.0.1:{sink.url.rsplit(':', 1)[1]}/alerts {smtp.apprise_url}")
    make_config()

    @flow(name="doomed", on_failure=[flow_failure_hook], on_crashed=[flow_failure_hook], retries=0)
    def doomed() -> None:
        raise RuntimeError("the template folder is unreadable")

    state = doomed(return_state=True)
    assert state.is_failed()
    [body] = sink.json_bodies()
    assert "of doomed failed" in body["title"] and "the template folder is unreadable" in body["message"]
    assert "re-run the same date" in body["message"]
    assert smtp.messages[0]["Subject"] == body["title"]
    [stored] = queries.alerts(get_runtime().db)
    assert stored.rule == "flow-failed" and stored.delivered


@pytest.mark.usefixtures("prefect_server")
def test_failure_automation_and_its_alert_flow(make_config, sink: HttpSink, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Where a server runs: the automation is stored (idempotently) and aims at the
    flow-failed-alert deployment; that flow alerts about a real failed run, once."""
    import asyncio

    from prefect import flow, get_client

    from deployments.serve import build_deployments
    from flows.alerting import AUTOMATION_NAME, ensure_failure_automation, flow_failed_alert

    monkeypatch.setenv("APPRISE_URLS", f"json://127.0.0.1:{sink.url.rsplit(':', 1)[1]}/alerts")
    make_config()
    [deployment] = [d for d in build_deployments() if d.name == "flow-failed-alert"]
    deployment_id = deployment.apply()
    ensure_failure_automation(deployment_id)
    saved = ensure_failure_automation(deployment_id)  # a second serve start updates, never duplicates
    with get_client(sync_client=True) as client:
        assert [a.id for a in client.read_automations_by_name(name=AUTOMATION_NAME)] == [saved.id]
    assert saved.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}
    related = saved.trigger.match_related
    assert dict(related.root if hasattr(related, "root") else related[0].root) == {
        "prefect.resource.role": "tag",
        "prefect.resource.id": "prefect.tag.content-pipeline",
    }
    [action] = saved.actions
    assert action.deployment_id == deployment_id and action.parameters == {"flow_run_id": "{{ event.resource.id }}"}

    @flow(name="doomed-without-hooks")
    def doomed() -> None:
        raise RuntimeError("killed by the OOM killer")

    state = doomed(return_state=True)
    run_id = state.state_details.flow_run_id
    titles = asyncio.run(flow_failed_alert(flow_run_id=f"prefect.flow-run.{run_id}"))
    assert titles and "of doomed-without-hooks failed" in titles[0]
    [body] = sink.json_bodies()
    assert "killed by the OOM killer" in body["message"] and str(run_id) in body["message"]
    assert asyncio.run(flow_failed_alert(flow_run_id=str(run_id))) == []  # same run: inside the cooldown
    assert len(sink.received) == 1
