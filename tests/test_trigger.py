"""The signed inbound trigger (deployments/trigger.py, ``content-pipeline trigger serve``):
real HTTP to the app served by uvicorn on a free port, against a real Prefect server with
the deployments of ``content-pipeline serve`` (tests/prefect_stack.py ``served_stack``);
the request checks on FastAPI's TestClient (the same ASGI app, in process)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from deployments.trigger import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ReplayGuard,
    TriggerRequest,
    create_app,
    parameters_for,
    sign,
)
from domain.templates import TemplateLibrary
from tests.prefect_stack import PROJECT_ROOT, ServedStack, free_port, served_stack, tail

SECRET = "trigger-test-secret-0123456789"
NOW = 1_780_000_000  # a fixed clock for the app: Unix seconds


def signed(body: dict[str, Any], timestamp: int, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, str(timestamp), raw), "content-type": "application/json"}


@pytest.fixture(scope="module")
def library() -> TemplateLibrary:
    return TemplateLibrary.load(PROJECT_ROOT / "templates")


def _never_started(parameters: dict[str, Any]) -> str:
    raise AssertionError(f"a refused request started a run: {parameters}")


@pytest.fixture()
def client(library: TemplateLibrary, caplog: pytest.LogCaptureFixture) -> Any:
    from fastapi.testclient import TestClient

    return TestClient(create_app(SECRET, library, start=_never_started, clock=lambda: NOW))


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("unsigned", 401, "unsigned request"),
        ("wrong key", 401, "wrong signature"),
        ("body changed", 401, "wrong signature"),
        ("stale", 401, "stale request"),
        ("from the future", 401, "stale request"),
        ("not seconds", 401, "not Unix seconds"),
        ("both targets", 422, "exactly one of template or category"),
        ("unknown template", 422, "no template named 'pasta-dsh'"),
        ("count too high", 422, "less than or equal to 50"),
        ("bad client", 422, "string should match pattern"),
    ],
)
def test_bad_requests_are_refused_with_one_log_line(client: Any, caplog: pytest.LogCaptureFixture, case: str, status: int, reason: str) -> None:
    body: dict[str, Any] = {"template": "pasta-dish", "count": 2}
    timestamp, secret = NOW, SECRET
    changes: dict[str, dict[str, Any]] = {
        "both targets": {"category": "food"},
        "unknown template": {"template": "pasta-dsh"},
        "count too high": {"count": 51},
        "bad client": {"client": "a b/c"},
    }
    body = {**body, **changes.get(case, {})}
    timestamp = {"stale": NOW - 301, "from the future": NOW + 301}.get(case, timestamp)
    raw, headers = signed(body, timestamp, "another-secret-0123456789" if case == "wrong key" else secret)
    if case == "unsigned":
        headers.pop(SIGNATURE_HEADER)
    if case == "body changed":
        raw = raw.replace(b"2", b"9")
    if case == "not seconds":
        headers[TIMESTAMP_HEADER] = "2026-12-05T07:00:00Z"
    with caplog.at_level("INFO", logger="content_pipeline.trigger"):
        response = client.post("/trigger", content=raw, headers=headers)
    assert response.status_code == status, response.text
    assert reason.lower() in response.json()["error"].lower()
    lines = [r.getMessage() for r in caplog.records if r.name == "content_pipeline.trigger"]
    assert len(lines) == 1 and f"refused ({status})" in lines[0] and "\n" not in lines[0], lines


def test_replay_guard_refuses_a_seen_signature_until_it_expires_and_stays_bounded() -> None:
    guard = ReplayGuard(ttl_s=600, capacity=2)
    assert guard.admit("sha256=a", now=1000) is None
    assert guard.admit("sha256=b", now=1100) is None
    assert guard.admit("sha256=a", now=1500) == (409, "replayed request (signature already used)")
    assert guard.admit("sha256=c", now=1550) == (429, "too many signed requests in the replay window")
    assert guard.admit("sha256=c", now=1600) is None  # "a" expired: room again
    assert guard.admit("sha256=a", now=1700) is None  # "b" expired; "a" is new again


def test_a_category_rotates_its_templates_by_date_and_client_and_date_name_the_batch(library: TemplateLibrary) -> None:
    food = [t.name for t in library.by_category("food")]
    days = [date(2026, 12, 5), date(2026, 12, 6)]
    picked = [parameters_for(TriggerRequest(category="food", client="acme", date=d), library, days[0]) for d in days]
    assert {p["template"] for p in picked} == set(food)
    assert picked[0]["batch"] == f"acme-2026-12-05-{picked[0]['template']}" and picked[0]["count"] == 1
    assert "batch" not in parameters_for(TriggerRequest(template="sneaker", count=3), library, days[0])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedStack]:
    with served_stack(tmp_path_factory.mktemp("trigger"), "trigger", {"generate/adhoc"}) as served:
        yield served


@pytest.fixture(scope="module")
def trigger_url(stack: ServedStack, library: TemplateLibrary) -> Iterator[str]:
    """The trigger app on uvicorn in a thread, on a free loopback port, aimed at the stack's server."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(SECRET, library), host="127.0.0.1", port=port, log_level="warning"))

    def run() -> None:
        with stack.settings():  # Prefect settings are context variables: set in the server's thread
            server.run()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


def adhoc_runs(stack: ServedStack) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{stack.server.api_url}/flow_runs/filter", timeout=10, auth=stack.server.auth, json={"deployments": {"name": {"any_": ["adhoc"]}}, "limit": 200}
    )
    response.raise_for_status()
    return list(response.json())


@pytest.mark.timeout(600)
def test_signed_request_starts_the_adhoc_deployment_and_replayed_or_unsigned_ones_start_none(stack: ServedStack, trigger_url: str) -> None:
    assert adhoc_runs(stack) == []
    raw, headers = signed({"template": "pasta-dish", "count": 2, "client": "acme", "date": "2026-12-05"}, int(time.time()))
    accepted = httpx.post(f"{trigger_url}/trigger", content=raw, headers=headers, timeout=60)
    assert accepted.status_code == 202, f"{accepted.text}\n{tail(stack.serve.log)}"
    runs = adhoc_runs(stack)
    assert [r["id"] for r in runs] == [accepted.json()["flow_run_id"]]
    assert runs[0]["parameters"] == {"template": "pasta-dish", "count": 2, "batch": "acme-2026-12-05-pasta-dish"}

    replayed = httpx.post(f"{trigger_url}/trigger", content=raw, headers=headers, timeout=60)
    unsigned = httpx.post(f"{trigger_url}/trigger", content=raw, headers={TIMESTAMP_HEADER: headers[TIMESTAMP_HEADER]}, timeout=60)
    assert (replayed.status_code, unsigned.status_code) == (409, 401), (replayed.text, unsigned.text)
    assert len(adhoc_runs(stack)) == 1


def test_cli_without_a_secret_says_so_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.delenv("CONTENT_PIPELINE_TRIGGER_SECRET", raising=False)
    result = CliRunner().invoke(app, ["trigger", "serve", "--port", str(free_port())])
    assert result.exit_code == 2
    assert "CONTENT_PIPELINE_TRIGGER_SECRET must hold the shared signing key" in result.output
    assert "Traceback" not in result.output
