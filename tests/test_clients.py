"""Clients (issue 22 point 1): who owns a template or a category, per-client budget caps under
concurrent runs (SQLite and PostgreSQL), reviewers, alerts, webhooks and reports per client."""

from __future__ import annotations

import multiprocessing
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import select

from config.clients import ClientsConfig
from config.generation import BudgetConfig
from domain.errors import BudgetExceededError, ConfigError
from domain.model import ImageSlot
from generation.budget import BudgetLedger
from storage.db import BudgetPeriodRecord, Database
from storage.ledger import ImageLedger, PlannedImage
from tests.budget_worker import reserve_for_clients

ESTIMATE = 0.25  # exact in binary floating point
RUN_DATE = date(2026, 12, 5)


def planned(slot: str, index: int, client: str | None, category: str = "food") -> PlannedImage:
    return PlannedImage(
        slot=ImageSlot("daily", RUN_DATE, slot, index, category),
        template="pasta-dish",
        template_version=1,
        prompt="a bowl of pasta",
        negative_prompt="",
        width=64,
        height=64,
        num_inference_steps=2,
        guidance_scale=7.0,
        seed=index,
        client=client,
    )


def period(db: Database, scope: str) -> BudgetPeriodRecord | None:
    with db.session() as session:
        return session.exec(select(BudgetPeriodRecord).where(BudgetPeriodRecord.scope == scope, BudgetPeriodRecord.period == "day")).first()


# -- configuration ---------------------------------------------------------------------------
def test_a_template_belongs_to_its_own_client_before_its_categorys() -> None:
    clients = ClientsConfig.model_validate({"acme": {"categories": ["food"]}, "beta": {"templates": ["pasta-dish"], "categories": ["products"]}})
    assert clients.client_of("food", "berry-smoothie") == "acme"
    assert clients.client_of("food", "pasta-dish") == "beta"  # the template's own client wins
    assert clients.client_of("products", None) == "beta"
    assert clients.client_of("landscapes", "mountain-lake") is None  # no client: the global one
    assert clients.get(None) is None and clients.names() == ["acme", "beta"]


@pytest.mark.parametrize(
    ("clients", "expected"),
    [
        ({"acme": {"categories": ["food"]}, "beta": {"categories": ["food"]}}, "category 'food' belongs to two clients: 'acme' and 'beta'"),
        ({"acme": {"budget": {"daily_usd": -1}}}, "field 'clients.acme.budget.daily_usd' = -1"),
        ({"acme": {"colour": "red"}}, "clients.acme.colour"),
        ({"Acme Corp": {}}, "Acme Corp"),
        ({"acme": {"alerts_env": "https://hooks.example/x"}}, "clients.acme.alerts_env"),
    ],
)
def test_a_bad_clients_section_is_one_line_naming_the_file_and_key(tmp_path: Path, clients: dict, expected: str) -> None:  # type: ignore[type-arg]
    import yaml

    from config.settings import load_settings

    path = tmp_path / "content-pipeline.yaml"
    path.write_text(yaml.safe_dump({"clients": clients}))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


def test_planned_rows_record_their_client(tmp_path: Path) -> None:
    from domain.templates import TemplateLibrary
    from generation.record import record_planned
    from config.imaging import PrivacyConfig

    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    library = TemplateLibrary.load(Path(__file__).resolve().parent.parent / "templates")
    clients = ClientsConfig.model_validate({"acme": {"categories": ["food"]}, "beta": {"categories": ["products"]}})
    slots = [ImageSlot("adhoc", RUN_DATE, "a", 0, "food"), ImageSlot("adhoc", RUN_DATE, "b", 0, "products"), ImageSlot("adhoc", RUN_DATE, "c", 0, "landscapes")]
    pks = record_planned(db, library, slots, privacy=PrivacyConfig(), clients=clients)
    assert [db.get(pk).client for pk in pks] == ["acme", "beta", None]
    db.dispose()


# -- budgets -----------------------------------------------------------------------------------
def test_a_clients_cap_refuses_only_its_own_calls(db_url: str) -> None:
    db = Database(db_url)
    rows = ImageLedger(db).plan([planned("s", 0, "acme"), planned("s", 1, "beta"), planned("s", 2, None)])
    clients = ClientsConfig.model_validate({"acme": {"budget": {"daily_usd": 0.3, "monthly_usd": 5}}, "beta": {"budget": {"monthly_usd": 0.5}}})
    ledger = BudgetLedger(db, BudgetConfig(daily_usd=10.0, monthly_usd=10.0), clients=clients)
    acme, beta, none = (r.id for r in rows)
    ledger.settle(ledger.reserve("stability", 0.2, image_pk=acme), 0.2)
    with pytest.raises(BudgetExceededError, match=r"client acme's daily budget \(\d{4}-\d\d-\d\d\): USD 0.20 spent .* cap of USD 0.30"):
        ledger.reserve("stability", 0.2, image_pk=acme)
    ledger.settle(ledger.reserve("stability", 0.2, image_pk=beta), 0.2)  # beta's day is not capped
    ledger.settle(ledger.reserve("stability", 0.3, image_pk=beta), 0.3)
    with pytest.raises(BudgetExceededError, match="client beta's monthly budget"):
        ledger.reserve("stability", 0.01, image_pk=beta)
    ledger.settle(ledger.reserve("stability", 2.0, image_pk=none), 2.0)  # no client: only the global caps
    ledger.settle(ledger.reserve("stability", 0.05, client="acme"), 0.05)  # a call named for a client without a slot
    status = {(s.scope, s.period): s for s in ledger.status()}
    assert status[("client:acme", "day")].spent_usd == pytest.approx(0.25)
    assert status[("client:beta", "month")].spent_usd == pytest.approx(0.5)
    assert status[("global", "day")].spent_usd == pytest.approx(2.75)
    refused = ledger.refusals()
    assert [e.client for e in refused] == ["acme", "beta"]
    db.dispose()


def test_two_clients_capped_exactly_under_two_concurrent_processes(db_url: str) -> None:
    """Two processes on the same date, each with 11 threads reserving at once: acme (cap 0.75 =
    3 calls of 8) and beta (cap 1.25 = 5 calls of 8) stop exactly at their caps; gamma (cap 5.00,
    4 calls = 1.00) and the slots of no client are all made: no client's cap touches another's."""
    db = Database(db_url)  # migrated once, before the children start
    owners = ["acme"] * 8 + ["beta"] * 8 + ["gamma"] * 4 + [None] * 2
    rows = ImageLedger(db).plan([planned("race", i, owner) for i, owner in enumerate(owners)])
    slots = [(row.id, row.client or "none") for row in rows]
    caps = {"acme": 0.75, "beta": 1.25, "gamma": 5.0}
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    halves = [slots[0::2], slots[1::2]]  # each process gets 4 acme, 4 beta, 2 gamma and 1 unowned slot
    processes = [ctx.Process(target=reserve_for_clients, args=(db_url, caps, half, ESTIMATE, barrier, results)) for half in halves]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    totals = {client: [sum(o.get(client, (0, 0))[i] for o in outcomes) for i in (0, 1)] for client in ("acme", "beta", "gamma", "none")}
    assert totals == {"acme": [3, 5], "beta": [5, 3], "gamma": [4, 0], "none": [2, 0]}
    for client, cap in (("acme", 0.75), ("beta", 1.25)):
        row = period(db, f"client:{client}")
        assert row is not None and row.spent_usd == pytest.approx(cap) and row.spent_usd <= cap + 1e-9 and row.reserved_usd == pytest.approx(0.0)
    gamma, overall = period(db, "client:gamma"), period(db, "global")
    assert gamma is not None and gamma.spent_usd == pytest.approx(1.0)
    assert overall is not None and overall.spent_usd == pytest.approx((3 + 5 + 4 + 2) * ESTIMATE)
    db.dispose()


# -- one run end to end: caps, alerts, reviewers, webhooks and reports per client ---------------
@pytest.mark.usefixtures("prefect_server")
def test_a_run_with_two_clients(make_config, a1111, sink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """acme owns food (cap USD 0.10 a day: one image of 0.08, review by alice only, its own
    webhook and alert URLs); beta owns products (no cap, the global webhook). One daily run of
    both: acme's second image is skipped naming acme's cap, beta's are all made; acme's alerts
    reach acme's sink and the global one; bob may not approve acme's image, alice may; each
    client's images reach only its webhook; the report per client has each one's figures."""
    import json

    from typer.testing import CliRunner

    from cli.main import app
    from flows.daily import daily_content
    from publishing.review import apply_decisions, field_name
    from tasks.report import send_report_task, write_report_task
    from tests.conftest import a1111_config
    from tests.rows import flow_summary
    from wiring.runtime import get_runtime

    port = sink.httpd.server_address[1]
    monkeypatch.setenv("APPRISE_URLS", f"json://127.0.0.1:{port}/global-alerts")
    monkeypatch.setenv("ACME_APPRISE_URLS", f"json://127.0.0.1:{port}/acme-alerts")
    monkeypatch.setenv("HOOK_SECRET", "hook-secret")
    hook = {"secret_env": "HOOK_SECRET", "backoff_s": 0}
    config = a1111_config(a1111.url, cost_usd=0.08)
    config["chain"] = ["automatic1111"]  # no free fallback: a refused call skips the slot
    make_config(
        **config,
        dedup={"enabled": False},
        publishing={"review": {"food": "required"}},
        delivery={"webhooks": [{"url": f"{sink.url}/hook", **hook}], "allow_private_addresses": True},
        clients={
            "acme": {
                "categories": ["food"],
                "budget": {"daily_usd": 0.1},
                "alerts_env": "ACME_APPRISE_URLS",
                "reviewers": ["alice"],
                "webhooks": [{"url": f"{sink.url}/acme-hook", **hook}],
            },
            "beta": {"categories": ["products"]},
        },
    )
    summary = flow_summary(daily_content(run_date=RUN_DATE, categories=["food", "products"], return_state=True))
    rt = get_runtime()
    rows = sorted(rt.db.images(), key=lambda r: (r.category, r.slot_index))
    food = [r for r in rows if r.category == "food"]
    products = [r for r in rows if r.category == "products"]
    assert [r.client for r in rows] == ["acme", "acme", "beta", "beta"]
    made, skipped = sorted(food, key=lambda r: r.status != "in_review")  # the two slots race for the cap
    assert (made.status, skipped.status) == ("in_review", "skipped")
    assert skipped.failure_kind == "budget" and "client acme's daily budget" in (skipped.error or "")
    assert all(r.status == "done" and r.published_at is not None for r in products)  # beta: untouched by acme's cap
    assert not summary.complete
    [acme_day] = [s for s in rt.budget.status() if (s.scope, s.period) == ("client:acme", "day")]
    assert acme_day.spent_usd == pytest.approx(0.08) and acme_day.spent_usd <= 0.1

    def bodies(path: str) -> list[dict]:  # type: ignore[type-arg]
        return [json.loads(r["body"]) for r in sink.received if r["path"] == path]

    acme_alerts = [b["title"] for b in bodies("/acme-alerts")]
    assert any("client acme's daily budget at 80 %" in t for t in acme_alerts)
    assert any("paid calls for client acme's images refused" in t for t in acme_alerts)
    assert set(acme_alerts) <= {b["title"] for b in bodies("/global-alerts")}  # in addition to the global targets
    assert sorted(b["id"] for b in bodies("/hook")) == sorted(r.image_id for r in products)
    assert bodies("/acme-hook") == []

    runner = CliRunner()
    refused = runner.invoke(app, ["review", "approve", made.image_id, "--reviewer", "bob"])
    assert refused.exit_code == 1
    assert f"reviewer 'bob' may not decide image {made.image_id}: client 'acme' accepts only alice" in refused.output
    assert rt.db.get(made.id).status == "in_review"
    form = {"reviewer": "bob", field_name(made.image_id): "approve"}  # the Resume form of a suspended run
    assert apply_decisions(rt.publisher(), [rt.db.get(made.id)], form) == [] and rt.db.get(made.id).status == "in_review"
    approved = runner.invoke(app, ["review", "approve", made.image_id, "--reviewer", "alice"])
    assert approved.exit_code == 0, approved.output
    assert rt.db.get(made.id).published_at is not None
    assert [b["id"] for b in bodies("/acme-hook")] == [made.image_id]  # acme's webhook only
    assert len(bodies("/hook")) == len(products)

    wide = runner.invoke(app, ["report", "--out", str(tmp_path / "r1")], terminal_width=200)
    assert wide.exit_code == 0, wide.output
    lines = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]] for line in wide.output.splitlines() if line.count("│") == 8}
    assert lines["acme"] == ["0.08", "1", "1", "0", "100 %", "0.080"]
    assert lines["beta"] == ["0.16", "2", "2", "0", "100 %", "0.080"]
    only = runner.invoke(app, ["report", "--client", "acme", "--out", str(tmp_path / "r2")], terminal_width=200)
    assert only.exit_code == 0 and "for client acme: 1 images, USD 0.08" in only.output and "beta" not in only.output
    weekly = write_report_task.fn(rt, None, 1, "acme")  # the weekly report's steps, for one client
    assert weekly["client"] == "acme" and weekly["images"] == 1 and "per client:" in weekly["text"]
    assert [line.split()[:2] for line in weekly["text"].splitlines() if line.startswith("acme")] == [["acme", "0.08"]]
    assert send_report_task.fn(rt, weekly)
    assert any(t.startswith("content-pipeline weekly report for client acme") for t in (b["title"] for b in bodies("/acme-alerts")))
    unknown = runner.invoke(app, ["report", "--client", "nobody"])
    assert unknown.exit_code != 0 and "--client 'nobody': no such client" in unknown.output and "Traceback" not in unknown.output


def test_the_signed_trigger_starts_only_a_template_of_the_client_it_names() -> None:
    from deployments.trigger import TriggerRequest, parameters_for
    from domain.errors import TemplateError
    from domain.templates import TemplateLibrary

    library = TemplateLibrary.load(Path(__file__).resolve().parent.parent / "templates")
    clients = ClientsConfig.model_validate({"acme": {"categories": ["food"]}, "beta": {"templates": ["sneaker"]}})
    assert parameters_for(TriggerRequest(template="pasta-dish", client="acme"), library, RUN_DATE, clients)["template"] == "pasta-dish"
    with pytest.raises(TemplateError, match="template 'sneaker' belongs to client 'beta', not to client 'acme'"):
        parameters_for(TriggerRequest(template="sneaker", client="acme"), library, RUN_DATE, clients)
    with pytest.raises(TemplateError, match="belongs to no client, not to client 'acme'"):
        parameters_for(TriggerRequest(category="landscapes", client="acme"), library, RUN_DATE, clients)
    assert parameters_for(TriggerRequest(template="sneaker"), library, RUN_DATE, clients)["template"] == "sneaker"  # no client named
