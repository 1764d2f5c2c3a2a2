"""A settlement above its reservation (issue 19): a time-billed Replicate model reporting
``metrics.predict_time`` 200 s against a 10 s timeout is counted at its reservation (the
most that call can cost), recorded as an ``overrun`` with an alert, and every later paid
call is refused until an operator acknowledges it. On the Replicate loopback server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from config.settings import BudgetConfig, RetryConfig
from domain.errors import AllProvidersFailedError
from domain.model import GenerationRequest
from generation.budget import BudgetLedger
from providers.chain import ProviderChain
from reporting.alerts import rule_budget_overrun
from storage.db import Database
from tests.providers.servers.replicate import ReplicateServer
from tests.providers.test_replicate import provider_for

A100_USD_PER_S = 0.0014  # stability-ai/stable-diffusion's hardware (https://replicate.com/pricing)
RESERVED = 10 * A100_USD_PER_S  # price per second x the 10 s timeout


@pytest.fixture
def server() -> Iterator[ReplicateServer]:
    with ReplicateServer() as running:
        yield running  # type: ignore[misc]


def test_a_settlement_above_its_reservation_is_capped_alerted_and_holds_paid_calls(server: ReplicateServer, db_url: str) -> None:
    server.predict_time = 200.0
    db = Database(db_url)
    ledger = BudgetLedger(db, BudgetConfig(daily_usd=0.05, monthly_usd=1.0))
    chain = ProviderChain([provider_for(server, timeout_s=10)], retry=RetryConfig(max_retries=0), budget=ledger)
    request = GenerationRequest(prompt="a fox", width=512, height=512)

    result = chain.generate(request, lambda attempt: None)
    assert result.cost_usd == pytest.approx(200 * A100_USD_PER_S)  # what the provider reported
    [entry] = ledger.entries()
    assert entry.state == "overrun" and entry.actual_usd == pytest.approx(RESERVED)
    assert "USD 0.2800" in (entry.reason or "") and "budget ack" in (entry.reason or "")
    day = next(s for s in ledger.status() if s.scope == "global" and s.period == "day")
    assert day.spent_usd == pytest.approx(RESERVED) and day.spent_usd <= 0.05  # the cap is not passed

    [alert] = rule_budget_overrun(ledger)
    assert alert.rule == "budget-overrun" and "replicate" in alert.title

    created = len(server.predictions)
    with pytest.raises(AllProvidersFailedError, match="paid calls held"):
        chain.generate(request, lambda attempt: None)  # later runs too: the hold is in the ledger
    assert len(server.predictions) == created  # no paid call made

    [acknowledged] = ledger.acknowledge_overruns()
    assert acknowledged.state == "settled" and "acknowledged" in (acknowledged.reason or "")
    assert ledger.overruns() == [] and rule_budget_overrun(ledger) == []
    server.predict_time = 3.0
    assert chain.generate(request, lambda attempt: None).cost_usd == pytest.approx(3 * A100_USD_PER_S)
    db.dispose()


def test_budget_ack_acknowledges_from_the_command_line(make_config) -> None:
    from cli.main import app
    from wiring.runtime import get_runtime

    make_config()
    budget = get_runtime().budget
    token = budget.reserve("replicate", RESERVED)
    budget.settle(token, 0.28)
    held = CliRunner().invoke(app, ["budget", "ack"])
    assert held.exit_code == 0, held.output
    assert f"acknowledged entry {token}" in held.output and "paid calls go ahead again" in held.output
    assert budget.overruns() == []
    again = CliRunner().invoke(app, ["budget", "ack"])
    assert again.exit_code == 0 and "no overrun to acknowledge" in again.output
