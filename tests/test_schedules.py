"""The schedules of ``content-pipeline serve`` on a real Prefect server with basic auth.

Prefect 3.8's scheduler failed on SQLAlchemy 2.1, so served cron deployments never got a
run: here the server's scheduler (its loop every second through
``PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS``) must create Scheduled runs for every
served cron (daily, weekly, weekly report). The server requires basic auth
(``PREFECT_SERVER_API_AUTH_STRING``): a client without ``PREFECT_API_AUTH_STRING`` is
refused, ``serve`` and ``doctor`` work with it set.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.prefect_stack import ServedStack, base_env, served_stack, tail

pytestmark = pytest.mark.timeout(600)

CRON_DEPLOYMENTS = {"daily-content/daily", "weekly-content/weekly", "weekly-report/weekly-report"}
AUTH = f"cp-ops:{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedStack]:
    with served_stack(
        tmp_path_factory.mktemp("schedules"),
        "served",
        CRON_DEPLOYMENTS | {"generate/adhoc"},
        server_settings={"PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1"},
        auth_string=AUTH,
    ) as served:
        yield served


def _scheduled_runs(stack: ServedStack) -> dict[str, int]:
    """``flow/deployment`` -> its flow runs in state SCHEDULED, for every deployment with a cron schedule."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with stack.settings(), get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows()}
        counts: dict[str, int] = {}
        for deployment in client.read_deployments():
            if not any(getattr(s.schedule, "cron", None) for s in deployment.schedules):
                continue
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))),
            )
            counts[f"{flows[deployment.flow_id]}/{deployment.name}"] = len(runs)
    return counts


def test_every_served_cron_gets_scheduled_runs(stack: ServedStack) -> None:
    deadline = time.monotonic() + 240  # generous: a loaded machine; the scheduler loops every second
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = _scheduled_runs(stack)
        if set(counts) >= CRON_DEPLOYMENTS and all(counts.values()):
            break
        time.sleep(1)
    assert set(counts) >= CRON_DEPLOYMENTS, f"served cron deployments: {sorted(counts)}\n{tail(stack.server.proc.log)}"
    assert all(counts.values()), f"Scheduled runs per cron deployment: {counts}\n{tail(stack.server.proc.log)}"


def test_server_with_auth_refuses_a_client_without_it(stack: ServedStack) -> None:
    api = stack.server.api_url
    assert httpx.get(f"{api}/health", timeout=10).status_code == 200  # probes stay open
    assert httpx.post(f"{api}/deployments/filter", json={}, timeout=10).status_code == 401
    assert httpx.post(f"{api}/deployments/filter", json={}, timeout=10, auth=("cp-ops", "wrong")).status_code == 401
    assert httpx.post(f"{api}/deployments/filter", json={}, timeout=10, auth=stack.server.auth).status_code == 200

    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        with pytest.raises(PrefectHTTPStatusError, match="401"):
            client.read_deployments()


def _doctor(stack: ServedStack, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "doctor", "--timeout", "10"],
        env=base_env(stack.home, CONTENT_PIPELINE_CONFIG=str(stack.config), **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _row(output: str, name: str) -> str:
    return " ".join(line for line in output.splitlines() if name in line)


def test_doctor_works_with_the_auth_string_and_says_when_it_is_missing(stack: ServedStack) -> None:
    """``serve`` registered its deployments through the auth (the fixture); the doctor's Prefect
    check passes with PREFECT_API_AUTH_STRING and names it when it is missing or wrong."""
    ok = _doctor(stack, **stack.server.client_env())
    assert "healthy" in _row(ok.stdout, "prefect api"), ok.stdout + ok.stderr
    without = _doctor(stack, PREFECT_API_URL=stack.server.api_url)
    assert without.returncode == 1
    assert "PREFECT_API_AUTH_STRING is not set" in " ".join(without.stdout.split()), without.stdout
    wrong = _doctor(stack, PREFECT_API_URL=stack.server.api_url, PREFECT_API_AUTH_STRING="cp-ops:wrong")
    assert "is not the server's" in " ".join(wrong.stdout.split()), wrong.stdout


def _serve_until_exit(stack: ServedStack, **env: str) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "serve"],
        env=base_env(stack.home, CONTENT_PIPELINE_CONFIG=str(stack.config), **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_serve_without_the_auth_string_says_so_in_one_line(stack: ServedStack) -> None:
    result = _serve_until_exit(stack, PREFECT_API_URL=stack.server.api_url)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "PREFECT_API_AUTH_STRING is not set" in lines[0], result.stderr


REMOTE = "http://192.0.2.10:4200/api"  # TEST-NET-1 (RFC 5737): another host, never reachable


@pytest.mark.parametrize("url", ["http://127.0.0.1:4200/api", "http://localhost:4200/api", "http://[::1]:4200/api"])
def test_no_auth_warning_for_this_machine(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.doctor import auth_warning

    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    assert auth_warning(url) is None


def test_auth_warning_for_another_host_until_the_auth_string_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.doctor import auth_warning

    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    warning = auth_warning(REMOTE)
    assert warning is not None and "192.0.2.10" in warning and "PREFECT_SERVER_API_AUTH_STRING" in warning
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "cp-ops:secret")
    assert auth_warning(REMOTE) is None


def test_serve_and_doctor_warn_in_one_line_for_another_host_without_auth(tmp_path: Any) -> None:
    env = base_env(tmp_path, PREFECT_API_URL=REMOTE)
    serve = subprocess.run([sys.executable, "-m", "cli.main", "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    warnings = [line for line in serve.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "PREFECT_API_AUTH_STRING is not set" in warnings[0], serve.stderr
    doctor = subprocess.run([sys.executable, "-m", "cli.main", "doctor", "--timeout", "2"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "prefect auth" in doctor.stdout and "PREFECT_API_AUTH_STRING is not set" in " ".join(doctor.stdout.split())
