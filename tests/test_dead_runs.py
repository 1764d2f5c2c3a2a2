"""A flow run whose process died (its slots' leases expired and another run took them
over) is marked Crashed in the Prefect history, with its unfinished task runs
(tasks.recover.close_dead_flow_runs); runs that are not Running, and run keys that are
not flow runs of the server, are left alone. The whole path (a worker SIGKILLed on a
work pool) runs in benchmarks/scaleout.py's kill run."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.states import Completed, Paused, Running

from tasks.recover import close_dead_flow_runs


@flow(name="dead-run-probe")
def _probe() -> None:  # only its identity is used: runs are created through the API
    return None


@task(name="image-probe")
def _image() -> None:
    return None


def _run_with_tasks(client: Any, state: Any, task_states: list[Any]) -> tuple[uuid.UUID, list[uuid.UUID]]:
    run = client.create_flow_run(_probe, state=state)
    tasks = [client.create_task_run(_image, flow_run_id=run.id, dynamic_key=str(i), state=s).id for i, s in enumerate(task_states)]
    return run.id, tasks


@pytest.mark.usefixtures("prefect_server")
def test_a_dead_running_flow_run_and_its_unfinished_task_runs_are_marked_crashed() -> None:
    with get_client(sync_client=True) as client:
        dead, dead_tasks = _run_with_tasks(client, Running(), [Running(), Running(), Completed()])
        paused, paused_tasks = _run_with_tasks(client, Paused(), [Running()])
        keys = [str(dead), str(paused), "worker-3f2a9c1d0b7e", str(uuid.uuid4())]

        assert close_dead_flow_runs(keys, by_run="run-b") == 1

        state = client.read_flow_run(dead).state
        assert state is not None and state.is_crashed() and "run-b" in (state.message or "")
        task_states = [client.read_task_run(t).state for t in dead_tasks]
        assert [s.type.value for s in task_states if s is not None] == ["CRASHED", "CRASHED", "COMPLETED"]
        # a run suspended for review (Paused) is not dead: untouched, its task runs too
        assert client.read_flow_run(paused).state.is_paused()  # type: ignore[union-attr]
        assert client.read_task_run(paused_tasks[0]).state.is_running()  # type: ignore[union-attr]
        # marked once: a second call finds nothing Running
        assert close_dead_flow_runs(keys, by_run="run-c") == 0


def test_run_keys_that_are_not_flow_runs_need_no_server() -> None:
    assert close_dead_flow_runs(["worker-3f2a9c1d0b7e", "local-0a1b2c3d4e5f"], by_run="run-b") == 0
